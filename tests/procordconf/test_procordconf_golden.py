"""B2MML performance message → PerformanceReport → sap/procordconf/1 documents, as golden files.

Every valid B2MML performance fixture is read and turned into confirmations. Fixtures with
confirmations have ``tests/fixtures/sap/procordconf/1/valid/<contract>__<case>.json`` (the
list of documents) and every document satisfies the packaged output contract; fixtures
without confirmations give no document. ``UPDATE_GOLDEN=1`` rewrites the expected files and
fails each rewritten case; review ``git diff`` afterwards.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from contracts.registry import ContractRegistry
from integration.mapping_files import load_mapping_profile
from transforms.b2mml_performance import performance_report
from transforms.mapping import MappingProfile
from transforms.procordconf import CONTRACT, order_confirmations

REPO_ROOT = Path(__file__).resolve().parents[2]
B2MML = REPO_ROOT / "tests" / "fixtures" / "b2mml"
GOLDEN = REPO_ROOT / "tests" / "fixtures" / "sap" / "procordconf" / "1" / "valid"
INPUTS = {
    "b2mml/ProductionPerformance/V0600": "ProductionPerformance/V0600",
    "b2mml/OperationsPerformance/V0600": "OperationsPerformance/V0600",
    "b2mml/OperationsPerformance/V7": "OperationsPerformance/V7",
}
PROFILE: MappingProfile = load_mapping_profile()
REGISTRY = ContractRegistry.load()


def _cases() -> list[Any]:
    return [
        pytest.param(contract, path, id=f"{directory}/{path.stem}")
        for contract, directory in INPUTS.items()
        for path in sorted((B2MML / directory / "valid").glob("*.xml"))
    ]


def _golden_path(contract: str, path: Path) -> Path:
    return GOLDEN / f"{INPUTS[contract].replace('/', '-')}__{path.stem}.json"


def _documents(contract: str, path: Path) -> list[dict[str, Any]]:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    root = etree.parse(str(path), parser).getroot()
    report = performance_report(root, contract, PROFILE)
    return [document.to_json() for document in order_confirmations(report, PROFILE)]


@pytest.mark.parametrize(("contract", "path"), _cases())
def test_confirmations_of_each_valid_performance_fixture(contract: str, path: Path) -> None:
    documents = _documents(contract, path)
    expected_path = _golden_path(contract, path)
    if not documents:
        assert not expected_path.exists(), f"{expected_path} expects confirmations"
        return
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(documents, indent=2, ensure_ascii=False) + "\n")
        pytest.fail(f"rewrote {expected_path}; review it and run again without UPDATE_GOLDEN")
    assert expected_path.is_file(), f"{expected_path} is missing (UPDATE_GOLDEN=1 writes it)"
    assert documents == json.loads(expected_path.read_text())


def test_every_golden_document_satisfies_the_output_contract() -> None:
    contract = REGISTRY.get(CONTRACT)
    golden = sorted(GOLDEN.glob("*.json"))
    assert len(golden) == 3  # one per B2MML version with confirmation fixtures
    for path in golden:
        for document in json.loads(path.read_text()):
            REGISTRY.validate_json(document, contract)


def test_every_golden_file_has_its_input() -> None:
    inputs = {_golden_path(contract, path) for contract, path in (c.values for c in _cases())}
    for path in GOLDEN.glob("*.json"):
        assert path in inputs, f"{path} has no B2MML fixture that produces it"
