"""The Tulip completion reader, field by field: errors by JSON pointer, identity, properties."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import MappingError
from contracts.registry import ContractRegistry
from integration.mapping_files import load_mapping_profile
from tests.support.sap_sender import idoc_sender
from transforms.mbgmcr import goods_movement_idocs
from transforms.model import MaterialRole, PerformanceReport
from transforms.tulip_completion import SENDER, completion_report

PROFILE = load_mapping_profile()
REGISTRY = ContractRegistry.load()
CONTRACT = "tulip/completion/1"
IDOC_SENDER = idoc_sender()
BASE: dict[str, Any] = {
    "event": "completion",
    "version": "1",
    "event_id": "EV-1",
    "occurred_at": "2026-12-02T14:05:00+01:00",
    "station": "Granulation-1",
    "operator": "jdoe",
    "order_number": "600001",
    "plant": "1000",
    "phase": "0020",
    "final": False,
    "yield": {"material": "500001", "quantity": "120.000", "unit": "kg"},
    "consumed": [{"material": "300010", "quantity": "12.500", "unit": "kg"}],
}


def _event(**changes: Any) -> dict[str, Any]:
    event = copy.deepcopy(BASE)
    for name, value in changes.items():
        if value is ...:
            event.pop(name, None)
        else:
            event[name] = value
    return event


def _report(**changes: Any) -> PerformanceReport:
    return completion_report(_event(**changes), CONTRACT, PROFILE)


def _error(event: Any, contract: str = CONTRACT) -> MappingError:
    with pytest.raises(MappingError) as caught:
        completion_report(event, contract, PROFILE)
    return caught.value


def test_the_base_event_is_valid_under_its_contract() -> None:
    assert str(REGISTRY.validate_json(_event()).key) == CONTRACT


def test_identity_sender_document_and_idempotency_key() -> None:
    report = _report()

    assert report.sender == SENDER == "tulip"
    assert report.document_id == "EV-1"
    assert report.idempotency_key == "tulip:tulip:EV-1"
    assert report.contract == CONTRACT
    assert report.order_number == "000000600001"


def test_the_station_is_not_part_of_the_key() -> None:
    again = _report(station="Granulation-2", operator="other")

    assert again.idempotency_key == _report().idempotency_key


def test_event_time_keeps_the_instant_and_its_offset() -> None:
    report = _report(occurred_at="2026-12-02T13:05:00.250Z")

    assert report.event_time == datetime(2026, 12, 2, 13, 5, 0, 250000, tzinfo=UTC)
    assert report.event_time.utcoffset() == timedelta(0)
    assert _report().event_time.utcoffset() == timedelta(hours=1)


@pytest.mark.parametrize(
    "value", ["2026-12-02T14:05:00", "2026-12-02 14:05:00+01:00", "2026-13-02T14:05:00Z", 17]
)
def test_a_time_without_offset_or_not_a_time_is_refused(value: object) -> None:
    error = _error(_event(occurred_at=value))

    [finding] = error.findings
    assert finding.where == "/occurred_at"
    assert finding.value == str(value)
    assert error.message_ref == "Tulip completion EV-1"


def test_a_naive_time_is_never_guessed() -> None:
    error = _error(_event(occurred_at="2026-12-02T14:05:00"))

    assert "UTC offset" in error.findings[0].expected
    assert "never guessed" in error.findings[0].expected


def test_confirmation_carries_yield_scrap_final_and_times() -> None:
    report = _report(
        final=True,
        scrap={"quantity": "0.5", "unit": "g"},
        started_at="2026-12-02T09:00:00+01:00",
    )

    [confirmation] = report.confirmations
    assert confirmation.phase == "0020"
    assert confirmation.yield_quantity is not None
    assert confirmation.yield_quantity.value == Decimal("120.000")
    assert confirmation.scrap_quantity is not None
    assert (confirmation.scrap_quantity.value, confirmation.scrap_quantity.unit.sap) == (
        Decimal("0.5"),
        "G",
    )
    assert confirmation.final is True
    assert confirmation.finished_at == report.event_time
    assert confirmation.started_at == datetime(2026, 12, 2, 8, 0, tzinfo=UTC)
    produced = [a for a in report.actuals if a.role is MaterialRole.PRODUCED]
    assert [a.final for a in produced] == [True]


def test_scrap_is_confirmed_but_never_posted() -> None:
    report = _report(scrap={"quantity": "2", "unit": "kg"}, consumed=None)

    assert [a.role for a in report.actuals] == [MaterialRole.PRODUCED]


def test_no_phase_means_goods_movements_only() -> None:
    report = _report(phase=..., **{"yield": None})

    assert report.confirmations == ()
    assert [a.phase for a in report.actuals] == [None]


@pytest.mark.parametrize(
    "changes",
    [
        {"yield": {"material": "500001", "quantity": "1", "unit": "kg"}},
        {"yield": None, "scrap": {"quantity": "1", "unit": "kg"}},
        {"yield": None, "final": True},
    ],
)
def test_yield_scrap_or_final_without_phase_is_refused(changes: dict[str, Any]) -> None:
    error = _error(_event(phase=None, **changes))

    assert [f.where for f in error.findings] == ["/phase"]


def test_reversal_event_reverses_every_line_and_confirms_nothing() -> None:
    report = _report(reversal=True, by_products=[{"material": "9", "quantity": "1", "unit": "kg"}])

    assert report.confirmations == ()
    assert all(a.reversal for a in report.actuals)
    assert not any(a.final for a in report.actuals)


def test_a_line_reversal_is_a_return_and_never_a_final_issue() -> None:
    returned = {"material": "300010", "quantity": "1", "unit": "kg", "reversal": True}
    report = _report(consumed=[returned])

    consumed = [a for a in report.actuals if a.role is MaterialRole.CONSUMED]
    assert [(a.reversal, a.final) for a in consumed] == [(True, False)]
    assert [a.reversal for a in report.actuals if a.role is MaterialRole.PRODUCED] == [False]
    error = _error(_event(consumed=[{**returned, "final_issue": True}]))
    assert [f.where for f in error.findings] == ["/consumed/0/final_issue"]


def test_every_problem_is_reported_at_once_by_json_pointer() -> None:
    event = _event(
        order_number="",
        plant="10000",
        consumed=[
            {"material": "300010", "quantity": "1", "unit": "kg"},
            {"material": "300011", "quantity": 2.5, "unit": "kg"},
            {"material": "300012", "quantity": "1", "unit": "oz", "batch": "B1234567890"},
        ],
    )
    event["yield"]["quantity"] = "-1"

    error = _error(event)

    assert [(f.where, f.value) for f in error.findings] == [
        ("/order_number", ""),
        ("/plant", "10000"),
        ("/yield/quantity", "-1"),
        ("/consumed/1/quantity", "2.5"),
        ("/consumed/2/unit", "oz"),
        ("/consumed/2/batch", "B1234567890"),
    ]
    assert "declare the connector input as Text" in error.findings[3].expected
    assert "oz" in str(error) and "/consumed/2/unit" in str(error)


def test_unknown_unit_names_field_value_and_the_known_codes() -> None:
    error = _error(_event(consumed=[{"material": "1", "quantity": "1", "unit": "lb"}]))

    [finding] = error.findings
    assert (finding.where, finding.value) == ("/consumed/0/unit", "lb")
    assert "kg" in finding.expected


def test_an_event_for_another_contract_is_refused() -> None:
    error = _error(_event(), contract="tulip/completion/9")

    assert error.findings[0].value == "tulip/completion/9"
    assert "tulip/completion/1" in error.findings[0].expected
    assert [f.where for f in _error(_event(version="2")).findings] == ["/version"]


@pytest.mark.parametrize("value", ["", "has blank", "x" * 129, "é", None, 7])
def test_an_event_id_that_cannot_be_a_key_is_refused(value: object) -> None:
    error = _error(_event(event_id=value))

    assert [f.where for f in error.findings] == ["/event_id"]
    assert error.message_ref == "Tulip completion event"


def test_not_an_object_is_refused() -> None:
    assert _error(["not", "an", "event"]).findings[0].where == "/"


def test_an_event_that_reports_nothing_is_refused() -> None:
    error = _error(_event(phase=None, consumed=[], **{"yield": None}))

    assert [f.where for f in error.findings] == ["/"]


def test_a_phase_alone_is_a_confirmation_of_activity() -> None:
    report = _report(consumed=..., **{"yield": ...})

    assert report.actuals == ()
    assert [c.phase for c in report.confirmations] == ["0020"]


# ---------------------------------------------------------------------------- properties

_decimals = st.decimals(
    min_value=Decimal("0.001"), max_value=Decimal("9999999999999.999"), places=3, allow_nan=False
)


def _text(value: Decimal, extra_zeros: int) -> str:
    text = format(value, "f")
    if extra_zeros:
        text += ("" if "." in text else ".") + "0" * extra_zeros
    return text


@settings(max_examples=80, deadline=None)
@given(
    st.lists(st.tuples(_decimals, st.integers(0, 3)), min_size=1, max_size=6),
    st.tuples(_decimals, st.integers(0, 3)),
)
def test_quantities_keep_their_exact_decimal_value_to_entry_qnt(
    lines: list[tuple[Decimal, int]], produced: tuple[Decimal, int]
) -> None:
    texts = [_text(value, zeros) for value, zeros in lines]
    yield_text = _text(*produced)
    event = _event(
        consumed=[
            {"material": f"3000{index}", "quantity": text, "unit": "kg"}
            for index, text in enumerate(texts)
        ],
        **{"yield": {"material": "500001", "quantity": yield_text, "unit": "pc"}},
    )
    REGISTRY.validate_json(event)  # what the HTTP ingest checks first

    report = completion_report(event, CONTRACT, PROFILE)
    idocs = goods_movement_idocs(
        report,
        PROFILE,
        sender=IDOC_SENDER,
        created_at=datetime(2026, 12, 2, tzinfo=UTC),
        docnum_base=1,
    )

    assert [a.quantity.value for a in report.actuals] == [Decimal(yield_text)] + [
        Decimal(text) for text in texts
    ]
    written = {
        idoc.gm_code: [Decimal(str(q.text)) for q in idoc.element.iterfind(".//ENTRY_QNT")]
        for idoc in idocs
    }
    assert written["02"] == [Decimal(yield_text)]
    assert written["03"] == [Decimal(text) for text in texts]
    for idoc in idocs:
        for entry in idoc.element.iterfind(".//ENTRY_QNT"):
            assert len(str(entry.text).partition(".")[2]) == 3  # SAP QUAN 13,3, never rounded
