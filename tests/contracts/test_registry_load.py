"""Loading the registry: everything is checked at start-up, with errors that name file and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from contracts.contract import ContractKey
from contracts.errors import ConfigurationError, UnknownContract
from contracts.registry import ContractRegistry, default_registry_dirs

from .conftest import LOIPRO01_DIR, PACKAGED, SIMPLE_XSD, ContractWriter

XML_MANIFEST = """
format = "xml"
schema = "schema.xsd"
description = "test"
[identify]
namespace = ""
root = ["Doc"]
"""


def test_the_packaged_contracts() -> None:
    registry = ContractRegistry.load()
    registry.check()

    keys = [str(contract.key) for contract in registry]
    assert default_registry_dirs() == (PACKAGED,)
    assert {
        "sap-idoc/LOIPRO01/1",
        "sap-idoc/LOIPRO02/1",
        "sap-idoc/LOIPRO03/1",
        "tulip/workorder/1",
    } <= set(keys)
    # Sorted by (family, type, version): sap/... before sap-idoc/..., unlike the plain text.
    assert keys == sorted(keys, key=lambda key: tuple(key.split("/")))
    assert len(registry) == len(keys)


def test_contract_key_round_trip_and_errors() -> None:
    key = ContractKey.parse("b2mml/ProductionSchedule/V0600")

    assert key == ContractKey("b2mml", "ProductionSchedule", "V0600")
    assert str(key) == "b2mml/ProductionSchedule/V0600"
    assert ContractKey("a", "b", "1") < ContractKey("a", "b", "2")
    with pytest.raises(UnknownContract, match="not a contract key"):
        ContractKey.parse("sap-idoc/LOIPRO01")


def test_get_suggests_the_nearest_key_on_a_typo(registry: ContractRegistry) -> None:
    assert str(registry.get("sap-idoc/LOIPRO01/1").key) == "sap-idoc/LOIPRO01/1"
    assert registry.get(ContractKey("tulip", "workorder", "1")).format == "json"

    with pytest.raises(UnknownContract) as caught:
        registry.get("sap-idoc/LOIPR001/1")

    assert "no contract sap-idoc/LOIPR001/1; did you mean sap-idoc/LOIPRO01/1?" in str(caught.value)


def test_unknown_manifest_key_names_file_key_and_hint(write_contract: ContractWriter) -> None:
    manifest = XML_MANIFEST.replace('description = "test"', 'descripton = "test"')
    base = write_contract("acme", "Doc", "1", manifest, schema=SIMPLE_XSD)

    with pytest.raises(ConfigurationError) as caught:
        ContractRegistry.load([base])

    text = str(caught.value)
    assert text.startswith(str(base / "acme" / "Doc" / "1" / "contract.toml") + ": ")
    assert "key descripton is unknown; did you mean description?" in text
    assert "(known: family, type, version, format, schema, description," in text


def test_unknown_top_level_key_gets_a_hint(write_contract: ContractWriter) -> None:
    manifest = XML_MANIFEST.replace('description = "test"', 'description = "test"\nschemas = "x"')
    base = write_contract("acme", "Doc", "1", manifest, schema=SIMPLE_XSD)

    with pytest.raises(ConfigurationError, match=r"key schemas is unknown; did you mean schema\?"):
        ContractRegistry.load([base])


def test_unknown_identify_key_gets_a_hint(write_contract: ContractWriter) -> None:
    manifest = XML_MANIFEST.replace('root = ["Doc"]', 'roots = ["Doc"]')
    base = write_contract("acme", "Doc", "1", manifest, schema=SIMPLE_XSD)

    with pytest.raises(
        ConfigurationError, match=r"key identify.roots is unknown; did you mean identify.root\?"
    ):
        ContractRegistry.load([base])


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (
            XML_MANIFEST.replace('format = "xml"', 'format = "yaml"'),
            "format = 'yaml' is not supported",
        ),
        (XML_MANIFEST.replace('schema = "schema.xsd"', 'schema = "missing.xsd"'), "not a file"),
        (XML_MANIFEST.replace('description = "test"\n', ""), "key description is missing"),
        (XML_MANIFEST.replace('root = ["Doc"]', 'root = ["Doc"]\nidoctyp = ["X"]'), "mixes"),
        (XML_MANIFEST.replace('root = ["Doc"]', "root = []"), "must not be empty"),
        (XML_MANIFEST.replace('root = ["Doc"]', 'root = "Doc"'), "must be an array of strings"),
        (XML_MANIFEST.replace('namespace = ""', 'fields = { a = "1" }'), "mixes"),
        (XML_MANIFEST + '[[require_any]]\nelement = "X"\n', "children is missing"),
        (XML_MANIFEST.replace('format = "xml"', 'format = "json"'), "has XML root keys but"),
    ],
)
def test_bad_manifests_are_refused(
    write_contract: ContractWriter, manifest: str, message: str
) -> None:
    base = write_contract("acme", "Doc", "1", manifest, schema=SIMPLE_XSD)

    with pytest.raises(ConfigurationError, match=message):
        ContractRegistry.load([base])


def test_idoc_rule_with_any_cimtyp_among_names_is_refused(write_contract: ContractWriter) -> None:
    base = write_contract(
        "sap-idoc",
        "XYZ01",
        "1",
        """
        format = "xml"
        schema = "schema.xsd"
        description = "test"
        [identify]
        idoctyp = ["XYZ01"]
        cimtyp = ["*", "ZXYZ01"]
        """,
        schema=SIMPLE_XSD,
    )

    with pytest.raises(
        ConfigurationError, match=r"identify.cimtyp: '\*' \(any value\) must stand alone"
    ):
        ContractRegistry.load([base])


def test_manifest_must_match_its_directory(write_contract: ContractWriter) -> None:
    base = write_contract(
        "acme",
        "Doc",
        "2",
        XML_MANIFEST,
        schema=SIMPLE_XSD,
        header='family = "acme"\ntype = "Doc"\nversion = "1"\n',
    )

    with pytest.raises(ConfigurationError, match="declares acme/Doc/1 but lives in acme/Doc/2"):
        ContractRegistry.load([base])


def test_manifest_at_the_wrong_depth_is_refused(tmp_path: Path) -> None:
    (tmp_path / "acme" / "Doc").mkdir(parents=True)
    (tmp_path / "acme" / "Doc" / "contract.toml").write_text('family = "acme"\n')

    with pytest.raises(ConfigurationError, match=r"<family>/<type>/<version>/contract\.toml"):
        ContractRegistry.load([tmp_path])


def test_missing_extra_directory_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        ContractRegistry.load([tmp_path / "nowhere"])


def test_invalid_toml_is_refused(write_contract: ContractWriter) -> None:
    base = write_contract("acme", "Doc", "1", "format = ", schema=SIMPLE_XSD)

    with pytest.raises(ConfigurationError, match="not valid TOML"):
        ContractRegistry.load([base])


def test_the_same_key_twice_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "sap-idoc" / "LOIPRO01" / "1"
    shutil.copytree(LOIPRO01_DIR, copy)

    with pytest.raises(ConfigurationError) as caught:
        ContractRegistry.load([tmp_path])

    text = str(caught.value)
    assert "contract sap-idoc/LOIPRO01/1 is defined twice" in text
    assert str(copy / "contract.toml") in text


def test_ambiguous_idoc_contracts_are_refused_naming_both(tmp_path: Path) -> None:
    # A copy of LOIPRO01/1 as version 2 matches exactly the same messages.
    copy = tmp_path / "sap-idoc" / "LOIPRO01" / "2"
    shutil.copytree(LOIPRO01_DIR, copy)
    manifest = copy / "contract.toml"
    manifest.write_text(manifest.read_text().replace('version = "1"', 'version = "2"'))

    with pytest.raises(ConfigurationError) as caught:
        ContractRegistry.load([tmp_path])

    text = str(caught.value)
    assert "contracts sap-idoc/LOIPRO01/1" in text
    assert "and sap-idoc/LOIPRO01/2" in text
    assert str(manifest) in text
    assert "equal specificity" in text


def test_overlapping_lists_are_ambiguous_too(write_contract: ContractWriter) -> None:
    for version, idoctyp in (("1", '["ABC01", "ABC02"]'), ("2", '["ABC02", "ABC03"]')):
        base = write_contract(
            "sap-idoc",
            "ABC",
            version,
            f"""
            format = "xml"
            schema = "schema.xsd"
            description = "test"
            [identify]
            idoctyp = {idoctyp}
            """,
            schema=SIMPLE_XSD,
        )

    with pytest.raises(ConfigurationError, match=r"sap-idoc/ABC/1 .* and sap-idoc/ABC/2"):
        ContractRegistry.load([base])


def test_disjoint_rules_are_not_ambiguous(write_contract: ContractWriter) -> None:
    for version, cimtyp in (("1", '["ZABC01"]'), ("2", '["ZABC02"]')):
        base = write_contract(
            "sap-idoc",
            "ABC",
            version,
            f"""
            format = "xml"
            schema = "schema.xsd"
            description = "test"
            [identify]
            idoctyp = ["ABC01"]
            cimtyp = {cimtyp}
            """,
            schema=SIMPLE_XSD,
        )

    loaded = {str(c.key) for c in ContractRegistry.load([base])}
    assert {"sap-idoc/ABC/1", "sap-idoc/ABC/2"} <= loaded
    assert loaded - {"sap-idoc/ABC/1", "sap-idoc/ABC/2"} == {
        str(c.key) for c in ContractRegistry.load()
    }


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ('namespace = "urn:a"\nroot = ["Doc"]', 'namespace = "urn:a"\nroot = ["Doc", "Other"]'),
        ('fields = { event = "x" }', 'fields = { kind = "y" }'),
    ],
)
def test_ambiguous_root_and_json_rules(
    write_contract: ContractWriter, first: str, second: str
) -> None:
    fmt = "json" if "fields" in first else "xml"
    schema_name = "schema.json" if fmt == "json" else "schema.xsd"
    schema = "{}" if fmt == "json" else SIMPLE_XSD
    for version, rule in (("1", first), ("2", second)):
        base = write_contract(
            "acme",
            "Doc",
            version,
            f'format = "{fmt}"\nschema = "{schema_name}"\ndescription = "t"\n[identify]\n{rule}\n',
            schema_name=schema_name,
            schema=schema,
        )

    with pytest.raises(
        ConfigurationError, match=r"acme/Doc/1 .* and acme/Doc/2 .*equal specificity"
    ):
        ContractRegistry.load([base])


def test_schema_that_does_not_compile_fails_check(write_contract: ContractWriter) -> None:
    base = write_contract(
        "acme",
        "Doc",
        "1",
        XML_MANIFEST,
        schema="""\
            <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
              <xs:element name="Doc" type="NoSuchType"/>
            </xs:schema>
        """,
    )
    registry = ContractRegistry.load([base])

    with pytest.raises(ConfigurationError) as caught:
        registry.check()

    text = str(caught.value)
    assert "1 contract(s) cannot be used" in text
    assert "acme/Doc/1" in text
    assert "does not compile" in text
    assert "NoSuchType" in text


def test_ambiguous_content_model_fails_check(write_contract: ContractWriter) -> None:
    # The trap the LOIPRO design avoids: an optional known element followed by a wildcard.
    base = write_contract(
        "acme",
        "Doc",
        "1",
        XML_MANIFEST,
        schema="""\
            <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
              <xs:element name="Doc"><xs:complexType><xs:sequence>
                <xs:element name="A" type="xs:string" minOccurs="0"/>
                <xs:any namespace="##local" processContents="lax"
                        minOccurs="0" maxOccurs="unbounded"/>
              </xs:sequence></xs:complexType></xs:element>
            </xs:schema>
        """,
    )

    with pytest.raises(ConfigurationError, match="not determinist"):
        ContractRegistry.load([base]).check()


def test_schema_that_is_not_xml_fails_check(write_contract: ContractWriter) -> None:
    base = write_contract("acme", "Doc", "1", XML_MANIFEST, schema="<xs:schema")

    with pytest.raises(ConfigurationError, match="not well-formed"):
        ContractRegistry.load([base]).check()


def test_include_outside_the_contract_directory_is_refused(
    write_contract: ContractWriter, tmp_path: Path
) -> None:
    (tmp_path / "elsewhere.xsd").write_text(SIMPLE_XSD)
    base = write_contract(
        "acme",
        "Doc",
        "1",
        XML_MANIFEST,
        schema="""\
            <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
              <xs:include schemaLocation="../../../../elsewhere.xsd"/>
            </xs:schema>
        """,
    )

    with pytest.raises(ConfigurationError, match="is not a file inside"):
        ContractRegistry.load([base]).check()


def test_remote_import_is_refused_without_network(
    write_contract: ContractWriter, no_network: list[object]
) -> None:
    base = write_contract(
        "acme",
        "Doc",
        "1",
        XML_MANIFEST,
        schema="""\
            <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
              <xs:import namespace="urn:x" schemaLocation="http://schemas.example.com/x.xsd"/>
            </xs:schema>
        """,
    )

    with pytest.raises(ConfigurationError, match="never fetched from the network"):
        ContractRegistry.load([base]).check()
    assert no_network == []


def test_include_inside_the_contract_directory_works(write_contract: ContractWriter) -> None:
    base = write_contract(
        "acme",
        "Doc",
        "1",
        XML_MANIFEST,
        schema="""\
            <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
              <xs:include schemaLocation="types/part.xsd"/>
              <xs:element name="Doc" type="Short"/>
            </xs:schema>
        """,
    )
    types = base / "acme" / "Doc" / "1" / "types"
    types.mkdir()
    (types / "part.xsd").write_text(
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"><xs:simpleType name="Short">'
        '<xs:restriction base="xs:string"><xs:maxLength value="2"/></xs:restriction>'
        "</xs:simpleType></xs:schema>"
    )
    registry = ContractRegistry.load([base])
    registry.check()
    from .conftest import parse_xml

    contract = registry.get("acme/Doc/1")
    assert contract.validate_xml(parse_xml("<Doc>ab</Doc>")) == []
    (finding,) = contract.validate_xml(parse_xml("<Doc>abc</Doc>"))
    assert finding.expected == "at most 2 characters"
    assert finding.value == "abc"


def test_xml_contract_refuses_json_and_back(registry: ContractRegistry) -> None:
    with pytest.raises(ConfigurationError, match="is for XML"):
        registry.get("sap-idoc/LOIPRO01/1").validate_json({})
    from .conftest import parse_xml

    with pytest.raises(ConfigurationError, match="is for JSON"):
        registry.get("tulip/workorder/1").validate_xml(parse_xml("<x/>"))


def test_official_schema_missing_from_the_bundle_is_refused(tmp_path: Path) -> None:
    bundle = tmp_path / "b2mml"
    (bundle / "V0600").mkdir(parents=True)

    with pytest.raises(ConfigurationError, match=r"official_schema .* is not in the official"):
        ContractRegistry.load(official_b2mml_dir=bundle)


def test_official_directory_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        ContractRegistry.load(official_b2mml_dir=tmp_path / "nowhere")
