"""LOIPRO IDoc → ProcessOrder: the bundled examples, every normalisation rule, and properties."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from contracts.errors import MappingError
from tests.support.idoc_factory import ComponentSpec, OrderSpec, PhaseSpec, build_loipro
from transforms.loipro import parse_loipro
from transforms.mapping import MappingProfile
from transforms.model import ComponentRole

EXAMPLES = Path(__file__).resolve().parents[2] / "deploy" / "examples" / "sap"
SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def parse(data: bytes) -> etree._Element:
    return etree.fromstring(data, SAFE)


def test_granulation_example(profile: MappingProfile) -> None:
    root = etree.parse(str(EXAMPLES / "LOIPRO01-granulation-order.xml"), SAFE).getroot()
    (order,) = parse_loipro(root, profile)
    assert order.order_number == "000001000234"
    assert order.material == "000000000000200140"
    assert order.total.value == Decimal("120.000")
    assert order.total.unit.iso == "KGM"
    assert order.scrap is not None and order.scrap.value == Decimal("0.500")
    assert order.batch == "G26L0042"  # upper-cased
    assert order.control.idempotency_key == ("ERPCLNT200", "LOIPRO", "0000000004711001")
    assert order.start is not None and order.start.isoformat() == "2026-12-03T06:00:00+01:00"
    assert order.finish is not None and order.finish.isoformat() == "2026-12-04T18:00:00+01:00"
    assert [phase.number for phase in order.phases] == ["0010", "0020", "0030"]
    components = order.active_components()
    assert [c.material for _, c in components] == [
        "000000000000300010",
        "000000000000300020",
        "000000000000300030",
        "000000000000300040",
        "000000000000400900",
    ]
    assert components[2][1].required.value == Decimal("1200.000")
    assert components[2][1].required.unit.sap == "G"
    assert components[4][1].role is ComponentRole.BY_PRODUCT
    assert order.recipe is not None and order.recipe.task_list == "50001234"
    assert order.status == ("I0002",)


def test_extension_type_with_two_idocs_and_customer_fields(profile: MappingProfile) -> None:
    root = etree.parse(str(EXAMPLES / "ZLOIPRO01-two-orders.xml"), SAFE).getroot()
    first, second = parse_loipro(root, profile)
    assert first.control.cimtyp == "ZLOIPRO01"
    assert first.phases[0].description == "Tablettierung Größe 1 – Presse"
    assert first.total.unit.sap == "ST"
    assert second.order_number == "000001000241"
    assert second.basic_finish is None  # 00000000 is SAP's empty date
    assert [c.deleted for c in second.phases[0].components] == [True, False]
    assert len(second.active_components()) == 1


def test_all_problems_of_one_idoc_are_reported_together(profile: MappingProfile) -> None:
    spec = OrderSpec(
        docnum="0000000000000777",
        batch="P25J0001_TOO_LONG",
        unit="XYZ",
        phases=[PhaseSpec(components=[ComponentSpec(quantity="1,5")])],
    )
    with pytest.raises(MappingError) as caught:
        parse_loipro(parse(build_loipro([spec])), profile)
    error = caught.value
    assert error.message_ref == "IDoc 0000000000000777"
    wheres = [finding.where for finding in error.findings]
    assert any(w.endswith("E1AFPOL/CHARG") for w in wheres)
    assert any(w.endswith("E1AFKOL/GMEIN") for w in wheres)
    assert any(w.endswith("E1RESBL/BDMNG") for w in wheres)
    values = {finding.value for finding in error.findings}
    assert {"P25J0001_TOO_LONG", "XYZ", "1,5"} <= values
    assert all(finding.line for finding in error.findings)


def test_missing_required_fields_are_named(profile: MappingProfile) -> None:
    data = build_loipro([OrderSpec()]).replace(b"<AUFNR>600001</AUFNR>", b"")
    with pytest.raises(MappingError) as caught:
        parse_loipro(parse(data), profile)
    assert "AUFNR" in str(caught.value)


def test_component_direction_rules(profile: MappingProfile) -> None:
    phases = [
        PhaseSpec(
            components=[
                ComponentSpec(shkzg=None, movement="261"),
                ComponentSpec(shkzg=None, movement="531", reservation_item="0002"),
                ComponentSpec(shkzg="S", quantity="2.000-", reservation_item="0003"),
            ]
        )
    ]
    (order,) = parse_loipro(parse(build_loipro([OrderSpec(phases=phases)])), profile)
    roles = [c.role for _, c in order.active_components()]
    assert roles == [ComponentRole.CONSUMED, ComponentRole.BY_PRODUCT, ComponentRole.BY_PRODUCT]
    assert order.active_components()[2][1].required.value == Decimal("2.000")


@pytest.mark.parametrize(
    ("shkzg", "movement", "quantity", "expected"),
    [
        (None, None, "1.000", "SHKZG"),
        (None, "311", "1.000", "SHKZG"),
        ("X", "261", "1.000", r"H \(issue\) or S"),
        ("H", "261", "1.000-", "zero or more"),
    ],
)
def test_component_direction_errors(
    profile: MappingProfile, shkzg: str | None, movement: str | None, quantity: str, expected: str
) -> None:
    phases = [
        PhaseSpec(components=[ComponentSpec(shkzg=shkzg, movement=movement, quantity=quantity)])
    ]
    with pytest.raises(MappingError, match=expected):
        parse_loipro(parse(build_loipro([OrderSpec(phases=phases)])), profile)


def test_plant_time_zone_from_profile(profile: MappingProfile) -> None:
    data = build_loipro([OrderSpec(plant="9999")])
    (order,) = parse_loipro(parse(data), profile)
    assert order.timezone == profile.default_timezone.key


units = st.sampled_from(["KG", "G", "MG", "L", "ML", "ST", "PC", "EA"])
quantities = st.decimals(min_value=0, max_value=Decimal("9999999999.999"), places=3)


@st.composite
def order_specs(draw: st.DrawFn, docnum: int) -> OrderSpec:
    components = [
        ComponentSpec(
            material=str(draw(st.integers(1, 10**18 - 1))),
            quantity=format(draw(quantities), "f"),
            unit=draw(units),
            batch=draw(st.one_of(st.none(), st.text("abcxyz0123456789", min_size=1, max_size=10))),
            reservation_item=f"{index:04d}",
        )
        for index in range(1, draw(st.integers(0, 4)) + 1)
    ]
    return OrderSpec(
        docnum=f"{docnum:016d}",
        order_number=str(draw(st.integers(1, 10**12 - 1))),
        material=str(draw(st.integers(1, 10**18 - 1))),
        quantity=format(draw(quantities), "f"),
        unit=draw(units),
        phases=[PhaseSpec(components=components)],
    )


@settings(max_examples=40, deadline=None)
@given(st.data())
def test_several_idocs_per_file_keep_every_value(
    profile: MappingProfile, data: st.DataObject
) -> None:
    count = data.draw(st.integers(1, 4))
    specs = [data.draw(order_specs(docnum=n)) for n in range(1, count + 1)]
    orders = parse_loipro(parse(build_loipro(specs)), profile)
    assert len(orders) == count
    for spec, order in zip(specs, orders, strict=True):
        assert order.control.docnum == spec.docnum
        assert int(order.order_number) == int(spec.order_number)
        assert len(order.order_number) == 12
        assert len(order.material) == 18 and int(order.material) == int(spec.material)
        assert order.total.value == Decimal(spec.quantity)
        assert order.total.unit == profile.units.from_sap(spec.unit, where="test")
        for component_spec, (_, component) in zip(
            spec.phases[0].components, order.active_components(), strict=True
        ):
            assert component.required.value == Decimal(component_spec.quantity)
            expected_batch = component_spec.batch.upper() if component_spec.batch else None
            assert component.batch == expected_batch


def test_one_idoc_twice_in_a_message_is_refused(profile: MappingProfile) -> None:
    idoc = OrderSpec(docnum="0000000000000003", order_number="610003")
    other = OrderSpec(docnum="0000000000000004", order_number="610004")
    with pytest.raises(MappingError, match="IDoc 0000000000000003 is in the message twice") as e:
        parse_loipro(etree.fromstring(build_loipro([idoc, other, idoc])), profile)
    (finding,) = e.value.findings
    assert (finding.where, finding.value) == ("/LOIPRO01/IDOC[3]/EDI_DC40/DOCNUM", idoc.docnum)
    assert finding.line is not None
