"""The shortcuts of the schedule writers decide as the full checks do.

``is_identifier`` and ``OrderContext.text`` answer most values from ``isalnum``
or ``isprintable`` before the pattern searches; ``decimal_text`` is the quantity
check without an error; ``_component_line`` writes a line without naming each
field's place and hands anything unusual to ``_checked_component_line``; written
date-times are remembered per process, keyed by everything their text depends on.
Each is held against the definition it shortcuts.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from contracts.errors import MappingError
from tests.b2mml.b2mml_factory import (
    BERLIN,
    CREATED_AT,
    KG,
    default_profile,
    order,
    phase,
)
from transforms import b2mml_schedule_plan as plan_module
from transforms.b2mml_common import (
    _NOT_NORMALIZED,
    _NOT_XML_CHAR,
    OrderContext,
    _plant_time,
    decimal_text,
    is_identifier,
)
from transforms.b2mml_schedule import write_pasx_schedule
from transforms.model import Component, ComponentRole, Quantity, Unit

# Characters at the edges of every rule: blanks, tab/CR/LF, controls, a non-breaking
# space, markup, non-ASCII letters, a lone surrogate and the two non-characters.
EDGES = " \t\r\n\x00\x01\x0b\x7f\x85\xa0&<>\"'-/.Äß0aZ\u2028\ud800\ufffe\uffff𝔘"
values = st.text(alphabet=st.sampled_from(EDGES) | st.characters(), max_size=8)


def _identifier_by_definition(value: str) -> bool:
    return (
        value != ""
        and not _NOT_XML_CHAR.search(value)
        and not _NOT_NORMALIZED.search(value)
        and value == value.strip(" ")
    )


def _quantity_text_by_definition(value: Decimal) -> str | None:
    if not value.is_finite() or (value.is_signed() and value):
        return None
    return format(value.copy_abs() if value.is_signed() else value, "f")


@settings(max_examples=500)
@given(values)
@example("")
@example(" lead")
@example("trail ")
@example("in side")
@example("a\tb")
@example("\xa0nbsp\xa0")
@example("\ud800")
@example("\ufffe")
@example("P&Q<R>")
def test_is_identifier_decides_as_the_definition(value: str) -> None:
    assert is_identifier(value) is _identifier_by_definition(value)


@given(values)
def test_text_passes_and_refuses_as_the_pattern_does(value: str) -> None:
    context = OrderContext(order("000001000300", phase("0010")), BERLIN)
    if not value.strip():
        assert context.text(value, "field") is None
    elif _NOT_XML_CHAR.search(value):
        with pytest.raises(MappingError):
            context.text(value, "field")
    else:
        assert context.text(value, "field") == value


@given(
    st.decimals(allow_nan=True, allow_infinity=True)
    | st.sampled_from([Decimal("-0"), Decimal("0E-7"), Decimal("1E+2"), Decimal("-0.000")])
)
def test_decimal_text_is_the_exact_plain_decimal(value: Decimal) -> None:
    assert decimal_text(value) == _quantity_text_by_definition(value)


LINE_VALUES = st.sampled_from(
    [None, "", "0001", "0000765432", "WD-01", "a b", " lead", "x\ty", "P&Q<R>", "Ä1", "\x01"]
)
lines = st.fixed_dictionaries(
    {
        "reservation": LINE_VALUES,
        "reservation_item": LINE_VALUES,
        "storage_location": LINE_VALUES,
        "batch": LINE_VALUES,
        "material": LINE_VALUES.filter(lambda value: value is not None),
        "required": st.builds(
            Quantity,
            value=st.sampled_from(["1.5", "-1", "-0", "NaN", "1E-9", "0"]).map(Decimal),
            unit=st.sampled_from([KG, Unit(sap="ZZ", iso="ZZ")]),
        ),
    }
)
LineWriter = Callable[
    [OrderContext, plan_module._PasxUnits, str, int, Component], plan_module.MaterialLine
]


@settings(max_examples=300, deadline=None)
@given(fields=lines, unit_seen=st.booleans())
def test_a_component_line_is_what_the_field_by_field_checks_give(
    fields: dict[str, Any], unit_seen: bool
) -> None:
    line = Component(
        item_number=None,
        plant="1000",
        requirement_date=None,
        movement_type="261",
        role=ComponentRole.CONSUMED,
        **fields,
    )
    profile = default_profile()
    context = OrderContext(order("000001000301", phase("0010", None, line)), BERLIN)

    def written(write: LineWriter) -> object:
        units = plan_module._PasxUnits(profile.units)
        if unit_seen:
            # The unit already written once in this schedule: the shortcut may take it.
            with contextlib.suppress(MappingError):
                plan_module._quantity(context, units, line.required, "field", "scope")
        try:
            return write(context, units, "0010", 1, line)
        except MappingError as exc:
            return ("error", str(exc), exc.message_ref, exc.findings)

    assert written(plan_module._component_line) == written(plan_module._checked_component_line)


def test_a_date_time_is_written_in_each_plant_zone_from_one_memo() -> None:
    profile = default_profile()
    moment = datetime(2026, 7, 1, 12, 0, tzinfo=BERLIN)
    berlin = OrderContext(order("000001000302", phase("0010")), BERLIN)
    new_york = OrderContext(order("000001000303", phase("0010")), ZoneInfo("America/New_York"))
    assert berlin.timestamp(moment, "field") == "2026-07-01T12:00:00+02:00"
    assert new_york.timestamp(moment, "field") == "2026-07-01T06:00:00-04:00"
    assert berlin.timestamp(moment, "field") == "2026-07-01T12:00:00+02:00"
    with pytest.raises(MappingError):
        berlin.timestamp(datetime(2026, 7, 1, 12, 0), "field")
    # And through the writers: two schedules, the same memo, each with its own texts.
    for version in ("V0600", "V7"):
        written = write_pasx_schedule(
            [order("000001000304", phase("0010", start=moment, finish=moment))],
            profile,
            created_at=CREATED_AT,
            version=version,  # type: ignore[arg-type]
        )
        assert b"2026-07-01T12:00:00+02:00" in written.body


def test_the_memo_of_written_date_times_is_bounded() -> None:
    maxsize = _plant_time.cache_parameters()["maxsize"]
    assert isinstance(maxsize, int) and 0 < maxsize <= 10_000
