"""Golden fixtures for the LOIPRO contracts: each file beside its expected outcome.

valid/<name>.xml + <name>.expected.json: {"contract": key, "describe": text}
invalid/<name>.xml + <name>.expected.json: {"error": class name, "contract": key (violations),
"count": number of findings, "findings": [{where/value/expected/line}], "text": [substrings]}
Each expected finding must match one actual finding: ``where`` and ``expected`` as substrings,
``value`` and ``line`` exactly. ``count`` keeps cascades of follow-up errors out.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contracts import errors
from contracts.errors import Finding, MesbridgeError
from contracts.registry import ContractRegistry, describe_message

from .conftest import LOIPRO_FIXTURES, parse_xml

VALID = sorted((LOIPRO_FIXTURES / "valid").glob("*.xml"))
INVALID = sorted((LOIPRO_FIXTURES / "invalid").glob("*.xml"))


def _expected(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        path.with_name(path.stem + ".expected.json").read_text(encoding="utf-8")
    )
    return data


def test_the_fixture_sets_are_not_empty() -> None:
    assert len(VALID) >= 8
    assert len(INVALID) >= 8


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_fixture_is_identified_and_valid(path: Path, registry: ContractRegistry) -> None:
    expected = _expected(path)
    root = parse_xml(path)

    contract = registry.validate_xml(root)

    assert str(contract.key) == expected["contract"]
    assert describe_message(root) == expected["describe"]


def _matches(finding: Finding, wanted: dict[str, Any]) -> bool:
    return (
        wanted.get("where", "") in finding.where
        and wanted.get("expected", "") in finding.expected
        and ("value" not in wanted or finding.value == wanted["value"])
        and ("line" not in wanted or finding.line == wanted["line"])
    )


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_fails_as_expected(path: Path, registry: ContractRegistry) -> None:
    expected = _expected(path)
    error_class: type[MesbridgeError] = getattr(errors, expected["error"])
    root = parse_xml(path)

    with pytest.raises(error_class) as caught:
        registry.validate_xml(root)

    error = caught.value
    assert type(error) is error_class
    findings = list(error.findings)
    shown = "\n".join(str(f) for f in findings)
    assert len(findings) == expected["count"], shown
    for wanted in expected["findings"]:
        assert any(_matches(f, wanted) for f in findings), f"{wanted} not in:\n{shown}"
    for text in expected["text"]:
        assert text in str(error)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_fixture_error_names_the_message(path: Path, registry: ContractRegistry) -> None:
    root = parse_xml(path)
    with pytest.raises(MesbridgeError) as caught:
        registry.validate_xml(root)

    named = caught.value.with_message_ref(describe_message(root))

    assert str(named).startswith(describe_message(root) + ": ")
    assert type(named) is type(caught.value)
