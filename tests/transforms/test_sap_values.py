"""The SAP value rules of docs/normalisation.md, as examples and as properties."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.errors import MappingError
from transforms.sap_values import (
    FieldRef,
    sap_batch,
    sap_date,
    sap_decimal,
    sap_local_datetime,
    sap_material,
    sap_order_number,
    sap_time,
    sap_upper,
)

REF = FieldRef("/LOIPRO01/IDOC/E1AFKOL/GAMNG", 12)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("41.250", Decimal("41.250")),
        ("  3.5", Decimal("3.5")),
        ("1.000-", Decimal("-1.000")),
        ("-1.000", Decimal("-1.000")),
        (".5", Decimal("0.5")),
        ("5000", Decimal("5000")),
        ("0.000", Decimal("0.000")),
    ],
)
def test_sap_decimal_accepts_sap_notation(text: str, expected: Decimal) -> None:
    value = sap_decimal(text, REF, allow_negative=True)
    assert value == expected
    assert value.as_tuple().exponent == expected.as_tuple().exponent  # scale kept


@pytest.mark.parametrize("text", ["12,5", "1e3", "1.000.0", "", "-1-", "NaN", "1 000", "+5"])
def test_sap_decimal_refuses_anything_else_naming_field_and_value(text: str) -> None:
    with pytest.raises(MappingError) as caught:
        sap_decimal(text, REF)
    (finding,) = caught.value.findings
    assert finding.where == REF.where
    assert finding.line == 12
    assert finding.value == text


def test_negative_quantity_refused_unless_allowed() -> None:
    with pytest.raises(MappingError, match="negative"):
        sap_decimal("2.000-", REF)


@given(st.decimals(min_value=0, max_value=Decimal("9999999999999.999"), places=3))
def test_sap_decimal_round_trips_exactly(value: Decimal) -> None:
    assert sap_decimal(format(value, "f"), REF) == value
    assert sap_decimal(format(value, "f") + "-", REF, allow_negative=True) == -value


def test_dates_and_empty_dates() -> None:
    assert sap_date("20261203", REF) == date(2026, 12, 3)
    assert sap_date("00000000", REF) is None
    assert sap_date("", REF) is None
    for bad in ("20261340", "2026-12-03", "202612", "20260229"):
        with pytest.raises(MappingError):
            sap_date(bad, REF)


def test_times_including_sap_end_of_day() -> None:
    assert sap_time("061502", REF) == timedelta(hours=6, minutes=15, seconds=2)
    assert sap_time("240000", REF) == timedelta(hours=24)
    for bad in ("246000", "2400", "12:00:00", "236100"):
        with pytest.raises(MappingError):
            sap_time(bad, REF)


def test_local_datetime_uses_plant_zone_and_inclusive_finish() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    start = sap_local_datetime(date(2026, 12, 3), None, berlin, end_of_day=False)
    finish = sap_local_datetime(date(2026, 12, 3), None, berlin, end_of_day=True)
    summer = sap_local_datetime(date(2026, 7, 1), timedelta(hours=6), berlin, end_of_day=False)
    assert start is not None and start.isoformat() == "2026-12-03T00:00:00+01:00"
    assert finish is not None and finish.isoformat() == "2026-12-03T23:59:59+01:00"
    assert summer is not None and summer.isoformat() == "2026-07-01T06:00:00+02:00"
    midnight = sap_local_datetime(date(2026, 12, 3), timedelta(hours=24), berlin, end_of_day=True)
    assert midnight is not None and midnight.isoformat() == "2026-12-04T00:00:00+01:00"


@given(st.integers(min_value=0, max_value=10**12 - 1))
def test_numeric_order_numbers_pad_to_12(number: int) -> None:
    padded = sap_order_number(str(number), REF)
    assert len(padded) == 12
    assert int(padded) == number


@given(st.integers(min_value=0, max_value=10**18 - 1))
def test_numeric_materials_pad_to_18_and_keep_value(number: int) -> None:
    padded = sap_material(str(number), REF)
    assert len(padded) == 18
    assert int(padded) == number
    assert sap_material(padded, REF) == padded  # idempotent


def test_long_material_numbers() -> None:
    assert sap_material("ABC-4711-X", REF) == "ABC-4711-X"
    assert sap_material("a" * 40, REF, long_field=True) == "A" * 40
    with pytest.raises(MappingError, match="19 characters"):
        sap_material("A" * 19, REF)
    with pytest.raises(MappingError):
        sap_material("A" * 41, REF, long_field=True)


def test_order_number_too_long_is_an_error_not_a_cut() -> None:
    with pytest.raises(MappingError) as caught:
        sap_order_number("1234567890123", REF)
    assert caught.value.findings[0].value == "1234567890123"


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=10))
def test_batches_upper_case(batch: str) -> None:
    assert sap_batch(batch, REF) == batch.upper()


@given(st.text(alphabet="ABCDEFGHIJ0123456789_", min_size=11, max_size=30))
def test_batches_longer_than_10_are_refused_never_cut(batch: str) -> None:
    with pytest.raises(MappingError) as caught:
        sap_batch(batch, REF)
    assert batch in str(caught.value)
    assert "at most 10" in str(caught.value)


def test_upper_case_never_changes_a_values_length() -> None:
    # "ß".upper() is "SS": the batch would become another one, two characters longer.
    assert sap_upper("ß1a") == "ß1A"
    assert sap_batch("ßßßßßßßßßß", REF) == "ßßßßßßßßßß"
    assert sap_material("ab-ß", REF) == "AB-ß"
    assert sap_upper("x25j0001") == "X25J0001"
