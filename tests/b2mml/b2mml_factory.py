"""Builders for the B2MML tests: canonical process orders, the default profile, the schemas.

Orders are built directly (not parsed from IDocs) so these tests depend only on
the canonical model. ``CASES`` are the named orders behind the golden files.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

from lxml import etree

from transforms.mapping import MappingProfile
from transforms.model import (
    Component,
    ComponentRole,
    IdocControl,
    OrderItem,
    Phase,
    ProcessOrder,
    Quantity,
    RecipeReference,
    Unit,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MAPPING_FILE = REPO_ROOT / "integration" / "defaults" / "mapping.toml"
PROFILE_SCHEMAS = REPO_ROOT / "contracts" / "schemas" / "b2mml"
V0600_PROFILE = PROFILE_SCHEMAS / "ProductionSchedule" / "V0600" / "ProcessProductionSchedule.xsd"
V7_PROFILE = PROFILE_SCHEMAS / "OperationsSchedule" / "V7" / "ProcessOperationsSchedule.xsd"
V0600_OFFICIAL = Path("V0600") / "B2MML-V0600-ProductionSchedule.xsd"
V7_OFFICIAL = Path("V7") / "B2MML-OperationsSchedule.xsd"
GOLDEN_DIRS = {
    "V0600": REPO_ROOT / "tests" / "fixtures" / "b2mml" / "ProductionSchedule" / "V0600",
    "V7": REPO_ROOT / "tests" / "fixtures" / "b2mml" / "OperationsSchedule" / "V7",
}

BERLIN = ZoneInfo("Europe/Berlin")
CREATED_AT = datetime(2026, 3, 2, 9, 15, 0, tzinfo=ZoneInfo("UTC"))

KG = Unit(sap="KG", iso="KGM")
G = Unit(sap="G", iso="GRM")
MG = Unit(sap="MG", iso="MGM")
L = Unit(sap="L", iso="LTR")
ST = Unit(sap="ST", iso="PCE")


@cache
def default_profile() -> MappingProfile:
    with MAPPING_FILE.open("rb") as handle:
        return MappingProfile.from_mapping(tomllib.load(handle), source=str(MAPPING_FILE))


@cache
def compiled_schema(path: Path) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(path)))


def control(docnum: str = "0000000000412345", sender: str = "ERPCLNT200") -> IdocControl:
    return IdocControl(docnum=docnum, idoctyp="LOIPRO01", mestyp="LOIPRO", sender_partner=sender)


def qty(value: str, unit: Unit = KG) -> Quantity:
    return Quantity(value=Decimal(value), unit=unit)


def local(text: str, zone: ZoneInfo = BERLIN) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=zone)


def component(
    material: str,
    quantity: Quantity,
    *,
    item: str | None = "0001",
    reservation: str | None = "0000098765",
    batch: str | None = None,
    role: ComponentRole = ComponentRole.CONSUMED,
    deleted: bool = False,
    storage_location: str | None = "0001",
) -> Component:
    return Component(
        reservation=reservation,
        reservation_item=item,
        item_number=None,
        material=material,
        plant="1000",
        storage_location=storage_location,
        batch=batch,
        required=quantity,
        requirement_date=None,
        movement_type="531" if role is ComponentRole.BY_PRODUCT else "261",
        role=role,
        deleted=deleted,
    )


def phase(
    number: str,
    description: str | None = None,
    *components: Component,
    work_center: str | None = "GRAN01",
    control_key: str | None = "PI01",
    start: datetime | None = None,
    finish: datetime | None = None,
    sequence: str | None = "0",
) -> Phase:
    return Phase(
        sequence=sequence,
        number=number,
        description=description,
        work_center=work_center,
        control_key=control_key,
        quantity=None,
        earliest_start=start,
        earliest_finish=finish,
        components=components,
    )


def order(
    number: str = "000001000123",
    *phases: Phase,
    material: str = "000000000000200140",
    total: Quantity | None = None,
    batch: str | None = "G26L0042",
    plant: str = "1000",
    docnum: str = "0000000000412345",
    start: datetime | None = None,
    finish: datetime | None = None,
    recipe: RecipeReference | None = None,
) -> ProcessOrder:
    total = total or qty("100.000")
    return ProcessOrder(
        control=control(docnum),
        order_number=number,
        order_category="40",
        order_type="PI01",
        plant=plant,
        material=material,
        total=total,
        scrap=None,
        basic_start=start,
        basic_finish=finish,
        scheduled_start=None,
        scheduled_finish=None,
        release_date=None,
        reservation="0000098765",
        recipe=recipe,
        timezone="Europe/Berlin",
        items=(
            OrderItem(
                position="0001",
                material=material,
                quantity=total,
                batch=batch,
                storage_location="0001",
            ),
        ),
        phases=phases,
    )


# ---------------------------------------------------------------- the golden cases


def typical_order() -> list[ProcessOrder]:
    """Three phases, consumed components with and without batch, a by-product, a deleted line."""
    return [
        order(
            "000001000123",
            phase(
                "0010",
                "Dispense",
                component("000000000000300100", qty("41.250"), item="0001", batch="R0001"),
                component("000000000000300200", qty("0.750"), item="0002"),
                component("000000000000300300", qty("2.000"), item="0003", deleted=True),
                work_center="DISP01",
                start=local("2026-03-03T06:00:00"),
                finish=local("2026-03-03T10:00:00"),
            ),
            phase(
                "0020",
                "Granulate",
                component("000000000000300400", qty("12.5", L), item="0004"),
                start=local("2026-03-03T10:00:00"),
                finish=local("2026-03-03T18:30:00"),
            ),
            phase(
                "0030",
                "Compress",
                component(
                    "000000000000900001",
                    qty("1.200"),
                    item="0005",
                    role=ComponentRole.BY_PRODUCT,
                    storage_location=None,
                ),
                work_center="PRESS02",
                control_key="PI02",
                start=local("2026-03-04T06:00:00"),
                finish=local("2026-03-04T14:00:00"),
            ),
            start=local("2026-03-03T06:00:00"),
            finish=local("2026-03-04T14:00:00"),
            recipe=RecipeReference(task_list_type="2", task_list="50000123", counter="01"),
        )
    ]


def many_phases_no_components() -> list[ProcessOrder]:
    """Twelve phases, no components, no batch, no dates, no recipe: only what must be there."""
    return [
        order(
            "000001000124",
            *(phase(f"{n * 10:04d}", f"Step {n}", work_center=None) for n in range(1, 13)),
            batch=None,
            total=qty("5000", ST),
        )
    ]


def non_ascii_texts() -> list[ProcessOrder]:
    """Phase texts with umlauts, symbols and a line break must arrive unchanged."""
    return [
        order(
            "000001000125",
            phase("0010", "Wiegen & Einwaage – Wirkstoff µ-dosiert ≥ 5 °C"),
            phase("0020", "Granulieren (Feuchtmischung)\nTrocknen: 40 °C < T < 60 °C"),
            phase("0030", "Tablettieren — 素錠 — Ærø"),
            start=local("2026-07-01T22:00:00"),
            finish=local("2026-07-02T05:59:59"),
        )
    ]


def large_and_tiny_decimals() -> list[ProcessOrder]:
    """Exact decimal text: 0.001, 1234567890.123, trailing zeros kept, zero allowed."""
    return [
        order(
            "000001000126",
            phase(
                "0010",
                "Dose",
                component("000000000000300500", qty("0.001", MG), item="0001"),
                component("000000000000300600", qty("1234567890.123", G), item="0002"),
                component("000000000000300700", qty("10.500"), item="0003"),
                component("000000000000300800", qty("0.000"), item="0004"),
                component("000000000000300900", qty("1E+3", G), item="0005"),
            ),
            total=qty("1234567890.123", G),
        )
    ]


def several_orders() -> list[ProcessOrder]:
    """Three orders from two IDocs and two plants in one schedule."""
    return [
        order(
            "000001000127",
            phase("0010", "Mix", component("000000000000300100", qty("3.000"))),
            docnum="0000000000412346",
            start=local("2026-03-05T06:00:00"),
        ),
        order(
            "000001000128",
            phase("0010", "Mix", component("000000000000300100", qty("4.000"))),
            plant="1100",
            docnum="0000000000412346",
            finish=local("2026-03-06T14:00:00"),
        ),
        order(
            "000001000129",
            phase("0010", "Fill", reservation_free_component()),
            phase("0020", "Pack", work_center="PACK01"),
            docnum="0000000000412347",
            recipe=RecipeReference(task_list_type=None, task_list="50000999", counter=None),
        ),
    ]


def reservation_free_component() -> Component:
    """A component without reservation number: its id falls back to phase number and position."""
    return component("000000000000301000", qty("250", ST), item=None, reservation=None)


CASES: dict[str, Callable[[], list[ProcessOrder]]] = {
    "typical_order": typical_order,
    "many_phases_no_components": many_phases_no_components,
    "non_ascii_texts": non_ascii_texts,
    "large_and_tiny_decimals": large_and_tiny_decimals,
    "several_orders": several_orders,
}
