"""Golden fixtures of the B2MML performance reader (flow F3).

Each ``valid/<case>.xml`` has ``<case>.expected.json`` beside it (the PerformanceReport it
makes); each ``invalid/<case>.xml`` has ``<case>.expected.json`` (the error class, summary,
and every finding). ``UPDATE_GOLDEN=1`` rewrites the expected files and fails each rewritten
case, so a rewrite is never a silent pass; review ``git diff`` afterwards.

Every fixture must also pass the packaged inbound profile (the reader's errors are
MappingErrors, not contract violations), and every valid one the official MESA schema.
"""

from __future__ import annotations

import json
import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from contracts.errors import MappingError, MesbridgeError
from transforms.b2mml_performance import performance_report
from transforms.mapping import MappingProfile
from transforms.model import PerformanceReport, Quantity

REPO_ROOT = Path(__file__).resolve().parents[2]
FIXTURES = REPO_ROOT / "tests" / "fixtures" / "b2mml"
SCHEMAS = REPO_ROOT / "contracts" / "schemas" / "b2mml"

# contract key -> (fixture/schema directory, official per-message schema inside the bundle)
CONTRACTS = {
    "b2mml/ProductionPerformance/V0600": (
        "ProductionPerformance/V0600",
        "V0600/B2MML-V0600-ProductionPerformance.xsd",
    ),
    "b2mml/OperationsPerformance/V0600": (
        "OperationsPerformance/V0600",
        "V0600/B2MML-V0600-OperationsPerformance.xsd",
    ),
    "b2mml/OperationsPerformance/V7": (
        "OperationsPerformance/V7",
        "V7/B2MML-OperationsPerformance.xsd",
    ),
}


def _cases(kind: str) -> list[Any]:
    cases = []
    for contract, (directory, _) in CONTRACTS.items():
        for path in sorted((FIXTURES / directory / kind).glob("*.xml")):
            cases.append(pytest.param(contract, path, id=f"{directory}/{kind}/{path.stem}"))
    return cases


VALID = _cases("valid")
INVALID = _cases("invalid")


@pytest.fixture(scope="module")
def profile() -> MappingProfile:
    path = REPO_ROOT / "integration" / "defaults" / "mapping.toml"
    return MappingProfile.from_mapping(tomllib.loads(path.read_text()), source=str(path))


def _parse(path: Path) -> etree._Element:
    return etree.parse(
        str(path), etree.XMLParser(resolve_entities=False, no_network=True)
    ).getroot()


def _quantity_as_json(quantity: Quantity | None) -> dict[str, str] | None:
    # Decimal as its exact text: 41.250 stays 41.250.
    return None if quantity is None else {"value": str(quantity.value), "unit": quantity.unit.sap}


def report_as_json(report: PerformanceReport) -> dict[str, Any]:
    written = _report_as_json(report)
    # Only reports that carry confirmations show the key: the expected files of reports
    # without any stay as they were, and a confirmation appearing there fails the comparison.
    if report.confirmations:
        written["confirmations"] = [
            {
                "phase": confirmation.phase,
                "yield": _quantity_as_json(confirmation.yield_quantity),
                "scrap": _quantity_as_json(confirmation.scrap_quantity),
                "final": confirmation.final,
                "started_at": _isoformat(confirmation.started_at),
                "finished_at": _isoformat(confirmation.finished_at),
                "source_line": confirmation.source_line,
            }
            for confirmation in report.confirmations
        ]
    return written


def _isoformat(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def _report_as_json(report: PerformanceReport) -> dict[str, Any]:
    return {
        "sender": report.sender,
        "document_id": report.document_id,
        "contract": report.contract,
        "order_number": report.order_number,
        "event_time": report.event_time.isoformat(),
        "plant": report.plant,
        "idempotency_key": report.idempotency_key,
        "actuals": [
            {
                "role": actual.role.value,
                "material": actual.material,
                # Decimal as its exact text: 41.250 stays 41.250.
                "quantity": str(actual.quantity.value),
                "unit": actual.quantity.unit.sap,
                "batch": actual.batch,
                "storage_location": actual.storage_location,
                "reservation": actual.reservation,
                "reservation_item": actual.reservation_item,
                "phase": actual.phase,
                "reversal": actual.reversal,
                "final": actual.final,
                "source_line": actual.source_line,
            }
            for actual in report.actuals
        ],
    }


def error_as_json(error: MesbridgeError) -> dict[str, Any]:
    return {
        "error": type(error).__name__,
        "message_ref": error.message_ref,
        "summary": error.summary,
        "findings": [
            {"where": f.where, "line": f.line, "value": f.value, "expected": f.expected}
            for f in error.findings
        ],
    }


def _compare(actual: dict[str, Any], expected_path: Path) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        expected_path.write_text(json.dumps(actual, indent=2, ensure_ascii=False) + "\n")
        pytest.fail(f"rewrote {expected_path}; review it and run again without UPDATE_GOLDEN")
    assert expected_path.is_file(), f"{expected_path} is missing (UPDATE_GOLDEN=1 writes it)"
    assert actual == json.loads(expected_path.read_text())


@pytest.mark.parametrize(("contract", "path"), VALID)
def test_valid_fixture_gives_expected_report(
    contract: str, path: Path, profile: MappingProfile
) -> None:
    report = performance_report(_parse(path), contract, profile)
    _compare(report_as_json(report), path.with_suffix(".expected.json"))


@pytest.mark.parametrize(("contract", "path"), INVALID)
def test_invalid_fixture_gives_expected_mapping_error(
    contract: str, path: Path, profile: MappingProfile
) -> None:
    with pytest.raises(MappingError) as caught:
        performance_report(_parse(path), contract, profile)
    error = caught.value
    assert error.findings, "every error names where, the value and what was expected"
    for finding in error.findings:
        assert finding.where.startswith("/"), finding
        assert finding.line is not None, finding
    _compare(error_as_json(error), path.with_suffix(".expected.json"))


@pytest.mark.parametrize(("contract", "path"), VALID + INVALID)
def test_every_fixture_passes_the_inbound_profile(contract: str, path: Path) -> None:
    directory = CONTRACTS[contract][0]
    manifest = tomllib.loads((SCHEMAS / directory / "contract.toml").read_text())
    schema = etree.XMLSchema(etree.parse(str(SCHEMAS / directory / manifest["schema"])))
    document = _parse(path)
    assert schema.validate(document), schema.error_log


@pytest.mark.official_b2mml
@pytest.mark.parametrize(("contract", "path"), VALID)
def test_valid_fixture_is_valid_under_official_schema(
    contract: str, path: Path, official_b2mml_dir: Path
) -> None:
    schema = etree.XMLSchema(etree.parse(str(official_b2mml_dir / CONTRACTS[contract][1])))
    assert schema.validate(_parse(path)), schema.error_log
