"""Which identity constraints leave libxml2 for the XPath check, and which stay in the schema."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from lxml import etree

from contracts.identity import IdentityChecks, identity_shortcut, plan_identity
from contracts.xsd import compile_xsd

from .conftest import PACKAGED, parse_xml

XS = "http://www.w3.org/2001/XMLSchema"

# A segment in the IDoc style (any unqualified child, laxly) and a closed record type.
TYPES = """\
  <xs:complexType name="Segment"><xs:sequence>
    <xs:any namespace="##local" processContents="lax" minOccurs="0" maxOccurs="unbounded"/>
  </xs:sequence></xs:complexType>
  <xs:complexType name="Row"><xs:sequence>
    <xs:element name="ID" type="xs:string"/>
    <xs:element name="QTY" type="xs:decimal" minOccurs="0"/>
    <xs:element name="NOTE" type="xs:string" minOccurs="0" default="n/a"/>
    <xs:element name="MAYBE" type="xs:string" minOccurs="0" nillable="true"/>
  </xs:sequence><xs:attribute name="id" type="xs:string"/></xs:complexType>
  <xs:element name="FIELD" type="xs:string"/>
  <xs:element name="OTHER" type="xs:string"/>
"""


def _schema(body: str, *, types: str = TYPES) -> etree._ElementTree:
    text = f'<xs:schema xmlns:xs="{XS}">\n{types}{textwrap.dedent(body)}</xs:schema>'
    return etree.ElementTree(etree.fromstring(text))


def _planned(body: str, *, types: str = TYPES) -> tuple[str, ...]:
    plan = plan_identity(_schema(body, types=types), compare_values=True)
    return plan.constraints if plan else ()


def _table(constraint: str, *, row_type: str = "Row") -> str:
    return f"""\
      <xs:element name="TABLE"><xs:complexType><xs:sequence>
        <xs:element name="ROW" type="{row_type}" maxOccurs="unbounded"/>
      </xs:sequence></xs:complexType>{constraint}</xs:element>
    """


def test_the_required_child_idiom_on_a_lax_segment_is_planned() -> None:
    assert _planned("""\
      <xs:element name="SEG" type="Segment">
        <xs:key name="SEG.FIELD"><xs:selector xpath="."/><xs:field xpath="FIELD"/></xs:key>
        <xs:key name="SEG.BOTH"><xs:selector xpath=" . "/>
          <xs:field xpath="./FIELD"/><xs:field xpath="child::OTHER"/></xs:key>
        <xs:key name="SEG.DEEP"><xs:selector xpath="."/><xs:field xpath="SEG/FIELD"/></xs:key>
      </xs:element>
    """) == ("SEG.FIELD", "SEG.BOTH", "SEG.DEEP")


def test_a_unique_or_key_on_child_rows_with_a_string_field_is_planned_on_request() -> None:
    unique = '<xs:unique name="U"><xs:selector xpath="ROW"/><xs:field xpath="ID"/></xs:unique>'
    key = '<xs:key name="K"><xs:selector xpath="./ROW"/><xs:field xpath="ID"/></xs:key>'
    assert _planned(_table(unique)) == ("U",)
    assert _planned(_table(key)) == ("K",)
    # Comparing values is no cheaper than libxml2: by default they stay in the schema.
    assert plan_identity(_schema(_table(unique))) is None
    assert identity_shortcut(_schema(_table(unique)), IdentityChecks.ALL) is not None


@pytest.mark.parametrize(
    ("why", "constraint"),
    [
        ("unique on . never fails", '<xs:unique name="X"><xs:selector xpath="."/>'),
        ("descendant selector", '<xs:unique name="X"><xs:selector xpath=".//ROW"/>'),
        ("union selector", '<xs:unique name="X"><xs:selector xpath="ROW|ROW"/>'),
        ("wildcard selector", '<xs:unique name="X"><xs:selector xpath="*"/>'),
        ("two-step selector", '<xs:unique name="X"><xs:selector xpath="ROW/ROW"/>'),
        ("unknown prefix", '<xs:unique name="X"><xs:selector xpath="p:ROW"/>'),
    ],
)
def test_other_selectors_stay_with_libxml2(why: str, constraint: str) -> None:
    assert _planned(_table(f'{constraint}<xs:field xpath="ID"/></xs:unique>')) == (), why


@pytest.mark.parametrize(
    ("why", "fields"),
    [
        ("an attribute", '<xs:field xpath="@id"/>'),
        ("two fields", '<xs:field xpath="ID"/><xs:field xpath="ID"/>'),
        ("a decimal compares by value", '<xs:field xpath="QTY"/>'),
        ("a default stands in for empty", '<xs:field xpath="NOTE"/>'),
        ("a nillable field", '<xs:field xpath="MAYBE"/>'),
        ("not in the content model", '<xs:field xpath="NOPE"/>'),
        ("the selected node itself", '<xs:field xpath="."/>'),
    ],
)
def test_other_fields_stay_with_libxml2(why: str, fields: str) -> None:
    constraint = f'<xs:unique name="X"><xs:selector xpath="ROW"/>{fields}</xs:unique>'
    assert _planned(_table(constraint)) == (), why


def test_a_key_that_a_keyref_refers_to_stays_with_libxml2() -> None:
    assert (
        _planned(
            _table(
                '<xs:key name="K"><xs:selector xpath="ROW"/><xs:field xpath="ID"/></xs:key>'
                '<xs:keyref name="R" refer="K"><xs:selector xpath="ROW"/>'
                '<xs:field xpath="ID"/></xs:keyref>'
            )
        )
        == ()
    )


def test_a_type_that_xsi_type_could_swap_stays_with_libxml2() -> None:
    derived = (
        '<xs:complexType name="WideRow"><xs:complexContent><xs:extension base="Row">'
        '<xs:sequence><xs:element name="MORE" type="xs:string"/></xs:sequence>'
        "</xs:extension></xs:complexContent></xs:complexType>"
    )
    unique = '<xs:unique name="U"><xs:selector xpath="ROW"/><xs:field xpath="ID"/></xs:unique>'
    assert _planned(_table(unique), types=TYPES + derived) == ()


def test_a_group_reference_is_not_followed() -> None:
    grouped = (
        '<xs:group name="G"><xs:sequence><xs:element name="ID" type="xs:string"/>'
        "</xs:sequence></xs:group>"
        '<xs:complexType name="GroupedRow"><xs:group ref="G"/></xs:complexType>'
    )
    unique = '<xs:unique name="U"><xs:selector xpath="ROW"/><xs:field xpath="ID"/></xs:unique>'
    assert _planned(_table(unique, row_type="GroupedRow"), types=TYPES + grouped) == ()


def test_a_key_the_content_model_already_implies_needs_no_check() -> None:
    schema = _schema(
        '<xs:element name="R" type="Row">'
        '<xs:key name="K"><xs:selector xpath="."/><xs:field xpath="ID"/></xs:key>'
        "</xs:element>"
    )
    shortcut = identity_shortcut(schema)
    assert shortcut is not None
    assert shortcut.constraints == ("K",)
    assert shortcut.scopes == ()
    assert shortcut.accepts(parse_xml("<R><ID>1</ID></R>"))
    assert not shortcut.accepts(parse_xml("<R><QTY>1</QTY></R>"))  # the content model says it


def test_the_stripped_schema_keeps_what_stays_and_drops_what_is_planned() -> None:
    plan = plan_identity(
        _schema(
            _table(
                '<xs:unique name="U"><xs:selector xpath="ROW"/><xs:field xpath="ID"/></xs:unique>'
                '<xs:unique name="V"><xs:selector xpath="ROW"/><xs:field xpath="QTY"/></xs:unique>'
            )
        ),
        compare_values=True,
    )
    assert plan is not None
    left = [c.get("name") for c in plan.document.iter(f"{{{XS}}}unique")]
    assert left == ["V"]


def test_the_b2mml_ids_are_compared_after_whitespace_normalisation() -> None:
    path = PACKAGED / "b2mml" / "ProductionSchedule" / "V0600" / "ProcessProductionSchedule.xsd"
    plan = plan_identity(etree.parse(str(path)), compare_values=True)
    assert plan is not None
    # IdentifierType is a normalizedString: "A B" and "A<tab>B" are the same ID to libxml2.
    assert "normalize-space() != ." in plan.expression
    # The content model has exactly one ID per row: no count check is needed.
    assert "count(n0:ID)" not in plan.expression


def test_a_schema_that_includes_another_file_gets_no_shortcut(tmp_path: Path) -> None:
    (tmp_path / "types.xsd").write_text(f'<xs:schema xmlns:xs="{XS}">{TYPES}</xs:schema>')
    (tmp_path / "main.xsd").write_text(
        f'<xs:schema xmlns:xs="{XS}"><xs:include schemaLocation="types.xsd"/>'
        '<xs:element name="SEG" type="Segment">'
        '<xs:key name="K"><xs:selector xpath="."/><xs:field xpath="FIELD"/></xs:key>'
        "</xs:element></xs:schema>"
    )
    schema = compile_xsd(tmp_path / "main.xsd", [tmp_path])
    assert schema.shortcut is None
    assert not schema.validate(parse_xml("<SEG><OTHER/></SEG>"))


def test_the_reference_compilation_leaves_everything_to_libxml2() -> None:
    path = PACKAGED / "sap-idoc" / "LOIPRO01" / "1" / "LOIPRO.xsd"
    assert compile_xsd(path, [path.parent]).shortcut is not None
    assert compile_xsd(path, [path.parent], identity=IdentityChecks.LIBXML2).shortcut is None


def test_a_schema_without_identity_constraints_has_no_shortcut() -> None:
    assert identity_shortcut(_schema("")) is None
