"""`contracts check` for XSD: one OLD/NEW pair per rule, both kinds, and the real LOIPRO schema."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contracts.compat import Change, ChangeKind, check_compatibility
from contracts.errors import ConfigurationError
from contracts.registry import ContractRegistry

from .conftest import LOIPRO01_DIR

XS = 'xmlns:xs="http://www.w3.org/2001/XMLSchema"'


def _schema(tmp_path: Path, name: str, body: str, extra: str = "", *, ns: str = "") -> Path:
    target = f' targetNamespace="{ns}" xmlns="{ns}" elementFormDefault="qualified"' if ns else ""
    path = tmp_path / f"{name}.xsd"
    path.write_text(
        f"<xs:schema {XS}{target}>"
        '<xs:element name="Doc"><xs:complexType>'
        f"{body}"
        "</xs:complexType></xs:element>"
        f"{extra}</xs:schema>",
        encoding="utf-8",
    )
    return path


def _changes(
    tmp_path: Path, old: str, new: str, old_extra: str = "", new_extra: str = ""
) -> set[Change]:
    report = check_compatibility(
        _schema(tmp_path, "old", old, old_extra), _schema(tmp_path, "new", new, new_extra)
    )
    assert report.is_compatible == (not report.breaking)
    return set(report.changes)


def _seq(*elements: str) -> str:
    return "<xs:sequence>" + "".join(elements) + "</xs:sequence>"


def _el(name: str, type_: str = "xs:string", **attrs: str) -> str:
    more = "".join(f' {k}="{v}"' for k, v in attrs.items())
    return f'<xs:element name="{name}" type="{type_}"{more}/>'


def _typed(name: str, restriction: str, base: str = "xs:string") -> str:
    return (
        f'<xs:element name="{name}"><xs:simpleType><xs:restriction base="{base}">'
        f"{restriction}</xs:restriction></xs:simpleType></xs:element>"
    )


def test_identical_schemas_have_no_changes(tmp_path: Path) -> None:
    body = _seq(_el("A"), _el("B", minOccurs="0"))
    report = check_compatibility(_schema(tmp_path, "old", body), _schema(tmp_path, "new", body))

    assert report.changes == ()
    assert report.is_compatible
    assert "backward-compatible" in report.render()


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            _seq(_el("A"), _el("B", minOccurs="0")),
            _seq(_el("A")),
            Change("breaking", "//Doc/B", "element removed"),
        ),
        (
            _seq(_el("A")),
            _seq(_el("A"), _el("B", minOccurs="0")),
            Change("compatible", "//Doc/B", "new optional element"),
        ),
        (
            _seq(_el("A")),
            _seq(_el("A"), _el("B")),
            Change("breaking", "//Doc/B", "new required element (minOccurs 1)"),
        ),
        (
            _seq(_el("A", minOccurs="0")),
            _seq(_el("A")),
            Change("breaking", "//Doc/A", "minOccurs 0 → 1"),
        ),
        (
            _seq(_el("A")),
            _seq(_el("A", minOccurs="0")),
            Change("compatible", "//Doc/A", "minOccurs 1 → 0"),
        ),
        (
            _seq(_el("A", maxOccurs="unbounded")),
            _seq(_el("A", maxOccurs="5")),
            Change("breaking", "//Doc/A", "maxOccurs unbounded → 5"),
        ),
        (
            _seq(_el("A", maxOccurs="2")),
            _seq(_el("A", maxOccurs="3")),
            Change("compatible", "//Doc/A", "maxOccurs 2 → 3"),
        ),
        (
            _seq(_el("A"), _el("B")),
            '<xs:choice><xs:element name="A" type="xs:string"/>'
            '<xs:element name="B" type="xs:string"/></xs:choice>',
            Change("compatible", "//Doc/A", "minOccurs 1 → 0"),
        ),
        (
            '<xs:sequence maxOccurs="unbounded">' + _el("A") + "</xs:sequence>",
            _seq(_el("A")),
            Change("breaking", "//Doc/A", "maxOccurs unbounded → 1"),
        ),
    ],
    ids=[
        "removed",
        "optional-added",
        "required-added",
        "min-raised",
        "min-lowered",
        "max-lowered",
        "max-raised",
        "sequence-to-choice",
        "repeating-group-lost",
    ],
)
def test_structure_rules(tmp_path: Path, old: str, new: str, expected: Change) -> None:
    assert expected in _changes(tmp_path, old, new)


@pytest.mark.parametrize(
    ("old", "new", "kind", "text"),
    [
        (
            '<xs:maxLength value="12"/>',
            '<xs:maxLength value="10"/>',
            "breaking",
            "maxLength 12 → 10",
        ),
        (
            '<xs:maxLength value="10"/>',
            '<xs:maxLength value="12"/>',
            "compatible",
            "maxLength 10 → 12",
        ),
        ("", '<xs:maxLength value="10"/>', "breaking", "maxLength 10 added"),
        ('<xs:maxLength value="10"/>', "", "compatible", "maxLength 10 removed"),
        ('<xs:minLength value="1"/>', '<xs:minLength value="2"/>', "breaking", "minLength 1 → 2"),
        ('<xs:length value="4"/>', '<xs:length value="5"/>', "breaking", "length 4 → 5"),
        (
            '<xs:pattern value="[A-Z]+"/>',
            '<xs:pattern value="[A-Z]{1,4}"/>',
            "breaking",
            "pattern added or changed: [A-Z]{1,4}",
        ),
        ('<xs:pattern value="[A-Z]+"/>', "", "compatible", "pattern removed"),
        (
            '<xs:enumeration value="H"/><xs:enumeration value="S"/>',
            '<xs:enumeration value="H"/>',
            "breaking",
            "enumeration values removed: S",
        ),
        (
            '<xs:enumeration value="H"/>',
            '<xs:enumeration value="H"/><xs:enumeration value="S"/>',
            "compatible",
            "enumeration values added: S",
        ),
        ("", '<xs:enumeration value="H"/>', "breaking", "enumeration added: H"),
    ],
)
def test_string_facet_rules(
    tmp_path: Path, old: str, new: str, kind: ChangeKind, text: str
) -> None:
    changes = _changes(tmp_path, _seq(_typed("F", old)), _seq(_typed("F", new)))

    assert Change(kind, "//Doc/F", text) in changes


@pytest.mark.parametrize(
    ("old", "new", "kind", "text"),
    [
        (
            '<xs:maxInclusive value="100"/>',
            '<xs:maxInclusive value="99.5"/>',
            "breaking",
            "maxInclusive 100 → 99.5",
        ),
        (
            '<xs:maxInclusive value="100"/>',
            '<xs:maxInclusive value="1000"/>',
            "compatible",
            "maxInclusive 100 → 1000",
        ),
        (
            '<xs:minInclusive value="0"/>',
            '<xs:minInclusive value="1"/>',
            "breaking",
            "minInclusive 0 → 1",
        ),
        (
            '<xs:totalDigits value="16"/>',
            '<xs:totalDigits value="13"/>',
            "breaking",
            "totalDigits 16 → 13",
        ),
        (
            '<xs:fractionDigits value="3"/>',
            '<xs:fractionDigits value="6"/>',
            "compatible",
            "fractionDigits 3 → 6",
        ),
    ],
)
def test_numeric_facet_rules(
    tmp_path: Path, old: str, new: str, kind: ChangeKind, text: str
) -> None:
    changes = _changes(
        tmp_path, _seq(_typed("N", old, "xs:decimal")), _seq(_typed("N", new, "xs:decimal"))
    )

    assert Change(kind, "//Doc/N", text) in changes


@pytest.mark.parametrize(
    ("old", "new", "kind", "text"),
    [
        ("xs:decimal", "xs:integer", "breaking", "base type xs:decimal → xs:integer (narrower)"),
        ("xs:int", "xs:decimal", "compatible", "base type xs:int → xs:decimal (wider)"),
        ("xs:string", "xs:date", "breaking", "base type xs:string → xs:date (not a widening)"),
    ],
)
def test_base_type_rules(tmp_path: Path, old: str, new: str, kind: ChangeKind, text: str) -> None:
    changes = _changes(tmp_path, _seq(_el("V", old)), _seq(_el("V", new)))

    assert changes == {Change(kind, "//Doc/V", text)}


def test_named_type_facets_are_compared_through_the_type(tmp_path: Path) -> None:
    def char(length: int) -> str:
        return (
            '<xs:simpleType name="CHAR"><xs:restriction base="xs:string">'
            f'<xs:maxLength value="{length}"/></xs:restriction></xs:simpleType>'
        )

    changes = _changes(tmp_path, _seq(_el("A", "CHAR")), _seq(_el("A", "CHAR")), char(10), char(8))

    assert changes == {Change("breaking", "//Doc/A", "maxLength 10 → 8")}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            "",
            '<xs:attribute name="r" use="required" type="xs:string"/>',
            Change("breaking", "//Doc/@r", "new required attribute"),
        ),
        (
            "",
            '<xs:attribute name="r" type="xs:string"/>',
            Change("compatible", "//Doc/@r", "new optional attribute"),
        ),
        (
            '<xs:attribute name="r" type="xs:string"/>',
            "",
            Change("breaking", "//Doc/@r", "attribute removed"),
        ),
        (
            '<xs:attribute name="r" type="xs:string"/>',
            '<xs:attribute name="r" use="required" type="xs:string"/>',
            Change("breaking", "//Doc/@r", "optional → required"),
        ),
        (
            '<xs:attribute name="r" use="required" type="xs:string"/>',
            '<xs:attribute name="r" type="xs:string"/>',
            Change("compatible", "//Doc/@r", "required → optional"),
        ),
        (
            '<xs:anyAttribute processContents="skip"/>',
            "",
            Change("breaking", "//Doc", "anyAttribute removed: unknown attributes rejected"),
        ),
    ],
)
def test_attribute_rules(tmp_path: Path, old: str, new: str, expected: Change) -> None:
    assert expected in _changes(tmp_path, _seq(_el("A")) + old, _seq(_el("A")) + new)


LAX = '<xs:any namespace="##local" processContents="{}" minOccurs="0" maxOccurs="unbounded"/>'


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (
            _seq(LAX.format("lax")),
            "<xs:sequence/>",
            Change(
                "breaking", "//Doc", "wildcard removed: unknown child elements are now rejected"
            ),
        ),
        (
            _seq(LAX.format("lax")),
            _seq(LAX.format("strict")),
            Change("breaking", "//Doc", "wildcard processContents lax → strict"),
        ),
        (
            _seq(LAX.format("lax")),
            _seq(LAX.format("skip")),
            Change("compatible", "//Doc", "wildcard processContents lax → skip"),
        ),
        (
            "<xs:sequence/>",
            _seq(LAX.format("lax")),
            Change("compatible", "//Doc", "wildcard added (lax)"),
        ),
    ],
)
def test_wildcard_rules(tmp_path: Path, old: str, new: str, expected: Change) -> None:
    assert expected in _changes(tmp_path, old, new)


def _lax_schema(tmp_path: Path, name: str, keys: str, globals_: str) -> Path:
    path = tmp_path / f"{name}.xsd"
    path.write_text(
        f"<xs:schema {XS}>"
        '<xs:complexType name="Segment"><xs:sequence>'
        + LAX.format("lax")
        + "</xs:sequence></xs:complexType>"
        f'<xs:element name="SEG" type="Segment">{keys}</xs:element>'
        f"{globals_}</xs:schema>",
        encoding="utf-8",
    )
    return path


def _key(field: str) -> str:
    return (
        f'<xs:key name="SEG.{field}"><xs:selector xpath="."/><xs:field xpath="{field}"/></xs:key>'
    )


def test_lax_design_required_fields_and_new_globals(tmp_path: Path) -> None:
    old = _lax_schema(tmp_path, "old", _key("A"), _el("A") + _el("B"))
    new = _lax_schema(tmp_path, "new", _key("B"), _el("A") + _el("B") + _el("C"))

    changes = set(check_compatibility(old, new).changes)

    assert changes == {
        Change("breaking", "//SEG", "newly required field B (identity constraint)"),
        Change("compatible", "//SEG", "field A no longer required"),
        Change(
            "breaking",
            "//C",
            "new global element declaration: such elements, accepted unchecked by the old "
            "schema's wildcards, are now validated",
        ),
    }


def test_new_global_in_a_strict_schema_is_compatible(tmp_path: Path) -> None:
    old = tmp_path / "old.xsd"
    new = tmp_path / "new.xsd"
    old.write_text(f"<xs:schema {XS}>{_el('A')}</xs:schema>")
    new.write_text(f"<xs:schema {XS}>{_el('A')}{_el('B')}</xs:schema>")

    assert set(check_compatibility(old, new).changes) == {
        Change("compatible", "//B", "new global element declaration")
    }


def test_children_of_a_removed_element_are_not_listed_again(tmp_path: Path) -> None:
    nested = (
        '<xs:element name="Box" minOccurs="0"><xs:complexType>'
        + _seq(_el("X"), _el("Y"))
        + '<xs:attribute name="a"/></xs:complexType></xs:element>'
    )
    changes = _changes(tmp_path, _seq(_el("A"), nested), _seq(_el("A")))

    assert changes == {Change("breaking", "//Doc/Box", "element removed")}


def test_target_namespace_change_is_breaking(tmp_path: Path) -> None:
    old = _schema(tmp_path, "old", _seq(_el("A")), ns="urn:v1")
    new = _schema(tmp_path, "new", _seq(_el("A")), ns="urn:v2")

    report = check_compatibility(old, new)

    assert Change("breaking", "/", "target namespace changed from 'urn:v1' to 'urn:v2'") in (
        report.changes
    )


def test_recursive_types_terminate(tmp_path: Path) -> None:
    recursive = (
        '<xs:complexType name="Seg"><xs:sequence><xs:element name="Id" type="xs:string"/>'
        '<xs:element name="Seg" type="Seg" minOccurs="0" maxOccurs="unbounded"/>'
        "</xs:sequence></xs:complexType>"
    )
    old = _seq('<xs:element name="Seg" type="Seg"/>')
    new = _seq('<xs:element name="Seg" type="Seg" maxOccurs="2"/>')

    changes = _changes(tmp_path, old, new, recursive, recursive)

    assert changes == {Change("compatible", "//Doc/Seg", "maxOccurs 1 → 2")}


# ------------------------------------------------------------------------ real LOIPRO contract


def _loipro_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "sap-idoc" / "LOIPRO01" / "2"
    shutil.copytree(LOIPRO01_DIR, directory)
    manifest = directory / "contract.toml"
    manifest.write_text(manifest.read_text().replace('version = "1"', 'version = "2"'))
    return directory


def test_loipro_against_itself_is_compatible(tmp_path: Path) -> None:
    report = check_compatibility(LOIPRO01_DIR, _loipro_copy(tmp_path))

    assert report.changes == ()
    assert report.old == "sap-idoc/LOIPRO01/1"
    assert report.new == "sap-idoc/LOIPRO01/2"


def test_loipro_against_a_modified_copy(tmp_path: Path) -> None:
    directory = _loipro_copy(tmp_path)
    schema = directory / "LOIPRO.xsd"
    text = schema.read_text(encoding="utf-8")
    replacements = {
        # batch widened to 12 characters: compatible
        '<xs:element name="CHARG" type="CHAR10"/>': '<xs:element name="CHARG" type="CHAR12_REQ"/>',
        # storage location no longer declared: breaking (removed)
        '<xs:element name="LGORT" type="CHAR4"/>': "",
        # the order item now requires a batch: breaking
        '<xs:element name="E1AFPOL" type="Segment"/>': (
            '<xs:element name="E1AFPOL" type="Segment"><xs:key name="E1AFPOL.CHARG">'
            '<xs:selector xpath="."/><xs:field xpath="CHARG"/></xs:key></xs:element>'
        ),
        # SHKZG loses S: breaking
        '<xs:enumeration value="H"/><xs:enumeration value="S"/>': '<xs:enumeration value="H"/>',
    }
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    schema.write_text(text, encoding="utf-8")
    manifest = directory / "contract.toml"
    manifest.write_text(
        manifest.read_text().replace(
            '[[require_any]]\nelement = "E1RESBL"\nchildren = ["MATNR", "MATNR_LONG"]\n', ""
        )
    )
    report = check_compatibility(LOIPRO01_DIR, directory)

    assert set(report.changes) == {
        Change("breaking", "//CHARG", "minLength 1 added"),
        Change("compatible", "//CHARG", "maxLength 10 → 12"),
        Change("breaking", "//LGORT", "element removed"),
        Change("breaking", "//E1AFPOL", "newly required field CHARG (identity constraint)"),
        Change("breaking", "//SHKZG", "enumeration values removed: S"),
        Change("compatible", "//E1RESBL", "no longer requires one of MATNR, MATNR_LONG"),
    }
    assert not report.is_compatible
    rendered = report.render()
    assert rendered.startswith(
        "sap-idoc/LOIPRO01/2 against sap-idoc/LOIPRO01/1: NOT backward-compatible (4 breaking"
    )


def test_loaded_contracts_and_schema_files_can_be_compared(
    registry: ContractRegistry, tmp_path: Path
) -> None:
    report = check_compatibility(registry.get("sap-idoc/LOIPRO01/1"), LOIPRO01_DIR / "LOIPRO.xsd")

    # The bare schema has no manifest, so the require_any rules count as dropped.
    assert set(report.changes) == {
        Change("compatible", "//E1AFKOL", "no longer requires one of MATNR, MATNR_LONG"),
        Change("compatible", "//E1RESBL", "no longer requires one of MATNR, MATNR_LONG"),
    }


def test_xml_and_json_cannot_be_compared(registry: ContractRegistry) -> None:
    with pytest.raises(ConfigurationError, match="cannot compare"):
        check_compatibility(registry.get("sap-idoc/LOIPRO01/1"), registry.get("tulip/workorder/1"))


def test_unusable_paths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(ConfigurationError, match="no such contract directory"):
        check_compatibility(tmp_path / "missing.xsd", LOIPRO01_DIR)
    with pytest.raises(ConfigurationError, match=r"expected a contract directory"):
        check_compatibility(tmp_path / "notes.txt", LOIPRO01_DIR)
    (tmp_path / "broken.xsd").write_text("<xs:schema")
    with pytest.raises(ConfigurationError, match="cannot load the schema"):
        check_compatibility(tmp_path / "broken.xsd", LOIPRO01_DIR / "LOIPRO.xsd")
