"""The fast LOIPRO reader gives exactly what the careful one gives, or hands over to it.

``parse_loipro`` reads each IDoc with ``_FastReader`` and, at anything that would be a
finding, again with ``_IdocReader``. These tests hold the two side by side: on every
bundled example and fixture, and on IDocs with fields removed, emptied, repeated or set
to values at the edge of each rule.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from contracts.errors import MappingError
from tests.bench.run_bench import realistic_order
from tests.support.idoc_factory import ComponentSpec, OrderSpec, PhaseSpec, build_loipro
from transforms.loipro import _Fallback, _FastReader, _IdocReader, parse_loipro
from transforms.mapping import MappingProfile
from transforms.model import ProcessOrder

ROOT = Path(__file__).resolve().parents[2]
SAFE = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
FILES = sorted(
    [
        *(ROOT / "deploy" / "examples" / "sap").glob("LOIPRO*.xml"),
        *(ROOT / "tests" / "fixtures" / "sap-idoc").glob("LOIPRO*/*/*/*.xml"),
    ]
)


def _both(idoc: etree._Element, profile: MappingProfile) -> tuple[ProcessOrder | None, object]:
    """(fast result or None when it handed over, careful result or its MappingError)."""
    try:
        fast: ProcessOrder | None = _FastReader(profile).order(idoc)
    except _Fallback:
        fast = None
    try:
        careful: object = _IdocReader(idoc, profile).order()
    except MappingError as exc:
        careful = exc
    return fast, careful


def _idocs(root: etree._Element) -> list[etree._Element]:
    return [child for child in root if child.tag == "IDOC"]


def test_the_examples_and_fixtures_exist() -> None:
    assert len(FILES) > 10
    assert any("invalid" in str(path) for path in FILES)


@pytest.mark.parametrize("path", FILES, ids=lambda path: str(path.relative_to(ROOT)))
def test_fast_reader_agrees_on_every_example_and_fixture(
    path: Path, profile: MappingProfile
) -> None:
    root = etree.parse(str(path), SAFE).getroot()
    for idoc in _idocs(root):
        fast, careful = _both(idoc, profile)
        if fast is not None:
            assert fast == careful
        if "valid" in path.parts and "invalid" not in path.parts:
            assert fast is not None, "a valid IDoc should take the fast path"


def test_fast_reader_takes_the_bench_order(profile: MappingProfile) -> None:
    (idoc,) = _idocs(etree.fromstring(realistic_order(7), SAFE))
    fast, careful = _both(idoc, profile)
    assert fast is not None and fast == careful
    assert len(fast.phases) == 12 and len(fast.active_components()) == 15


def test_parse_loipro_reports_through_the_careful_reader(profile: MappingProfile) -> None:
    spec = OrderSpec(phases=[PhaseSpec(components=[ComponentSpec(batch="CRBN0001_LOT01")])])
    with pytest.raises(MappingError) as caught:
        parse_loipro(etree.fromstring(build_loipro([spec]), SAFE), profile)
    (finding,) = caught.value.findings
    assert finding.where.endswith("/E1RESBL/CHARG")
    assert finding.line is not None and finding.value == "CRBN0001_LOT01"


_EDGE_VALUES = (
    "",
    " ",
    "X",
    "x",
    "H",
    "S",
    "s",
    "h",
    "1",
    "00000000",
    "20260230",
    "20261201",
    "240000",
    "235959",
    "246000",
    "1.5-",
    "-1.5",
    "-0",
    "0",
    "1,5",
    "  12.500  ",
    "abc",
    "KG",
    "kg",
    "ST",
    "PC",
    "ZZZ",
    "261",
    "262",
    "101",
    "531",
    "999",
    "12345678901234567890",
    "A" * 41,
    "ab/cd",
)


# Fields the factory leaves out, to be added with edge values.
_OPTIONAL_FIELDS = (
    "MATNR_LONG",
    "SHKZG",
    "XLOEK",
    "KZEAR",
    "RGEKZ",
    "GASMG",
    "GSUZP",
    "GLUZP",
    "GSTRS",
    "GLTRS",
    "FSAVZ",
    "FSEDZ",
    "MGVRG",
    "MEINH",
    "FTRMS",
    "BDTER",
    "RSNUM",
    "PLNTY",
    "PLNNR",
    "CIMTYP",
)


@st.composite
def _mutated_idocs(draw: st.DrawFn) -> etree._Element:
    base = OrderSpec(
        phases=[
            PhaseSpec(components=[ComponentSpec(), ComponentSpec(shkzg="S", movement="531")]),
            PhaseSpec(number="0020", components=[ComponentSpec(shkzg=None, movement="262")]),
        ]
    )
    (idoc,) = _idocs(etree.fromstring(build_loipro([base]), SAFE))
    idoc = copy.deepcopy(idoc)
    fields = [element for element in idoc.iter() if len(element) == 0 and element is not idoc]
    segments = [element for element in idoc.iter() if len(element) > 0 and element is not idoc]
    for _ in range(draw(st.integers(1, 4))):
        target = draw(st.sampled_from(fields))
        action = draw(st.sampled_from(["remove", "set", "repeat", "comment", "add", "status"]))
        if action in ("add", "status"):
            segment = draw(st.sampled_from(segments))
            if action == "add":
                added = etree.SubElement(segment, draw(st.sampled_from(_OPTIONAL_FIELDS)))
            else:
                status = etree.SubElement(segment, draw(st.sampled_from(["E1JSTKL", "E1JSTVL"])))
                added = etree.SubElement(status, "STAT")
            added.text = draw(st.sampled_from(_EDGE_VALUES))
            continue
        parent = target.getparent()
        if parent is None:
            continue
        if action == "remove":
            parent.remove(target)
            fields.remove(target)
        elif action == "set":
            target.text = draw(st.sampled_from(_EDGE_VALUES))
        elif action == "repeat":
            twin = etree.Element(target.tag)
            twin.text = draw(st.sampled_from(_EDGE_VALUES))
            target.addnext(twin)
        else:
            target.addprevious(etree.Comment("a note"))
    return idoc


@settings(max_examples=300, deadline=None)
@given(_mutated_idocs())
def test_fast_reader_agrees_or_hands_over(profile: MappingProfile, idoc: etree._Element) -> None:
    root = etree.Element("LOIPRO01")
    root.append(idoc)
    fast, careful = _both(idoc, profile)
    if fast is not None:
        assert fast == careful
    try:
        result: object = parse_loipro(root, profile)
    except MappingError as exc:
        result = exc
    if isinstance(careful, MappingError):
        assert isinstance(result, MappingError)
        assert result.findings == careful.findings
    else:
        assert result == [careful]
