"""Property tests: for generated orders the schedule is valid, exact and reproducible (V0600, V7).

Generated: 1-3 orders with 1-6 phases, 0-4 components each (some deleted, some
by-products), quantities as ``Decimal`` with 0-3 decimals up to 10^10, every
unit of the default unit table, numeric and alphanumeric materials, optional
batches, texts in any script, optional aware date-times in several zones.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from tests.b2mml.b2mml_factory import CREATED_AT, default_profile, order, phase
from transforms.b2mml_common import NS_V0600, NS_V7
from transforms.b2mml_schedule import B2mmlVersion, schedule_document_id, to_pasx_schedule
from transforms.mapping import MappingProfile
from transforms.model import (
    Component,
    ComponentRole,
    Phase,
    ProcessOrder,
    Quantity,
    RecipeReference,
)

VERSIONS: tuple[B2mmlVersion, ...] = ("V0600", "V7")
NAMESPACES = {"V0600": NS_V0600, "V7": NS_V7}
EXAMPLES = settings(max_examples=60, deadline=None)

ZONES = [ZoneInfo("Europe/Berlin"), ZoneInfo("UTC"), ZoneInfo("America/New_York")]
UNITS = [row.unit for row in default_profile().units.rows]

quantities = st.builds(
    lambda digits, places: Decimal(digits).scaleb(-places),
    st.integers(min_value=0, max_value=10**13 - 1),
    st.integers(min_value=0, max_value=3),
)
materials = st.one_of(
    st.integers(min_value=1, max_value=10**18 - 1).map(lambda number: f"{number:018d}"),
    st.from_regex(r"[A-Z][A-Z0-9_-]{0,39}", fullmatch=True),
)
batches = st.none() | st.from_regex(r"[A-Z0-9]{1,10}", fullmatch=True)
texts = st.none() | st.text(
    alphabet=st.characters(exclude_categories=("Cs", "Cc", "Cn")) | st.sampled_from("\n\t"),
    max_size=40,
)
moments = st.none() | st.datetimes(
    min_value=datetime(2000, 1, 1),
    max_value=datetime(2099, 12, 31),
    timezones=st.sampled_from(ZONES),
    allow_imaginary=False,
)


@st.composite
def components(draw: st.DrawFn, item: int) -> Component:
    role = draw(st.sampled_from(ComponentRole))
    return Component(
        reservation=draw(st.none() | st.just("0000098765")),
        reservation_item=f"{item:04d}",
        item_number=None,
        material=draw(materials),
        plant="1000",
        storage_location=draw(st.none() | st.sampled_from(["0001", "RM01"])),
        batch=draw(batches),
        required=Quantity(value=draw(quantities), unit=draw(st.sampled_from(UNITS))),
        requirement_date=None,
        movement_type="531" if role is ComponentRole.BY_PRODUCT else "261",
        role=role,
        deleted=draw(st.booleans()),
    )


@st.composite
def process_orders(draw: st.DrawFn) -> list[ProcessOrder]:
    order_numbers = draw(st.lists(st.integers(1, 10**12 - 1), min_size=1, max_size=3, unique=True))
    orders: list[ProcessOrder] = []
    for order_number in order_numbers:
        phase_numbers = draw(st.lists(st.integers(1, 9999), min_size=1, max_size=6, unique=True))
        item = 0
        phases: list[Phase] = []
        for phase_number in phase_numbers:
            count = draw(st.integers(0, 4))
            lines = [draw(components(item + offset + 1)) for offset in range(count)]
            item += count
            phases.append(
                phase(
                    f"{phase_number:04d}",
                    draw(texts),
                    *lines,
                    work_center=draw(st.none() | st.sampled_from(["GRAN01", "PRESS-02"])),
                    control_key=draw(st.sampled_from(["PI01", "PI02", "ZP10"])),
                    start=draw(moments),
                    finish=draw(moments),
                )
            )
        orders.append(
            order(
                f"{order_number:012d}",
                *phases,
                material=draw(materials),
                total=Quantity(value=draw(quantities), unit=draw(st.sampled_from(UNITS))),
                batch=draw(batches),
                plant=draw(st.sampled_from(["1000", "1100", "2000"])),
                docnum=f"{draw(st.integers(1, 10**16 - 1)):016d}",
                start=draw(moments),
                finish=draw(moments),
                recipe=draw(
                    st.none()
                    | st.just(
                        RecipeReference(task_list_type="2", task_list="50000123", counter="01")
                    )
                ),
            )
        )
    return orders


def _expected_lines(orders: list[ProcessOrder]) -> list[tuple[str, Decimal]]:
    """(material, quantity) of every line the schedule must carry, in document order."""
    expected: list[tuple[str, Decimal]] = []
    for process_order in orders:
        for step in process_order.phases:
            expected.extend(
                (line.material, line.required.value) for line in step.components if not line.deleted
            )
            if step is process_order.phases[-1]:
                expected.append((process_order.material, process_order.total.value))
    return expected


def _written_lines(root: etree._Element, version: str) -> list[tuple[str, str]]:
    namespace = NAMESPACES[version]
    lines = []
    for requirement in root.iter(f"{{{namespace}}}MaterialRequirement"):
        material = requirement.findtext(f"{{{namespace}}}MaterialDefinitionID")
        quantity = requirement.findtext(f"{{{namespace}}}Quantity/{{{namespace}}}QuantityString")
        assert material is not None
        assert quantity is not None
        lines.append((material, quantity))
    return lines


def _wire(
    orders: list[ProcessOrder], profile: MappingProfile, version: B2mmlVersion
) -> etree._Element:
    document = to_pasx_schedule(orders, profile, created_at=CREATED_AT, version=version)
    return etree.fromstring(etree.tostring(document, encoding="UTF-8", xml_declaration=True))


@pytest.mark.parametrize("version", VERSIONS)
@EXAMPLES
@given(orders=process_orders())
def test_generated_schedule_is_valid_and_exact(
    version: B2mmlVersion,
    orders: list[ProcessOrder],
    profile: MappingProfile,
    profile_schemas: dict[str, etree.XMLSchema],
) -> None:
    root = _wire(orders, profile, version)
    schema = profile_schemas[version]
    assert schema.validate(root), str(schema.error_log)
    written = _written_lines(root, version)
    expected = _expected_lines(orders)
    # Same lines in the same order: nothing deleted slips in, nothing active is lost.
    assert [material for material, _ in written] == [material for material, _ in expected]
    for (_, text), (_, value) in zip(written, expected, strict=True):
        assert Decimal(text).as_tuple() == value.as_tuple()
        assert "E" not in text.upper()


@pytest.mark.official_b2mml
@pytest.mark.parametrize("version", VERSIONS)
@EXAMPLES
@given(orders=process_orders())
def test_generated_schedule_is_valid_under_the_official_schema(
    version: B2mmlVersion,
    orders: list[ProcessOrder],
    profile: MappingProfile,
    official_schemas: dict[str, etree.XMLSchema],
) -> None:
    root = _wire(orders, profile, version)
    schema = official_schemas[version]
    assert schema.validate(root), str(schema.error_log)


@EXAMPLES
@given(
    orders=process_orders(),
    later=st.timedeltas(min_value=timedelta(seconds=1), max_value=timedelta(days=3650)),
)
def test_document_id_is_deterministic(
    orders: list[ProcessOrder], later: timedelta, profile: MappingProfile
) -> None:
    first = to_pasx_schedule(orders, profile, created_at=CREATED_AT, version="V7")
    again = to_pasx_schedule(orders, profile, created_at=CREATED_AT + later, version="V0600")
    bodid = first.findtext(f"{{{NS_V7}}}ApplicationArea/{{{NS_V7}}}BODID")
    assert bodid == schedule_document_id(orders)
    assert again.findtext(f"{{{NS_V0600}}}ApplicationArea/{{{NS_V0600}}}BODID") == bodid
    docnum = orders[0].control.docnum
    other_docnum = ("8" if docnum[0] == "9" else "9") + docnum[1:]
    changed = order(orders[0].order_number, *orders[0].phases, docnum=other_docnum)
    assert schedule_document_id([changed, *orders[1:]]) != bodid
