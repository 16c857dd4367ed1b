"""Golden fixtures of the Tulip completion reader (flow F4), through to MBGMCR03.

Each ``valid/<case>.json`` has beside it ``<case>.expected.json`` (the PerformanceReport it
makes, confirmations included) and ``<case>.MBGMCR03.xml`` (the goods-movement IDocs
``goods_movement_idocs`` writes for that report, every one validated by the registry).
Each ``invalid/<case>.json`` has ``<case>.expected.json``: the error the service gives it,
from the contract (``ContractViolation``, answered 422 by the HTTP ingest) or from the
reader (``MappingError``), with every finding. Fixtures are read by the intake guard, as
the HTTP ingest reads them, so a JSON number arrives as a ``Decimal``.

``UPDATE_GOLDEN=1`` rewrites the expected files and fails each rewritten case, so a
rewrite is never a silent pass; review ``git diff`` afterwards.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from contracts.errors import ContractViolation, MappingError, MesbridgeError
from contracts.registry import ContractRegistry
from integration.intake import read_json
from integration.mapping_files import load_mapping_profile
from tests.support.sap_sender import idoc_sender
from transforms.mapping import MappingProfile
from transforms.mbgmcr import goods_movement_idocs
from transforms.model import PerformanceReport, Quantity
from transforms.tulip_completion import completion_report

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "tulip" / "completion" / "1"
CONTRACT = "tulip/completion/1"
PROFILE: MappingProfile = load_mapping_profile()
REGISTRY = ContractRegistry.load()
SENDER = idoc_sender(client="200")
CREATED = datetime(2026, 12, 2, 13, 10, tzinfo=UTC)
VALID = sorted((FIXTURES / "valid").glob("*.json"))
INVALID = sorted((FIXTURES / "invalid").glob("*.json"))


def _cases(paths: list[Path]) -> list[Any]:
    return [
        pytest.param(path, id=path.stem)
        for path in paths
        if not path.name.endswith(".expected.json")
    ]


def load_event(path: Path) -> dict[str, Any]:
    data = read_json(path.read_bytes(), source=path.name)
    assert isinstance(data, dict)
    return data


def _quantity(quantity: Quantity | None) -> dict[str, str] | None:
    if quantity is None:
        return None
    # Decimal as its exact text: 120.000 stays 120.000.
    return {"value": str(quantity.value), "unit": quantity.unit.sap}


def report_as_json(report: PerformanceReport) -> dict[str, Any]:
    return {
        "sender": report.sender,
        "document_id": report.document_id,
        "contract": report.contract,
        "idempotency_key": report.idempotency_key,
        "order_number": report.order_number,
        "event_time": report.event_time.isoformat(),
        "plant": report.plant,
        "actuals": [
            {
                "role": actual.role.value,
                "material": actual.material,
                "quantity": _quantity(actual.quantity),
                "batch": actual.batch,
                "storage_location": actual.storage_location,
                "phase": actual.phase,
                "reversal": actual.reversal,
                "final": actual.final,
            }
            for actual in report.actuals
        ],
        "confirmations": [
            {
                "phase": confirmation.phase,
                "yield": _quantity(confirmation.yield_quantity),
                "scrap": _quantity(confirmation.scrap_quantity),
                "final": confirmation.final,
                "started_at": (
                    confirmation.started_at.isoformat() if confirmation.started_at else None
                ),
                "finished_at": (
                    confirmation.finished_at.isoformat() if confirmation.finished_at else None
                ),
            }
            for confirmation in report.confirmations
        ],
    }


def error_as_json(error: MesbridgeError) -> dict[str, Any]:
    return {
        "error": type(error).__name__,
        "message_ref": error.message_ref,
        "summary": error.summary,
        "findings": [
            {"where": f.where, "value": f.value, "expected": f.expected} for f in error.findings
        ],
    }


def _as_text(actual: dict[str, Any]) -> str:
    return json.dumps(actual, indent=2, ensure_ascii=False) + "\n"


def _compare(*pairs: tuple[str, Path]) -> None:
    if os.environ.get("UPDATE_GOLDEN"):
        for actual, expected_path in pairs:
            expected_path.write_text(actual, encoding="utf-8")
        rewritten = ", ".join(path.name for _, path in pairs)
        pytest.fail(f"rewrote {rewritten}; review them and run again without UPDATE_GOLDEN")
    for actual, expected_path in pairs:
        assert expected_path.is_file(), f"{expected_path} is missing (UPDATE_GOLDEN=1 writes it)"
        assert actual == expected_path.read_text(encoding="utf-8")


@pytest.mark.parametrize("path", _cases(VALID))
def test_valid_event_gives_expected_report_and_goods_movements(path: Path) -> None:
    event = load_event(path)
    contract = REGISTRY.validate_json(event)  # identified by its fields, then validated
    assert str(contract.key) == CONTRACT

    report = completion_report(event, CONTRACT, PROFILE)
    idocs = goods_movement_idocs(
        report, PROFILE, sender=SENDER, created_at=CREATED, docnum_base=4200
    )
    for idoc in idocs:
        REGISTRY.validate_xml(idoc.element)  # the output contract sap-idoc/MBGMCR03/1
    written = b"".join(idoc.to_bytes() for idoc in idocs).decode("utf-8")

    _compare(
        (_as_text(report_as_json(report)), path.with_suffix(".expected.json")),
        (written or "<!-- no goods movement -->\n", path.with_suffix(".MBGMCR03.xml")),
    )


@pytest.mark.parametrize("path", _cases(INVALID))
def test_invalid_event_gives_expected_error(path: Path) -> None:
    event = load_event(path)
    error: MesbridgeError
    try:
        REGISTRY.validate_json(event, REGISTRY.get(CONTRACT))
    except ContractViolation as violation:
        error = violation
    else:
        with pytest.raises(MappingError) as caught:
            completion_report(event, CONTRACT, PROFILE)
        error = caught.value
        for finding in error.findings:
            assert finding.where.startswith("/"), finding  # a JSON pointer into the event
    assert error.findings, "every error names where, the value and what was expected"
    _compare((_as_text(error_as_json(error)), path.with_suffix(".expected.json")))
