"""Identity constraints checked by XPath give exactly libxml2's verdicts and findings.

Every packaged XML contract (and a site schema with local declarations) is compiled three
times: with libxml2 checking every constraint (``IdentityChecks.LIBXML2``, the reference), as
mesbridge runs it (``REQUIRED_FIELDS``) and with every shape XPath can check (``ALL``). Valid
and invalid fixtures are mutated the ways identity constraints fail (a field dropped, repeated,
emptied or padded, an ID duplicated or only whitespace apart, segments nested, standard fields
carried in Z-segments, type errors alongside, xsi attributes) and all three must report the
same findings, in the same order.
"""

from __future__ import annotations

import collections
import copy
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from contracts.contract import Contract
from contracts.errors import Finding
from contracts.identity import IdentityChecks, IdentityShortcut
from contracts.manifest import read_manifest
from contracts.registry import ContractRegistry

from .conftest import REPO_ROOT, parse_xml

FIXTURES = REPO_ROOT / "tests" / "fixtures"
XSI = "http://www.w3.org/2001/XMLSchema-instance"

# Contract key -> the fixture directory its seeds come from (LOIPRO02/03 share LOIPRO01's schema).
SEEDS = {
    "sap-idoc/LOIPRO01/1": "sap-idoc/LOIPRO01/1",
    "sap-idoc/LOIPRO02/1": "sap-idoc/LOIPRO01/1",
    "sap-idoc/LOIPRO03/1": "sap-idoc/LOIPRO01/1",
    "sap-idoc/MBGMCR03/1": "sap-idoc/MBGMCR03/1",
    "b2mml/ProductionSchedule/V0600": "b2mml/ProductionSchedule/V0600",
    "b2mml/OperationsSchedule/V7": "b2mml/OperationsSchedule/V7",
    "b2mml/ProductionPerformance/V0600": "b2mml/ProductionPerformance/V0600",
    "b2mml/OperationsPerformance/V0600": "b2mml/OperationsPerformance/V0600",
    "b2mml/OperationsPerformance/V7": "b2mml/OperationsPerformance/V7",
}

# A site schema in the WE60 style: local declarations, keys and uniques on child selectors.
SITE_XSD = """\
    <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:simpleType name="Id"><xs:restriction base="xs:normalizedString">
        <xs:maxLength value="12"/></xs:restriction></xs:simpleType>
      <xs:element name="ZLOIPRO01">
        <xs:complexType><xs:sequence>
          <xs:element name="IDOC" maxOccurs="unbounded">
            <xs:complexType><xs:sequence>
              <xs:element name="E1AFKOL" maxOccurs="unbounded">
                <xs:complexType><xs:sequence>
                  <xs:element name="AUFNR" type="Id"/>
                  <xs:element name="E1AFVOL" minOccurs="0" maxOccurs="unbounded">
                    <xs:complexType><xs:sequence>
                      <xs:element name="VORNR" type="xs:string" minOccurs="0" maxOccurs="2"/>
                      <xs:element ref="ZZNOTE" minOccurs="0"/>
                      <xs:element ref="Z1EXT" minOccurs="0"/>
                    </xs:sequence></xs:complexType>
                  </xs:element>
                </xs:sequence></xs:complexType>
                <xs:unique name="PhaseNumber">
                  <xs:selector xpath="E1AFVOL"/><xs:field xpath="VORNR"/>
                </xs:unique>
              </xs:element>
            </xs:sequence></xs:complexType>
            <xs:key name="OrderNumber">
              <xs:selector xpath="./E1AFKOL"/><xs:field xpath="AUFNR"/>
            </xs:key>
          </xs:element>
        </xs:sequence></xs:complexType>
      </xs:element>
      <xs:element name="ZZNOTE" type="xs:token"/>
      <xs:element name="Z1EXT">
        <xs:complexType><xs:sequence>
          <xs:any namespace="##local" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
        </xs:sequence></xs:complexType>
        <xs:key name="ExtensionNote"><xs:selector xpath="."/><xs:field xpath="ZZNOTE"/></xs:key>
      </xs:element>
    </xs:schema>
"""
SITE_MANIFEST = """\
family = "sap-idoc"
type = "LOIPRO01"
version = "site-9"
format = "xml"
schema = "ZLOIPRO01.xsd"
description = "a site schema with keys on local declarations"
[identify]
idoctyp = ["LOIPRO01"]
mestyp = ["LOIPRO"]
cimtyp = ["ZLOIPRO01"]
"""
SITE_MESSAGE = """\
<ZLOIPRO01>
  <IDOC>
    <E1AFKOL><AUFNR>1000007</AUFNR>
      <E1AFVOL><VORNR>0010</VORNR><ZZNOTE>a</ZZNOTE><Z1EXT><ZZNOTE>b</ZZNOTE></Z1EXT></E1AFVOL>
      <E1AFVOL><VORNR>0020</VORNR></E1AFVOL>
      <E1AFVOL/>
    </E1AFKOL>
    <E1AFKOL><AUFNR>1000008</AUFNR><E1AFVOL><VORNR>0010</VORNR></E1AFVOL></E1AFKOL>
  </IDOC>
</ZLOIPRO01>
"""


@dataclass(frozen=True)
class Pair:
    """One contract compiled three ways (see the module docstring), and its seed documents."""

    reference: Contract  # libxml2 checks every identity constraint
    fast: Contract  # as mesbridge runs it
    every: Contract  # every shape the XPath check knows
    seeds: tuple[etree._Element, ...]  # valid documents first, then invalid ones
    valid: int = 0


def _pair(contract: Contract, valid: list[etree._Element], invalid: list[etree._Element]) -> Pair:
    manifest = read_manifest(contract.manifest_path)
    reference, fast, every = (
        Contract(manifest, identity=checks)
        for checks in (IdentityChecks.LIBXML2, IdentityChecks.REQUIRED_FIELDS, IdentityChecks.ALL)
    )
    for compiled in (reference, fast, every):
        compiled.compile()
    return Pair(reference, fast, every, seeds=(*valid, *invalid), valid=len(valid))


def _fixture_seeds(directory: str, kind: str) -> list[etree._Element]:
    files = sorted((FIXTURES / directory / kind).glob("*.xml"))
    return [root for path in files for root in _documents(path)]


def _documents(path: Path) -> list[etree._Element]:
    # Some golden files hold several output documents one after the other.
    chunks = path.read_bytes().split(b"<?xml ")
    return [
        parse_xml(b"<?xml " + chunk if i else chunk)
        for i, chunk in enumerate(chunks)
        if chunk.strip()
    ]


@pytest.fixture(scope="module")
def pairs(registry: ContractRegistry) -> dict[str, Pair]:
    return {
        key: _pair(
            registry.get(key), _fixture_seeds(seed, "valid"), _fixture_seeds(seed, "invalid")
        )
        for key, seed in SEEDS.items()
    }


@pytest.fixture(scope="module")
def site_pair(tmp_path_factory: pytest.TempPathFactory) -> Pair:
    # Dropped in the way an operator adds a site version (docs/contracts.md).
    base = tmp_path_factory.mktemp("site") / "contracts"
    directory = base / "sap-idoc" / "LOIPRO01" / "site-9"
    directory.mkdir(parents=True)
    (directory / "contract.toml").write_text(SITE_MANIFEST, encoding="utf-8")
    (directory / "ZLOIPRO01.xsd").write_text(textwrap.dedent(SITE_XSD), encoding="utf-8")
    registry = ContractRegistry.load([base])
    return _pair(registry.get("sap-idoc/LOIPRO01/site-9"), [parse_xml(SITE_MESSAGE)], [])


# ------------------------------------------------------------------ mutations

# Values that make identity constraints and types fail together or apart.
TEXTS = ["", " ", "\t", "0010", " 0010", "0010 ", "00\t10", "00 10", "00  10", "X" * 41, "1,5"]


def _elements(root: etree._Element) -> list[etree._Element]:
    return [e for e in root.iter() if isinstance(e.tag, str)]


def _leaves(root: etree._Element) -> list[etree._Element]:
    # Elements without element children (a comment may be there); any element if none is.
    elements = _elements(root)
    return [e for e in elements if not _elements(e)[1:]] or elements


def _below(root: etree._Element) -> list[etree._Element]:
    # Never the root itself; the root alone when every other element is gone.
    return _elements(root)[1:] or [root]


def _drop(data: st.DataObject, root: etree._Element) -> None:
    element = data.draw(st.sampled_from(_below(root)))
    parent = element.getparent()
    if parent is not None:
        parent.remove(element)


def _repeat(data: st.DataObject, root: etree._Element) -> None:
    # Mostly an element that may repeat (it has a twin sibling): the copy repeats its IDs.
    elements = _below(root)
    repeating = [e for e in elements if any(s.tag == e.tag for s in e.itersiblings())]
    element = data.draw(st.sampled_from(repeating or elements) | st.sampled_from(elements))
    if element is not root:
        element.addnext(copy.deepcopy(element))


def _set_text(data: st.DataObject, root: etree._Element) -> None:
    leaf = data.draw(st.sampled_from(_leaves(root)))
    leaf.text = data.draw(st.sampled_from([*TEXTS, None]))


def _near_duplicate(data: st.DataObject, root: etree._Element) -> None:
    # Give a leaf the value of another leaf with the same name, exactly or whitespace apart.
    leaves = _leaves(root)
    names = collections.Counter(e.tag for e in leaves)
    leaf = data.draw(st.sampled_from([e for e in leaves if names[e.tag] > 1] or leaves))
    twins = [e for e in leaves if e.tag == leaf.tag and e is not leaf]
    if not twins:
        return
    value = data.draw(st.sampled_from(twins)).text or ""
    variant = data.draw(st.sampled_from(["same", "tab", "newline", "lead", "trail", "double"]))
    leaf.text = {
        "same": value,
        "tab": value.replace(" ", "\t") if " " in value else value[:1] + "\t" + value[1:],
        "newline": value + "\n",
        "lead": " " + value,
        "trail": value + " ",
        "double": value.replace(" ", "  "),
    }[variant]


def _nest(data: st.DataObject, root: etree._Element) -> None:
    # A copy of any element inside any other: nested keys, segments where they do not belong.
    element = data.draw(st.sampled_from(_below(root)))
    host = data.draw(st.sampled_from(_elements(root)))
    host.append(copy.deepcopy(element))


def _z_segment(data: st.DataObject, root: etree._Element) -> None:
    # An unknown segment carrying standard segments and fields: lax processing reaches them.
    host = data.draw(st.sampled_from(_elements(root)))
    namespace = etree.QName(host).namespace
    segment = etree.SubElement(host, f"{{{namespace}}}Z1SEG" if namespace else "Z1SEG")
    for element in data.draw(st.lists(st.sampled_from(_below(root)), max_size=3)):
        segment.append(copy.deepcopy(element))


def _rename(data: st.DataObject, root: etree._Element) -> None:
    element = data.draw(st.sampled_from(_below(root)))
    names = sorted({e.tag for e in _elements(root)})
    element.tag = data.draw(st.sampled_from(names))


def _comment(data: st.DataObject, root: etree._Element) -> None:
    # A comment splits a value into two text nodes; the value is still their concatenation.
    leaf = data.draw(st.sampled_from(_leaves(root)))
    leaf.append(etree.Comment("c"))
    leaf[-1].tail = data.draw(st.sampled_from(["", "0", " "]))


def _xsi(data: st.DataObject, root: etree._Element) -> None:
    element = data.draw(st.sampled_from(_elements(root)))
    name, value = data.draw(
        st.sampled_from(
            [
                ("type", "Segment"),
                ("type", "IdentifierType"),
                ("type", "xs:string"),
                ("nil", "true"),
            ]
        )
    )
    element.set(f"{{{XSI}}}{name}", value)


# Repeating and near-duplicating leave closed content models (B2MML) valid, so they come more
# often: they reach the documents where only an identity constraint can fail.
MUTATIONS: list[Callable[[st.DataObject, etree._Element], None]] = [
    _repeat,
    _repeat,
    _near_duplicate,
    _near_duplicate,
    _drop,
    _repeat,
    _set_text,
    _near_duplicate,
    _nest,
    _z_segment,
    _rename,
    _comment,
    _xsi,
]


def _mutated(data: st.DataObject, pair: Pair) -> etree._Element:
    # Mostly a valid document, so that the identity constraints are what breaks.
    seeds = st.sampled_from(pair.seeds[: pair.valid] or pair.seeds)
    root = copy.deepcopy(data.draw(seeds | seeds | st.sampled_from(pair.seeds)))
    for mutation in data.draw(st.lists(st.sampled_from(MUTATIONS), min_size=1, max_size=3)):
        mutation(data, root)
    return root


def _assert_same(pair: Pair, root: etree._Element) -> list[Finding]:
    expected = pair.reference.validate_xml(root)
    assert pair.fast.validate_xml(root) == expected
    assert pair.every.validate_xml(root) == expected
    return expected


# ------------------------------------------------------------------ properties

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.mark.parametrize("key", sorted(SEEDS))
@PROPERTY
@given(data=st.data())
def test_mutated_documents_get_the_findings_libxml2_gives(
    key: str, pairs: dict[str, Pair], data: st.DataObject
) -> None:
    _assert_same(pairs[key], _mutated(data, pairs[key]))


@PROPERTY
@given(data=st.data())
def test_a_site_schema_with_local_declarations_gets_the_same_findings(
    site_pair: Pair, data: st.DataObject
) -> None:
    _assert_same(site_pair, _mutated(data, site_pair))


# ------------------------------------------------------------------ the cheap path is taken


@pytest.mark.parametrize("key", sorted(SEEDS))
def test_valid_fixtures_pass_without_libxml2_identity_checks(
    key: str, pairs: dict[str, Pair]
) -> None:
    pair = pairs[key]
    for contract in (pair.fast, pair.every):
        shortcut = _shortcut(contract)
        for path in sorted((FIXTURES / SEEDS[key] / "valid").glob("*.xml")):
            for root in _documents(path):
                assert contract.validate_xml(root) == pair.reference.validate_xml(root) == []
                if shortcut is None:
                    continue  # no identity constraint it checks
                targets = list(root.iter("IDOC")) if contract.validate_each else [root]
                assert all(shortcut.accepts(target) for target in targets), path.name


def _shortcut(contract: Contract) -> IdentityShortcut | None:
    schema = contract._xsd
    assert schema is not None
    return schema.shortcut


def _checked(
    pairs: dict[str, Pair], pick: Callable[[Pair], Contract]
) -> dict[str, tuple[str, ...]]:
    return {
        key: shortcut.constraints
        for key, pair in pairs.items()
        if (shortcut := _shortcut(pick(pair))) is not None
    }


def test_the_required_field_keys_are_checked_by_xpath(pairs: dict[str, Pair]) -> None:
    checked = _checked(pairs, lambda pair: pair.fast)
    assert set(checked) == {
        "sap-idoc/LOIPRO01/1",
        "sap-idoc/LOIPRO02/1",
        "sap-idoc/LOIPRO03/1",
        "sap-idoc/MBGMCR03/1",
    }
    assert len(checked["sap-idoc/LOIPRO01/1"]) == 13  # every xs:key in LOIPRO.xsd
    assert len(checked["sap-idoc/MBGMCR03/1"]) == 14
    assert all(_shortcut(pair.reference) is None for pair in pairs.values())


def test_every_packaged_identity_constraint_can_be_checked_by_xpath(
    pairs: dict[str, Pair],
) -> None:
    checked = _checked(pairs, lambda pair: pair.every)
    assert checked["b2mml/ProductionSchedule/V0600"] == (
        "UniqueProductionRequestID",
        "UniqueSegmentRequirementID",
        "UniqueMaterialRequirementPropertyID",
    )
    assert len(checked["b2mml/OperationsSchedule/V7"]) == 4


def test_the_site_schema_constraints_are_checked_by_xpath(site_pair: Pair) -> None:
    fast, every = _shortcut(site_pair.fast), _shortcut(site_pair.every)
    assert fast is not None and every is not None
    assert fast.constraints == ("ExtensionNote",)
    assert every.constraints == ("PhaseNumber", "OrderNumber", "ExtensionNote")
    assert fast.accepts(site_pair.seeds[0]) and every.accepts(site_pair.seeds[0])


# ------------------------------------------------------------------ the cases named in the docs

LOIPRO = FIXTURES / "sap-idoc" / "LOIPRO01" / "1" / "valid" / "shared_example.xml"
SCHEDULE = FIXTURES / "b2mml" / "ProductionSchedule" / "V0600" / "valid" / "typical_order.xml"
B2MML_V0600 = "{http://www.mesa.org/xml/B2MML-V0600}"


def _component(root: etree._Element) -> etree._Element:
    return _child(root, ".//E1RESBL")


def _child(element: etree._Element, path: str) -> etree._Element:
    found = element.find(path)
    assert found is not None, path
    return found


def _expected(findings: list[Finding]) -> list[str]:
    return [f.expected for f in findings]


def test_a_missing_field_in_a_component_nested_in_a_z_segment_is_found(
    pairs: dict[str, Pair],
) -> None:
    root = parse_xml(LOIPRO)
    nested = copy.deepcopy(_component(root))
    nested.remove(_child(nested, "BDMNG"))
    etree.SubElement(_component(root), "Z1RESBL").append(nested)

    findings = _assert_same(pairs["sap-idoc/LOIPRO01/1"], root)
    assert _expected(findings) == ["required field BDMNG, which is missing"]
    assert findings[0].where.endswith("/E1RESBL/Z1RESBL/E1RESBL")


def test_a_repeated_field_next_to_a_type_error_gives_both_findings_in_libxml2_order(
    pairs: dict[str, Pair],
) -> None:
    root = parse_xml(LOIPRO)
    component = _component(root)
    _child(component, "MEINS").addnext(copy.deepcopy(_child(component, "MEINS")))
    _child(component, "BDMNG").text = "1,5"

    findings = _assert_same(pairs["sap-idoc/LOIPRO01/1"], root)
    assert [f.where.rpartition("/")[2] for f in findings] == ["BDMNG", "MEINS[2]"]
    assert findings[1].expected == "field MEINS only once in E1RESBL; it is repeated"


def test_an_empty_key_field_is_a_value_error_not_a_missing_field(pairs: dict[str, Pair]) -> None:
    root = parse_xml(LOIPRO)
    _child(_component(root), "MEINS").text = ""

    findings = _assert_same(pairs["sap-idoc/LOIPRO01/1"], root)
    assert _expected(findings) == ["at least 1 character (SAP CHAR 3, not empty)"]


@pytest.mark.parametrize("twin", ["same", "\t", "\n"])
def test_segment_ids_equal_after_whitespace_normalisation_are_duplicates(
    pairs: dict[str, Pair], twin: str
) -> None:
    root = parse_xml(SCHEDULE)
    ids = root.findall(f".//{B2MML_V0600}SegmentRequirement/{B2MML_V0600}ID")
    assert len(ids) >= 2
    ids[0].text = "PH 0010"
    ids[1].text = "PH 0010" if twin == "same" else f"PH{twin}0010"

    findings = _assert_same(pairs["b2mml/ProductionSchedule/V0600"], root)
    assert len(findings) == 1
    assert "UniqueSegmentRequirementID; 'PH 0010' is repeated" in findings[0].expected


def test_the_same_ids_under_different_requests_are_no_duplicates(pairs: dict[str, Pair]) -> None:
    root = parse_xml(SCHEDULE)
    request = _child(root, f".//{B2MML_V0600}ProductionRequest")
    twin = copy.deepcopy(request)
    _child(twin, f"{B2MML_V0600}ID").text = "ANOTHER-ORDER"
    request.addnext(twin)

    assert _assert_same(pairs["b2mml/ProductionSchedule/V0600"], root) == []
