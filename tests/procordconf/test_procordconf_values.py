"""PhaseConfirmation → sap/procordconf/1 field rules: exact quantities, final flag, errors."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from lxml import etree

from contracts.errors import MappingError
from contracts.registry import ContractRegistry
from integration.mapping_files import load_mapping_profile
from transforms.b2mml_performance import performance_report
from transforms.mapping import MappingProfile
from transforms.model import PerformanceReport, PhaseConfirmation, Quantity, Unit
from transforms.procordconf import (
    CONFIRMATION_ID_NAMESPACE,
    CONTRACT,
    ConfirmationDocument,
    order_confirmations,
)

PROFILE: MappingProfile = load_mapping_profile()
REGISTRY = ContractRegistry.load()
KG = Unit(sap="KG", iso="KGM")
PC = Unit(sap="ST", iso="PCE")


def _kg(value: str) -> Quantity:
    return Quantity(value=Decimal(value), unit=KG)


def _report(*confirmations: PhaseConfirmation, **changes: Any) -> PerformanceReport:
    report = PerformanceReport(
        sender="PASX01",
        document_id="EV-77-0001",
        contract="b2mml/ProductionPerformance/V0600",
        order_number="600001",
        # 23:30 UTC on 1 Dec is 2 Dec in Berlin: the posting date must be the plant's day.
        event_time=datetime(2026, 12, 1, 23, 30, tzinfo=UTC),
        plant="1000",
        actuals=(),
        confirmations=confirmations,
    )
    return replace(report, **changes)


def _one(confirmation: PhaseConfirmation, **changes: Any) -> ConfirmationDocument:
    (document,) = order_confirmations(_report(confirmation, **changes), PROFILE)
    REGISTRY.validate_json(document.to_json(), REGISTRY.get(CONTRACT))
    return document


def _body(document: ConfirmationDocument) -> dict[str, Any]:
    body = document.to_json()["ProcOrdConf2"]
    assert isinstance(body, dict)
    return body


def _error(report: PerformanceReport, profile: MappingProfile = PROFILE) -> MappingError:
    with pytest.raises(MappingError) as caught:
        order_confirmations(report, profile)
    return caught.value


# -- quantities ---------------------------------------------------------------------------


@given(
    st.decimals(min_value=0, max_value=Decimal("9999999999.999"), places=3, allow_nan=False),
    st.decimals(min_value=0, max_value=Decimal("9999999999.999"), places=3, allow_nan=False),
)
def test_quantities_keep_their_exact_value(yield_value: Decimal, scrap_value: Decimal) -> None:
    confirmation = PhaseConfirmation(
        phase="20",
        yield_quantity=Quantity(value=yield_value, unit=KG),
        scrap_quantity=Quantity(value=scrap_value, unit=KG),
    )
    body = _body(_one(confirmation))

    assert Decimal(body["ConfirmationYieldQuantity"]) == yield_value
    assert Decimal(body["ConfirmationScrapQuantity"]) == scrap_value
    # Written with SAP's three decimals, never as a JSON number.
    assert body["ConfirmationYieldQuantity"] == format(yield_value.quantize(Decimal("0.001")), "f")


@given(st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False))
def test_a_fourth_decimal_is_refused_never_rounded(value: Decimal) -> None:
    assume(value != value.quantize(Decimal("0.001")))
    confirmation = PhaseConfirmation(phase="20", yield_quantity=Quantity(value=value, unit=KG))

    (finding,) = _error(_report(confirmation)).findings
    assert finding.where == "PhaseConfirmation[1] (phase 20) ConfirmationYieldQuantity"
    assert finding.value == str(value)
    assert "never rounded" in finding.expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("-1", "a quantity of zero or more"),
        ("10000000000", "at most 10 digits before the decimal point (SAP QUAN 13,3)"),
        ("Infinity", "a quantity of zero or more"),
    ],
)
def test_quantities_sap_cannot_hold_are_refused(value: str, expected: str) -> None:
    confirmation = PhaseConfirmation(phase="20", scrap_quantity=_kg(value), source_line=42)

    (finding,) = _error(_report(confirmation)).findings

    assert finding.where == "PhaseConfirmation[1] (phase 20) ConfirmationScrapQuantity"
    assert finding.line == 42
    assert finding.value == str(Decimal(value))
    assert finding.expected == expected


def test_yield_and_scrap_in_different_units_are_refused_not_converted() -> None:
    confirmation = PhaseConfirmation(
        phase="20", yield_quantity=_kg("1"), scrap_quantity=Quantity(value=Decimal(2), unit=PC)
    )

    (finding,) = _error(_report(confirmation)).findings

    assert finding.where == "PhaseConfirmation[1] (phase 20) ConfirmationUnit"
    assert finding.value == "ConfirmationYieldQuantity in KG and ConfirmationScrapQuantity in ST"
    assert "never converted" in finding.expected


def test_unit_is_written_as_sap_code_and_iso_code() -> None:
    body = _body(
        _one(PhaseConfirmation(phase="20", yield_quantity=Quantity(value=Decimal(5), unit=PC)))
    )

    assert (body["ConfirmationUnit"], body["ConfirmationUnitISOCode"]) == ("ST", "PCE")


def test_a_unit_without_iso_code_is_refused() -> None:
    confirmation = PhaseConfirmation(
        phase="20", yield_quantity=Quantity(value=Decimal(1), unit=Unit(sap="KG", iso=""))
    )

    (finding,) = _error(_report(confirmation)).findings

    assert finding.where == "PhaseConfirmation[1] (phase 20) ConfirmationUnitISOCode"
    assert finding.value == ""


def test_a_completion_only_confirmation_has_no_quantity_and_no_unit() -> None:
    body = _body(_one(PhaseConfirmation(phase="20", final=True)))

    for name in ("ConfirmationYieldQuantity", "ConfirmationScrapQuantity", "ConfirmationUnit"):
        assert name not in body


# -- final flag, phase, order, plant --------------------------------------------------------


@pytest.mark.parametrize(("final", "kind"), [(True, "X"), (False, "")])
def test_final_flag_maps_to_final_confirmation_type(final: bool, kind: str) -> None:
    document = _one(PhaseConfirmation(phase="20", yield_quantity=_kg("1"), final=final))
    body = _body(document)

    assert body["IsFinalConfirmation"] is final
    assert body["FinalConfirmationType"] == kind
    assert document.final is final


@pytest.mark.parametrize(
    ("phase", "written"),
    [("20", "0020"), ("0030", "0030"), ("7", "0007"), ("p1", "P1"), (" 10 ", "0010")],
)
def test_phase_is_padded_like_vornr(phase: str, written: str) -> None:
    document = _one(PhaseConfirmation(phase=phase))

    assert _body(document)["OrderOperation"] == written
    assert document.phase == written
    assert document.to_json()["Source"]["Phase"] == phase


@pytest.mark.parametrize("phase", ["00100", "", "1-0", "ÄB", "P 1"])
def test_a_phase_that_is_no_sap_phase_number_is_refused(phase: str) -> None:
    (finding,) = _error(_report(PhaseConfirmation(phase=phase))).findings

    assert finding.where == f"PhaseConfirmation[1] (phase {phase}) OrderOperation"
    assert finding.value == phase


def test_order_number_is_padded_like_aufnr_and_a_long_one_refused() -> None:
    assert _body(_one(PhaseConfirmation(phase="1")))["OrderID"] == "000000600001"
    assert _body(_one(PhaseConfirmation(phase="1"), order_number="po-17"))["OrderID"] == "PO-17"

    error = _error(_report(PhaseConfirmation(phase="1"), order_number="1234567890123"))

    (finding,) = error.findings
    assert finding.where == "PerformanceReport order_number (OrderID)"
    assert finding.value == "1234567890123"


def test_the_plant_comes_from_the_report_else_from_the_senders_plant() -> None:
    confirmation = PhaseConfirmation(phase="1")
    with_sender = replace(PROFILE, sender_plants={"PASX01": "1100"})

    (document,) = order_confirmations(_report(confirmation, plant=None), with_sender)

    assert _body(document)["Plant"] == "1100"
    assert _body(_one(confirmation))["Plant"] == "1000"


def test_no_plant_is_refused_never_guessed() -> None:
    (finding,) = _error(_report(PhaseConfirmation(phase="1"), plant=None)).findings

    assert finding.where == "PerformanceReport plant (Plant)"
    assert finding.value is None
    assert "never guessed" in finding.expected


def test_the_same_phase_twice_is_refused() -> None:
    report = _report(PhaseConfirmation(phase="20"), PhaseConfirmation(phase="0020"))

    (finding,) = _error(report).findings

    assert finding.where == "PhaseConfirmation[2] (phase 0020) OrderOperation"
    assert "already confirmed by PhaseConfirmation[1]" in finding.expected


def test_all_problems_are_reported_at_once() -> None:
    report = _report(
        PhaseConfirmation(phase="20", yield_quantity=_kg("1.0001")),
        PhaseConfirmation(phase="12345", scrap_quantity=_kg("-2")),
        plant=None,
    )

    error = _error(report)

    assert [f.where for f in error.findings] == [
        "PerformanceReport plant (Plant)",
        "PhaseConfirmation[1] (phase 20) ConfirmationYieldQuantity",
        "PhaseConfirmation[2] (phase 12345) OrderOperation",
        "PhaseConfirmation[2] (phase 12345) ConfirmationScrapQuantity",
    ]
    assert error.message_ref == "b2mml:PASX01:EV-77-0001"
    assert error.summary == "the confirmations of order 600001 cannot be sent to SAP (4 problems)"


# -- dates, times, identity -----------------------------------------------------------------


def test_posting_date_is_the_plants_day_of_the_event() -> None:
    body = _body(_one(PhaseConfirmation(phase="1")))

    # 2026-12-02T00:00Z in milliseconds: the Berlin day of 2026-12-01T23:30Z.
    assert body["PostingDate"] == "/Date(1796169600000)/"


def test_execution_times_are_plant_local_to_the_second_and_exact_in_source() -> None:
    start = datetime(2026, 12, 1, 22, 59, 58, 750000, tzinfo=UTC)
    end = datetime(2026, 12, 2, 6, 15, tzinfo=timezone(timedelta(hours=1)))
    document = _one(PhaseConfirmation(phase="1", started_at=start, finished_at=end))
    body = _body(document)

    assert body["ConfirmedExecutionStartDate"] == "/Date(1796083200000)/"  # 2026-12-01
    assert body["ConfirmedExecutionStartTime"] == "PT23H59M58S"
    assert body["ConfirmedExecutionEndDate"] == "/Date(1796169600000)/"  # 2026-12-02
    assert body["ConfirmedExecutionEndTime"] == "PT06H15M00S"
    source = document.to_json()["Source"]
    assert source["ActualStart"] == "2026-12-01T22:59:58.750000+00:00"
    assert source["ActualEnd"] == "2026-12-02T06:15:00+01:00"


def test_a_start_after_the_end_is_refused() -> None:
    end = datetime(2026, 12, 1, 8, tzinfo=UTC)
    confirmation = PhaseConfirmation(
        phase="1", started_at=end + timedelta(seconds=1), finished_at=end
    )

    (finding,) = _error(_report(confirmation)).findings

    assert finding.where == "PhaseConfirmation[1] (phase 1) ConfirmedExecutionEndDate"
    assert finding.value == "2026-12-01T08:00:00+00:00"


def test_naive_times_are_a_caller_bug() -> None:
    with pytest.raises(ValueError, match="started_at must be timezone-aware"):
        order_confirmations(
            _report(PhaseConfirmation(phase="1", started_at=datetime(2026, 12, 1, 8))), PROFILE
        )
    with pytest.raises(ValueError, match=r"report\.event_time must be timezone-aware"):
        order_confirmations(_report(event_time=datetime(2026, 12, 1, 8)), PROFILE)


def test_message_id_is_uuid5_of_idempotency_key_and_phase() -> None:
    report = _report(PhaseConfirmation(phase="20"), PhaseConfirmation(phase="30"))

    first = order_confirmations(report, PROFILE)
    again = order_confirmations(report, PROFILE)

    assert first == again
    assert [d.message_id for d in first] == [
        uuid.uuid5(CONFIRMATION_ID_NAMESPACE, "b2mml:PASX01:EV-77-0001#0020"),
        uuid.uuid5(CONFIRMATION_ID_NAMESPACE, "b2mml:PASX01:EV-77-0001#0030"),
    ]
    for document in first:
        assert document.to_json()["MessageID"] == str(document.message_id)
        assert _body(document)["ExternalSystemConfirmation"] == str(document.message_id)
        assert document.order_id == "000000600001"


def test_confirmation_text_carries_the_document_id_or_a_stable_token() -> None:
    assert _body(_one(PhaseConfirmation(phase="1")))["ConfirmationText"] == "mesbridge EV-77-0001"

    long_id = "PASX-PERFORMANCE-DOCUMENT-2026-12-01-000000001"
    text = _body(_one(PhaseConfirmation(phase="1"), document_id=long_id))["ConfirmationText"]

    assert text.startswith("mesbridge ") and len(text) == len("mesbridge ") + 16
    assert (
        text == _body(_one(PhaseConfirmation(phase="1"), document_id=long_id))["ConfirmationText"]
    )


def test_goods_movements_are_never_posted_with_the_confirmation() -> None:
    assert _body(_one(PhaseConfirmation(phase="1", final=True)))["APIConfHasNoGoodsMovements"]


def test_a_report_without_confirmations_gives_no_document() -> None:
    assert order_confirmations(_report(), PROFILE) == []


def test_to_bytes_is_the_json_document() -> None:
    document = _one(PhaseConfirmation(phase="1", yield_quantity=_kg("2.5")))

    assert json.loads(document.to_bytes()) == document.to_json()
    assert b'"ConfirmationYieldQuantity": "2.500"' in document.to_bytes()


# -- end to end: B2MML SAPYield text → document ---------------------------------------------


def _v7_confirmation(yield_text: str) -> bytes:
    return f"""<ProcessOperationsPerformance xmlns="http://www.mesa.org/xml/B2MML" releaseID="7">
<ApplicationArea><Sender><LogicalID>PASX</LogicalID></Sender>
<CreationDateTime>2025-01-01T00:00:00Z</CreationDateTime><BODID>B1</BODID></ApplicationArea>
<DataArea><Process/><OperationsPerformance><OperationsResponse>
<HierarchyScope><EquipmentID>1000</EquipmentID><EquipmentLevel>Site</EquipmentLevel></HierarchyScope>
<OperationsType>Production</OperationsType><OperationsRequestID>42</OperationsRequestID>
<SegmentResponse><ID>0010</ID><SegmentData><ID>SAPYield</ID>
<Value><ValueString>{yield_text}</ValueString><UnitOfMeasure>KG</UnitOfMeasure></Value>
</SegmentData></SegmentResponse></OperationsResponse></OperationsPerformance></DataArea>
</ProcessOperationsPerformance>""".encode()


@given(st.decimals(min_value=0, max_value=Decimal("9999999999.999"), places=3, allow_nan=False))
def test_a_b2mml_yield_reaches_the_document_with_its_exact_value(value: Decimal) -> None:
    root = etree.fromstring(_v7_confirmation(format(value, "f")))
    report = performance_report(root, "b2mml/OperationsPerformance/V7", PROFILE)
    (confirmation,) = report.confirmations
    assert confirmation.yield_quantity is not None
    assert str(confirmation.yield_quantity.value) == format(value, "f")  # digits and scale kept

    (document,) = order_confirmations(report, PROFILE)

    assert Decimal(_body(document)["ConfirmationYieldQuantity"]) == value
