"""The fast reader remembers converted texts from one IDoc to the next, within bounds.

What it remembers may depend only on the text and on what is part of the memo's
key: the unit table and the plant's zone come from the profile, so the same IDoc
read under two profiles must give each profile's units and zones.
"""

from __future__ import annotations

import tomllib
from functools import _lru_cache_wrapper
from importlib import resources
from typing import Any

import pytest
from lxml import etree

from contracts.errors import MappingError
from tests.support.idoc_factory import ComponentSpec, OrderSpec, PhaseSpec, build_loipro
from transforms import loipro
from transforms.loipro import _FastReader, _IdocReader, parse_loipro
from transforms.mapping import MappingProfile

SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
MEMOS: list[_lru_cache_wrapper[Any]] = [
    loipro._date,
    loipro._time,
    loipro._local_datetime,
    loipro._material_number,
    loipro._long_material_number,
    loipro._batch,
    loipro._quantity_of,
]


def _profile(*, zone: str, kg_iso: str) -> MappingProfile:
    text = resources.files("integration.defaults").joinpath("mapping.toml").read_text("utf-8")
    data = tomllib.loads(text)
    data["plants"]["1100"]["timezone"] = zone
    for row in data["units"]:
        if row["sap"] == "KG":
            row["iso"] = kg_iso
    return MappingProfile.from_mapping(data, source="test profile")


def _idoc() -> etree._Element:
    spec = OrderSpec(
        plant="1100",
        phases=[PhaseSpec(components=[ComponentSpec(quantity="2.500", batch="b1")])],
    )
    root = etree.fromstring(build_loipro([spec]), SAFE)
    return root[0]


@pytest.mark.parametrize("memo", MEMOS, ids=lambda memo: memo.__wrapped__.__name__)
def test_every_memo_is_bounded(memo: _lru_cache_wrapper[Any]) -> None:
    maxsize = memo.cache_parameters()["maxsize"]
    assert isinstance(maxsize, int) and 0 < maxsize <= 10_000
    assert memo.cache_info().currsize <= maxsize


def test_a_memo_stays_at_its_bound_over_many_distinct_texts() -> None:
    maxsize = loipro._batch.cache_parameters()["maxsize"]
    for number in range(maxsize + 50):
        loipro._batch(f"B{number}")
    assert loipro._batch.cache_info().currsize == maxsize


def test_the_same_idoc_under_two_profiles_gives_each_profile_its_units_and_zone() -> None:
    berlin = _profile(zone="Europe/Berlin", kg_iso="KGM")
    new_york = _profile(zone="America/New_York", kg_iso="KGX")
    idoc = _idoc()
    for profile in (berlin, new_york, berlin):
        order = _FastReader(profile).order(idoc)
        assert order == _IdocReader(idoc, profile).order()
    first = _FastReader(berlin).order(idoc)
    second = _FastReader(new_york).order(idoc)
    assert first.total.unit.iso == "KGM" and second.total.unit.iso == "KGX"
    assert first.phases[0].components[0].required.unit.iso == "KGM"
    assert second.phases[0].components[0].required.unit.iso == "KGX"
    assert first.basic_start is not None and second.basic_start is not None
    assert first.basic_start.utcoffset() != second.basic_start.utcoffset()


def test_a_text_that_fails_is_not_remembered_and_fails_again(
    profile: MappingProfile,
) -> None:
    spec = OrderSpec(phases=[PhaseSpec(components=[ComponentSpec(batch="CRBN0001_LOT01")])])
    data = build_loipro([spec])
    for _ in range(2):
        with pytest.raises(MappingError) as caught:
            parse_loipro(etree.fromstring(data, SAFE), profile)
        (finding,) = caught.value.findings
        assert finding.where.endswith("/E1RESBL/CHARG")
