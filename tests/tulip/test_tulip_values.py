"""Record values go to Tulip unchanged, or not at all."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.tulip.values import changed_columns, encode_record, record_id_of
from contracts.errors import MappingError

# Tulip's decimal string: "[-]xx[.yyy]", no exponent.
TULIP_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")


def test_decimals_become_strings_that_keep_trailing_zeros() -> None:
    encoded = encode_record(
        {"id": "1000123", "q": Decimal("1.250"), "big": Decimal("1E+3"), "neg": Decimal("-0.000")}
    )
    assert encoded == {"id": "1000123", "q": "1.250", "big": "1000", "neg": "-0.000"}


def test_plain_json_values_pass_through() -> None:
    record = {"id": "1", "s": "text", "i": 42, "b": True, "n": None}
    assert encode_record(record) == record


def test_a_zoned_datetime_goes_out_as_utc_with_milliseconds() -> None:
    berlin = datetime(2026, 3, 1, 7, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    assert encode_record({"id": "1", "t": berlin})["t"] == "2026-03-01T06:30:00.000Z"
    with_ms = datetime(2026, 3, 1, 6, 30, 0, 123000, tzinfo=UTC)
    assert encode_record({"id": "1", "t": with_ms})["t"] == "2026-03-01T06:30:00.123Z"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1.25, "a Decimal or a decimal string"),
        (Decimal("NaN"), "a finite decimal number"),
        (Decimal("Infinity"), "a finite decimal number"),
        (datetime(2026, 3, 1, 7, 30), "a datetime with a time zone"),
        (datetime(2026, 3, 1, 7, 30, 0, 1, tzinfo=UTC), "at most millisecond precision"),
        (date(2026, 3, 1), "Tulip has no date-only type"),
        (["a"], "a string, integer, boolean"),
        (timedelta(seconds=5), "a string, integer, boolean"),
        (9_007_199_254_740_992, "a number within ±9007199254740991"),
        (-9_007_199_254_740_992, "a number within ±9007199254740991"),
        (Decimal("9007199254740991.5"), "a number within ±9007199254740991"),
        (Decimal("0.000000000000000000001"), "at most 20 digits after the decimal point"),
    ],
)
def test_values_that_would_change_on_the_way_are_refused(value: object, expected: str) -> None:
    with pytest.raises(MappingError) as caught:
        encode_record({"id": "000001000123", "ahvbb_quantity": value})
    (finding,) = caught.value.findings
    assert finding.where == "Tulip record 000001000123, column ahvbb_quantity"
    assert finding.value == repr(value)
    assert expected in finding.expected


def test_every_refused_value_is_reported_at_once() -> None:
    with pytest.raises(MappingError) as caught:
        encode_record({"id": "7", "a": 1.0, "b": "fine", "c": datetime(2026, 1, 1)})
    assert [f.where for f in caught.value.findings] == [
        "Tulip record 7, column a",
        "Tulip record 7, column c",
    ]


@pytest.mark.parametrize("record_id", [None, 1000123, "", " 12", "12 ", "a\tb", "a\nb", "a \tb"])
def test_the_record_id_must_be_a_tulip_record_id(record_id: object) -> None:
    with pytest.raises(MappingError, match="no usable id") as caught:
        record_id_of({"id": record_id} if record_id is not None else {})
    assert caught.value.findings[0].where == "Tulip record, column id"


@pytest.mark.parametrize("record_id", ["ORDER 12 A", "12  3", "A/B", "000001000123"])
def test_record_ids_with_inner_spaces_and_punctuation_are_fine(record_id: str) -> None:
    assert record_id_of({"id": record_id}) == record_id


def test_changed_columns_is_strict_about_type_and_representation() -> None:
    stored = {"id": "1", "q": "1.20", "flag": 1, "s": "x", "n": None, "extra": "kept"}
    wanted = {"id": "1", "q": "1.2", "flag": True, "s": "x", "n": None, "absent": None}
    assert changed_columns(wanted, stored) == ["q", "flag"]
    assert changed_columns({"id": "other", "s": "x"}, stored) == []


LIMIT = Decimal(9_007_199_254_740_991)


def test_the_number_limits_themselves_are_accepted() -> None:
    encoded = encode_record(
        {"id": "1", "a": 9_007_199_254_740_991, "b": -LIMIT, "c": Decimal("0.00000000000000000001")}
    )
    assert encoded == {
        "id": "1",
        "a": 9_007_199_254_740_991,
        "b": "-9007199254740991",
        "c": "0.00000000000000000001",
    }


def test_timestamp_columns_compare_instants_not_texts() -> None:
    stored = {"t": "2026-06-01T06:00:00.000Z", "s": "2026-06-01T06:00:00.000Z"}
    same = {"t": "2026-06-01T08:00:00+02:00", "s": "2026-06-01T08:00:00+02:00"}
    assert changed_columns(same, stored, timestamp_columns={"t"}) == ["s"]  # s is a text column
    later = {"t": "2026-06-01T08:00:01+02:00"}
    assert changed_columns(later, stored, timestamp_columns={"t"}) == ["t"]
    naive = {"t": "2026-06-01T06:00:00"}
    assert changed_columns(naive, stored, timestamp_columns={"t"}) == ["t"]
    garbage = {"t": "tomorrow"}
    assert changed_columns(garbage, stored, timestamp_columns={"t"}) == ["t"]
    assert changed_columns({"t": None}, stored, timestamp_columns={"t"}) == ["t"]


@given(
    st.integers(min_value=0, max_value=20).flatmap(
        lambda places: st.decimals(
            min_value=-LIMIT, max_value=LIMIT, places=places, allow_nan=False, allow_infinity=False
        )
    )
    | st.decimals(min_value=-LIMIT, max_value=LIMIT, allow_nan=False, allow_infinity=False).filter(
        lambda d: d.as_tuple().exponent >= -20  # type: ignore[operator]
    )
)
def test_every_decimal_within_tulip_limits_survives_exactly(value: Decimal) -> None:
    text = encode_record({"id": "1", "q": value})["q"]
    assert isinstance(text, str)
    assert TULIP_DECIMAL.match(text)
    assert Decimal(text) == value
    if value.as_tuple().exponent <= 0:  # type: ignore[operator]
        assert Decimal(text).as_tuple() == value.as_tuple()


def test_a_fixed_offset_zone_is_a_zone() -> None:
    value = datetime(2026, 1, 1, 1, 0, tzinfo=timezone(timedelta(hours=1)))
    assert encode_record({"id": "1", "t": value})["t"] == "2026-01-01T00:00:00.000Z"
