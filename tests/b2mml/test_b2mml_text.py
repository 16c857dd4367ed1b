"""The schedule is written as XML text and parsed once: every value must reach the tree unchanged.

What that path could get wrong and these tests pin down: markup characters and
carriage returns in element content, quotes in the ``releaseID`` attribute,
quantities where ``str(Decimal)`` would use an exponent, and two date-times with
the same wall clock but different offsets (the repeated hour when daylight saving
time ends), which the memo of written date-times (kept per worker process) must keep apart.
Each document goes through bytes and back, as it does on the wire.
"""

from __future__ import annotations

import tomllib
from datetime import datetime
from typing import Any

import pytest
from lxml import etree

from tests.b2mml.b2mml_factory import (
    BERLIN,
    CREATED_AT,
    MAPPING_FILE,
    component,
    order,
    phase,
    qty,
    typical_order,
)
from transforms.b2mml_common import NS_V0600, NS_V7
from transforms.b2mml_schedule import B2mmlVersion, to_pasx_schedule
from transforms.mapping import MappingProfile
from transforms.model import ProcessOrder

VERSIONS: tuple[B2mmlVersion, ...] = ("V0600", "V7")
NAMESPACES = {"V0600": NS_V0600, "V7": NS_V7}


def _wire(
    orders: list[ProcessOrder], profile: MappingProfile, version: B2mmlVersion
) -> etree._Element:
    document = to_pasx_schedule(orders, profile, created_at=CREATED_AT, version=version)
    return etree.fromstring(etree.tostring(document, encoding="UTF-8", xml_declaration=True))


def _texts(root: etree._Element, version: str, path: str) -> list[str | None]:
    found: Any = root.xpath(path, namespaces={"b": NAMESPACES[version]})
    return [element.text for element in found]


@pytest.mark.parametrize("version", VERSIONS)
def test_markup_characters_and_carriage_returns_arrive_unchanged(
    version: B2mmlVersion, profile: MappingProfile
) -> None:
    description = 'Mix & <check> "pH" ]]> first line\r\nsecond line\rend\ttab'
    material = 'A&B<1>"2"'
    batch = "X>Y&Z"
    orders = [
        order(
            "000001000200",
            phase("0010", description, component(material, qty("1.5"), batch=batch)),
            material="P&Q<R>",
        )
    ]
    root = _wire(orders, profile, version)
    assert _texts(root, version, "//b:SegmentRequirement/b:Description") == [description]
    assert _texts(root, version, "//b:MaterialRequirement/b:MaterialDefinitionID") == [
        material,
        "P&Q<R>",
    ]
    assert _texts(root, version, "//b:MaterialRequirement/b:MaterialLotID")[0] == batch


@pytest.mark.parametrize("version", VERSIONS)
def test_release_id_attribute_keeps_quotes_and_ampersands(version: B2mmlVersion) -> None:
    with MAPPING_FILE.open("rb") as handle:
        data = tomllib.load(handle)
    release_id = "mes\"bridge' & <1>"
    data["b2mml"] = {**data["b2mml"], "release_id": release_id}
    profile = MappingProfile.from_mapping(data, source="test profile")
    root = _wire(typical_order(), profile, version)
    assert root.get("releaseID") == release_id


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("0.0000001", "0.0000001"),
        ("1.5E-9", "0.0000000015"),
        ("0E-7", "0.0000000"),
        ("1E+2", "100"),
        ("-0.000", "0.000"),
        ("123.4500", "123.4500"),
    ],
)
def test_quantities_are_plain_decimals_where_str_would_use_an_exponent(
    version: B2mmlVersion, value: str, written: str, profile: MappingProfile
) -> None:
    orders = [order("000001000201", phase("0010", "Dose", component("300500", qty(value))))]
    root = _wire(orders, profile, version)
    assert _texts(root, version, "//b:MaterialRequirement/b:Quantity/b:QuantityString")[0] == (
        written
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_the_repeated_hour_keeps_both_offsets(
    version: B2mmlVersion, profile: MappingProfile
) -> None:
    # 25 Oct 2026, 02:30 in Berlin happens twice: first in summer time, then in winter time.
    summer = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN)
    winter = summer.replace(fold=1)
    orders = [
        order(
            "000001000202",
            phase("0010", "Night shift", start=summer, finish=winter),
            phase("0020", "Cleaning", start=winter, finish=summer),
        )
    ]
    root = _wire(orders, profile, version)
    assert _texts(root, version, "//b:SegmentRequirement/b:EarliestStartTime") == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-25T02:30:00+01:00",
    ]
    assert _texts(root, version, "//b:SegmentRequirement/b:LatestEndTime") == [
        "2026-10-25T02:30:00+01:00",
        "2026-10-25T02:30:00+02:00",
    ]
