"""What the hand-written LOIPRO schema tolerates and what it enforces, beyond the golden files."""

from __future__ import annotations

import copy
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from contracts.errors import ContractViolation
from contracts.registry import ContractRegistry

from .conftest import LOIPRO_FIXTURES, PACKAGED, parse_xml

EXAMPLE = LOIPRO_FIXTURES / "valid" / "shared_example.xml"


def _problems(registry: ContractRegistry, root: etree._Element) -> list[str]:
    return [str(f) for f in registry.get("sap-idoc/LOIPRO01/1").validate_xml(root)]


def test_the_three_loipro_schemas_are_the_same_file() -> None:
    # LOIPRO01/02/03 carry the same standard segments mesbridge reads. If one must diverge
    # on purpose, give it its own schema and drop it from this list.
    texts = {
        (PACKAGED / "sap-idoc" / name / "1" / "LOIPRO.xsd").read_bytes()
        for name in ("LOIPRO01", "LOIPRO02", "LOIPRO03")
    }
    assert len(texts) == 1


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_field_and_segment_order_does_not_matter(seed: int, registry: ContractRegistry) -> None:
    root = parse_xml(EXAMPLE)
    shuffle = random.Random(seed).shuffle
    for element in root.iter():
        children = list(element)
        shuffle(children)
        element[:] = children

    assert _problems(registry, root) == []


def test_segment_and_begin_attributes_and_unknown_attributes_are_accepted(
    registry: ContractRegistry,
) -> None:
    root = parse_xml(EXAMPLE)
    for element in root.iter("E1AFKOL", "E1RESBL"):
        element.set("SEGMENT", "1")
        element.set("ZZORIGIN", "WE19")

    assert _problems(registry, root) == []


def test_unknown_segment_with_unknown_children_anywhere_is_accepted(
    registry: ContractRegistry,
) -> None:
    root = parse_xml(EXAMPLE)
    for parent in root.iter("IDOC", "E1AFKOL", "E1AFFLL", "E1AFVOL", "E1RESBL"):
        segment = etree.SubElement(parent, "Z1NEWSEG", SEGMENT="1")
        etree.SubElement(segment, "ZZVALUE").text = "x" * 200
        etree.SubElement(etree.SubElement(segment, "Z1DEEPER"), "ZZMORE").text = "y"

    assert _problems(registry, root) == []


def test_a_standard_field_name_inside_an_unknown_segment_is_checked_with_its_type(
    registry: ContractRegistry,
) -> None:
    # Documented limitation of lax processing (docs/contracts.md): a Z-segment reusing a
    # standard field name with another length needs a site schema version.
    root = parse_xml(EXAMPLE)
    header = root.find("IDOC/E1AFKOL")
    assert header is not None
    etree.SubElement(etree.SubElement(header, "Z1AFKOL"), "CHARG").text = "LONGER_THAN_10"

    problems = _problems(registry, root)

    assert len(problems) == 1
    assert "/LOIPRO01/IDOC/E1AFKOL/Z1AFKOL/CHARG" in problems[0]
    assert "at most 10 characters" in problems[0]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("AUFNR", "0000006000011", "at most 12 characters (SAP CHAR 12, not empty)"),
        ("WERKS", "", "at least 1 character (SAP CHAR 4, not empty)"),
        ("MATNR", "0" * 19, "at most 18 characters (SAP CHAR 18)"),
        ("GMEIN", "KGM2", "at most 3 characters"),
        ("GAMNG", "1,000.000", "an SAP quantity"),
        ("GAMNG", "1.0E3", "an SAP quantity"),
        ("GAMNG", "12-3", "an SAP quantity"),
        ("GAMNG", "-12-", "an SAP quantity"),
        ("GAMNG", "", "an SAP quantity"),
        ("GSTRP", "2026-12-01", "a date YYYYMMDD"),
        ("GSTRP", "20260230X", "a date YYYYMMDD"),
        ("GSTRP", "20260001", "a date YYYYMMDD"),
        ("RSNUM", "ABC", "SAP NUMC 10"),
        ("AUTYP", "400", "SAP NUMC 2"),
    ],
)
def test_header_field_rules(
    field: str, value: str, expected: str, registry: ContractRegistry
) -> None:
    root = parse_xml(EXAMPLE)
    element = root.find(f"IDOC/E1AFKOL/{field}")
    assert element is not None
    element.text = value

    problems = _problems(registry, root)

    assert len(problems) == 1, problems
    assert f"/LOIPRO01/IDOC/E1AFKOL/{field}" in problems[0]
    assert expected in problems[0]
    assert repr(value) in problems[0]


@pytest.mark.parametrize(
    ("segment", "field", "value", "expected"),
    [
        ("EDI_DC40", "DOCNUM", "A000000000815001", "SAP NUMC 16"),
        ("EDI_DC40", "DOCNUM", "00000000008150011", "SAP NUMC 16"),
        ("EDI_DC40", "SNDPRN", "ERPCLNT2000", "at most 10 characters"),
        ("EDI_DC40", "CRETIM", "246000", "a time HHMMSS"),
        ("E1AFKOL/E1AFFLL/E1AFVOL[1]", "VORNR", "00100", "at most 4 characters"),
        ("E1AFKOL/E1AFFLL/E1AFVOL[1]", "LTXA1", "Ä" * 41, "at most 40 characters"),
        ("E1AFKOL/E1AFFLL/E1AFVOL[1]/E1RESBL", "BWART", "2610", "at most 3 characters"),
        ("E1AFKOL/E1AFFLL/E1AFVOL[1]/E1RESBL", "XLOEK", "Y", "one of X, (empty), (blank)"),
    ],
)
def test_more_field_rules(
    segment: str, field: str, value: str, expected: str, registry: ContractRegistry
) -> None:
    root = parse_xml(EXAMPLE)
    parent = root.find(f"IDOC/{segment}")
    assert parent is not None
    element = parent.find(field)
    if element is None:
        element = etree.SubElement(parent, field)
    element.text = value

    problems = _problems(registry, root)

    assert len(problems) == 1, problems
    where = problems[0].split(": ")[0].split(" (line")[0]
    assert where.endswith(f"/{field}")
    assert expected in problems[0]


@pytest.mark.parametrize(
    ("segment", "field"),
    [
        ("EDI_DC40", "DOCNUM"),
        ("EDI_DC40", "IDOCTYP"),
        ("EDI_DC40", "MESTYP"),
        ("EDI_DC40", "SNDPRN"),
        ("E1AFKOL", "AUFNR"),
        ("E1AFKOL", "WERKS"),
        ("E1AFKOL", "GAMNG"),
        ("E1AFKOL", "GMEIN"),
        ("E1AFKOL/E1AFFLL/E1AFVOL[2]", "VORNR"),
        ("E1AFKOL/E1AFFLL/E1AFVOL[2]/E1RESBL", "BDMNG"),
        ("E1AFKOL/E1AFFLL/E1AFVOL[2]/E1RESBL", "MEINS"),
    ],
)
def test_required_fields_are_enforced_one_by_one(
    segment: str, field: str, registry: ContractRegistry
) -> None:
    root = parse_xml(EXAMPLE)
    parent = root.find(f"IDOC/{segment}")
    assert parent is not None
    element = parent.find(field)
    assert element is not None
    parent.remove(element)
    contract = registry.get("sap-idoc/LOIPRO01/1")

    with pytest.raises(ContractViolation) as caught:
        registry.validate_xml(root, contract)

    assert [f.expected for f in caught.value.findings] == [
        f"required field {field}, which is missing"
    ]
    assert "does not satisfy sap-idoc/LOIPRO01/1 (1 problem)" in str(caught.value)


def test_a_repeated_required_field_is_reported(registry: ContractRegistry) -> None:
    root = parse_xml(EXAMPLE)
    header = root.find("IDOC/E1AFKOL")
    assert header is not None
    etree.SubElement(header, "AUFNR").text = "000000600009"

    problems = _problems(registry, root)

    assert len(problems) == 1
    assert "/LOIPRO01/IDOC/E1AFKOL/AUFNR[2]" in problems[0]
    assert "field AUFNR only once in E1AFKOL" in problems[0]


def test_required_segment_missing_with_explicit_contract(registry: ContractRegistry) -> None:
    root = parse_xml(EXAMPLE)
    idoc = root.find("IDOC")
    header = root.find("IDOC/E1AFKOL")
    assert idoc is not None and header is not None
    idoc.remove(header)

    problems = _problems(registry, root)

    assert problems == [
        "/LOIPRO01/IDOC (line 3): expected required segment E1AFKOL, which is missing"
    ]


def test_an_empty_root_has_no_idoc(registry: ContractRegistry) -> None:
    root = parse_xml(b"<LOIPRO01/>")

    assert _problems(registry, root) == ["/LOIPRO01 (line 1): expected at least one IDOC element"]


def test_validation_does_not_change_the_message(registry: ContractRegistry) -> None:
    root = parse_xml(EXAMPLE)
    before = etree.tostring(root)
    broken = copy.deepcopy(root)
    charg = broken.find(".//CHARG")
    assert charg is not None
    charg.text = "X" * 11

    registry.get("sap-idoc/LOIPRO01/1").validate_xml(root)
    registry.get("sap-idoc/LOIPRO01/1").validate_xml(broken)

    assert etree.tostring(root) == before
