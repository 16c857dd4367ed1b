"""Value rules of the performance reader: exact quantities, times, contract mismatch."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree

from contracts.errors import MappingError
from transforms.b2mml_performance import performance_report
from transforms.mapping import MappingProfile

REPO_ROOT = Path(__file__).resolve().parents[2]
_PROFILE_PATH = REPO_ROOT / "integration" / "defaults" / "mapping.toml"
PROFILE = MappingProfile.from_mapping(
    tomllib.loads(_PROFILE_PATH.read_text()), source=str(_PROFILE_PATH)
)
V7 = "b2mml/OperationsPerformance/V7"


def _document(quantity: str, *, end_time: str = "", segment_end: str = "") -> etree._Element:
    response_end = f"<EndTime>{end_time}</EndTime>" if end_time else ""
    actual_end = f"<ActualEndTime>{segment_end}</ActualEndTime>" if segment_end else ""
    text = f"""<ProcessOperationsPerformance xmlns="http://www.mesa.org/xml/B2MML" releaseID="7">
<ApplicationArea><Sender><LogicalID>PASX</LogicalID></Sender>
<CreationDateTime>2025-01-01T00:00:00Z</CreationDateTime><BODID>B1</BODID></ApplicationArea>
<DataArea><Process/><OperationsPerformance><OperationsResponse>{response_end}
<OperationsType>Production</OperationsType><OperationsRequestID>42</OperationsRequestID>
<SegmentResponse><ID>0010</ID>{actual_end}<MaterialActual><ID>1</ID>
<MaterialDefinitionID>4711</MaterialDefinitionID><MaterialUse>Consumed</MaterialUse>
<Quantity><QuantityString>{quantity}</QuantityString><UnitOfMeasure>KG</UnitOfMeasure></Quantity>
</MaterialActual></SegmentResponse></OperationsResponse></OperationsPerformance></DataArea>
</ProcessOperationsPerformance>"""
    return etree.fromstring(text.encode())


@given(
    st.decimals(
        allow_nan=False, allow_infinity=False, places=3, min_value=-(10**13), max_value=10**13
    )
)
def test_quantities_round_trip_exactly(value: Decimal) -> None:
    text = format(value, "f")
    report = performance_report(_document(text), V7, PROFILE)
    (actual,) = report.actuals
    # Same digits and scale (str compares 41.250 and 41.25 as different), sign in `reversal`.
    assert str(actual.quantity.value) == format(abs(value), "f")
    assert actual.reversal is (value < 0)
    assert isinstance(actual.quantity.value, Decimal)


@pytest.mark.parametrize("text", ["", "1e3", "1,5", "1.000,5", "NaN", "Infinity", "--1", "1 000"])
def test_quantity_that_is_not_a_plain_decimal_is_refused(text: str) -> None:
    with pytest.raises(MappingError, match="QuantityString"):
        performance_report(_document(text), V7, PROFILE)


def test_order_number_is_padded_like_aufnr() -> None:
    assert performance_report(_document("1"), V7, PROFILE).order_number == "000000000042"


def test_event_time_prefers_response_end_then_segment_end_then_creation() -> None:
    both = _document("1", end_time="2025-02-01T10:00:00+01:00", segment_end="2025-02-02T10:00:00Z")
    assert performance_report(both, V7, PROFILE).event_time.isoformat() == (
        "2025-02-01T10:00:00+01:00"
    )
    segment = _document("1", segment_end="2025-02-02T10:00:00.5Z")
    assert performance_report(segment, V7, PROFILE).event_time.isoformat() == (
        "2025-02-02T10:00:00.500000+00:00"
    )
    neither = _document("1")
    assert performance_report(neither, V7, PROFILE).event_time.isoformat() == (
        "2025-01-01T00:00:00+00:00"
    )


@pytest.mark.parametrize(
    "value", ["2025-02-02T10:00:00", "2025-02-30T10:00:00Z", "2025-02-02T10:00:00.1234567Z"]
)
def test_segment_end_time_that_cannot_be_read_exactly_is_refused(value: str) -> None:
    with pytest.raises(MappingError, match="ActualEndTime") as caught:
        performance_report(_document("1", segment_end=value), V7, PROFILE)
    (finding,) = caught.value.findings
    assert finding.value == value


def test_root_of_another_contract_is_refused() -> None:
    with pytest.raises(MappingError, match="not a b2mml/ProductionPerformance/V0600") as caught:
        performance_report(_document("1"), "b2mml/ProductionPerformance/V0600", PROFILE)
    assert "ProcessProductionPerformance" in caught.value.findings[0].expected


def _site(plant: str) -> str:
    return (
        f"<HierarchyScope><EquipmentID>{plant}</EquipmentID>"
        "<EquipmentLevel>Site</EquipmentLevel></HierarchyScope>"
    )


def _responses(*sites: tuple[str, str, str]) -> etree._Element:
    """A V7 performance of order 42, one response per (response Site, segment Site,
    actual Site); an empty string leaves that level's Site out."""
    responses = "".join(
        f"""<OperationsResponse>{_site(response) if response else ""}
<OperationsType>Production</OperationsType><OperationsRequestID>42</OperationsRequestID>
<SegmentResponse><ID>0010</ID>{_site(segment) if segment else ""}<MaterialActual><ID>1</ID>
{_site(actual) if actual else ""}<MaterialDefinitionID>4711</MaterialDefinitionID>
<MaterialUse>Consumed</MaterialUse>
<Quantity><QuantityString>1</QuantityString><UnitOfMeasure>KG</UnitOfMeasure></Quantity>
</MaterialActual></SegmentResponse></OperationsResponse>"""
        for response, segment, actual in sites
    )
    text = f"""<ProcessOperationsPerformance xmlns="http://www.mesa.org/xml/B2MML" releaseID="7">
<ApplicationArea><Sender><LogicalID>PASX</LogicalID></Sender>
<CreationDateTime>2025-01-01T00:00:00Z</CreationDateTime><BODID>B1</BODID></ApplicationArea>
<DataArea><Process/><OperationsPerformance>{responses}</OperationsPerformance></DataArea>
</ProcessOperationsPerformance>"""
    return etree.fromstring(text.encode())


def test_responses_naming_different_plants_are_refused_not_merged() -> None:
    with pytest.raises(MappingError, match=r"2 plants \(1100, 2000\)") as caught:
        performance_report(_responses(("1100", "", ""), ("2000", "", "")), V7, PROFILE)
    assert [f.value for f in caught.value.findings] == ["1100", "2000"]
    # Naming the same plant twice, or once, is one plant.
    report = performance_report(_responses(("1100", "", ""), ("1100", "", "")), V7, PROFILE)
    assert report.plant == "1100"


def test_a_segment_or_actual_that_names_its_plant_keeps_it() -> None:
    report = performance_report(
        _responses(("1100", "", "2000"), ("1100", "3000", ""), ("1100", "", "")), V7, PROFILE
    )
    assert report.plant == "1100"
    assert [actual.plant for actual in report.actuals] == ["2000", "3000", None]
