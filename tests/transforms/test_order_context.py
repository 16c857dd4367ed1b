"""Completing what the MES reports from what SAP sent with the order, and from the profile."""

from __future__ import annotations

import dataclasses
import tomllib
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from lxml import etree

from contracts.errors import ConfigurationError
from integration.mapping_files import load_mapping_profile
from tests.support.idoc_factory import ComponentSpec, OrderSpec, PhaseSpec, build_loipro
from transforms.loipro import parse_loipro
from transforms.mapping import MappingProfile, PlantStorage
from transforms.model import MaterialActual, MaterialRole, PerformanceReport, Quantity, Unit
from transforms.order_context import (
    ComponentContext,
    OrderContext,
    complete_report,
    order_context,
)

KG = Unit(sap="KG", iso="KGM")


@pytest.fixture(scope="module")
def profile() -> MappingProfile:
    return load_mapping_profile()


def _context(profile: MappingProfile, phases: list[PhaseSpec]) -> OrderContext:
    spec = OrderSpec(order_number="600001", plant="1100", phases=phases)
    (order,) = parse_loipro(etree.fromstring(build_loipro([spec])), profile)
    return order_context(order)


def _report(*actuals: MaterialActual, plant: str | None = None) -> PerformanceReport:
    return PerformanceReport(
        sender="PASX-PLANT1",
        document_id="PP-1",
        contract="b2mml/ProductionPerformance/V0600",
        order_number="000000600001",
        event_time=datetime(2026, 12, 1, 10, tzinfo=UTC),
        plant=plant,
        actuals=actuals,
    )


def _consumed(material: str, **kw: object) -> MaterialActual:
    return MaterialActual(
        role=MaterialRole.CONSUMED,
        material=material,
        quantity=Quantity(value=Decimal("1.5"), unit=KG),
        **kw,  # type: ignore[arg-type]
    )


def test_a_component_gives_storage_location_reservation_and_the_order_its_plant(
    profile: MappingProfile,
) -> None:
    context = _context(
        profile,
        [
            PhaseSpec(
                number="0010",
                components=[
                    ComponentSpec(
                        material="300010", reservation_item="0007", storage_location="RM01"
                    )
                ],
            )
        ],
    )
    report = complete_report(_report(_consumed("000000000000300010")), profile, context)
    assert report.plant == "1100"
    (actual,) = report.actuals
    assert (actual.storage_location, actual.reservation, actual.reservation_item) == (
        "RM01",
        "0000765432",
        "0007",
    )


def test_what_the_message_says_is_never_overridden(profile: MappingProfile) -> None:
    context = _context(
        profile,
        [PhaseSpec(components=[ComponentSpec(material="300010", storage_location="RM01")])],
    )
    given = _consumed("000000000000300010", storage_location="0001", plant="1000")
    report = complete_report(_report(given, plant="1000"), profile, context)
    assert report.plant == "1000"
    assert report.actuals[0].storage_location == "0001"
    assert report.actuals[0].plant == "1000"


def test_a_material_used_twice_differently_is_left_for_sap_not_guessed(
    profile: MappingProfile,
) -> None:
    context = _context(
        profile,
        [
            PhaseSpec(
                number="0010",
                components=[
                    ComponentSpec(material="300010", reservation_item="0001", storage_location="A")
                ],
            ),
            PhaseSpec(
                number="0020",
                components=[
                    ComponentSpec(material="300010", reservation_item="0002", storage_location="B")
                ],
            ),
        ],
    )
    material = "000000000000300010"
    unknown_phase = complete_report(_report(_consumed(material)), profile, context)
    assert unknown_phase.actuals[0].storage_location is None
    assert unknown_phase.actuals[0].reservation is None
    # The phase the MES names settles which component it was.
    in_phase = complete_report(_report(_consumed(material, phase="0020")), profile, context)
    assert in_phase.actuals[0].reservation_item == "0002"
    assert in_phase.actuals[0].storage_location == "B"


def test_profile_gives_plant_and_default_storage_locations_without_an_order(
    profile: MappingProfile,
) -> None:
    site = dataclasses.replace(
        profile,
        sender_plants={"PASX-PLANT1": "1000"},
        plant_storage={"1000": PlantStorage(issue="RM01", receipt="FG01")},
    )
    produced = MaterialActual(
        role=MaterialRole.PRODUCED,
        material="000000000000200001",
        quantity=Quantity(value=Decimal("10"), unit=KG),
    )
    report = complete_report(_report(_consumed("4711"), produced), site, None)
    assert report.plant == "1000"
    assert [a.storage_location for a in report.actuals] == ["RM01", "FG01"]


def test_without_context_or_profile_nothing_is_made_up(profile: MappingProfile) -> None:
    report = complete_report(_report(_consumed("4711")), profile, None)
    assert report.plant is None
    assert report.actuals[0].storage_location is None


def test_the_context_of_another_order_is_a_caller_bug(profile: MappingProfile) -> None:
    context = dataclasses.replace(_context(profile, [PhaseSpec()]), order_number="000000999999")
    with pytest.raises(ValueError, match="999999"):
        complete_report(_report(_consumed("4711")), profile, context)


def test_context_survives_its_json_form(profile: MappingProfile) -> None:
    context = _context(profile, [PhaseSpec(components=[ComponentSpec(storage_location="RM01")])])
    assert OrderContext.from_json(context.to_json()) == context


def _site_profile(extra: str) -> MappingProfile:
    data = tomllib.loads(
        'version = "site-1"\ndefault_timezone = "Europe/Berlin"\n'
        '[[units]]\nsap = "KG"\niso = "KGM"\n' + extra
    )
    return MappingProfile.from_mapping(data, source="site.toml")


def test_profile_reads_sender_plants_and_plant_storage_locations() -> None:
    site = _site_profile(
        '[plants.1000]\ntimezone = "Europe/Vienna"\nissue_storage_location = "RM01"\n'
        '[plants.2000]\nreceipt_storage_location = "FG01"\n'
        '[senders.PASX-PLANT1]\nplant = "1000"\n'
    )
    assert site.sender_plants == {"PASX-PLANT1": "1000"}
    assert site.plant_storage == {
        "1000": PlantStorage(issue="RM01"),
        "2000": PlantStorage(receipt="FG01"),
    }
    assert str(site.plant_timezone("1000")) == "Europe/Vienna"
    # A plant that only sets storage locations keeps the default zone.
    assert str(site.plant_timezone("2000")) == "Europe/Berlin"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('[plants.1000]\nissue_storage_location = "RM001"\n', "storage location"),
        ('[plants.10000]\nissue_storage_location = "RM01"\n', "plant"),
        ('[senders.PASX]\nplant = "10000"\n', "plant"),
        ('[plants.1000]\nissue_storage = "RM01"\n', "issue_storage_location"),
        ('[plants.1000]\nissue_storage_location = "R 1"\n', "storage location"),
        ('[senders.PASX]\nplant = "1 0"\n', "plant"),
    ],
)
def test_profile_refuses_values_sap_cannot_hold(extra: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        _site_profile(extra)


def _order_at_1100(component_plant: str | None) -> OrderContext:
    return OrderContext(
        order_number="000000600001",
        plant="1100",
        material="000000000000200001",
        receipt_storage_location="FG01",
        components=(
            ComponentContext(
                material="000000000000300010",
                phase="0010",
                plant=component_plant,
                storage_location="RM01",
                reservation="0000765432",
                reservation_item="0007",
            ),
        ),
    )


def test_a_component_in_another_plant_than_the_message_names_lends_it_nothing(
    profile: MappingProfile,
) -> None:
    produced = MaterialActual(
        role=MaterialRole.PRODUCED,
        material="000000000000200001",
        quantity=Quantity(value=Decimal("40"), unit=KG),
    )
    report = complete_report(
        _report(_consumed("000000000000300010"), produced, plant="2000"),
        profile,
        _order_at_1100("1100"),
    )
    consumed, received = report.actuals
    assert report.plant == "2000"
    # Plant 1100's storage location and reservation would post plant 2000 stock wrongly.
    assert (consumed.storage_location, consumed.reservation, consumed.reservation_item) == (
        None,
        None,
        None,
    )
    assert received.storage_location is None


def test_a_component_sap_keeps_in_another_plant_is_issued_there(
    profile: MappingProfile,
) -> None:
    report = complete_report(
        _report(_consumed("000000000000300010")), profile, _order_at_1100("1200")
    )
    assert report.plant == "1100"
    (actual,) = report.actuals
    assert (actual.plant, actual.storage_location, actual.reservation) == (
        "1200",
        "RM01",
        "0000765432",
    )
