"""The interface-profile schemas and their manifests: self-contained, identifiable and tight.

Each file under tests/fixtures/b2mml/<type>/<version>/invalid/ opens with a comment
naming its defect, the error the profile must report (``profile-error:``) and
whether the official MESA schema accepts it (``official: valid|invalid``): the
``valid`` ones show where the profile is stricter than the official schema.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from lxml import etree

from tests.b2mml.b2mml_factory import (
    CREATED_AT,
    GOLDEN_DIRS,
    PROFILE_SCHEMAS,
    typical_order,
)
from transforms.b2mml_common import NS_V0600, NS_V7
from transforms.b2mml_schedule import production_schedule_v0600
from transforms.mapping import MappingProfile

XSD = "http://www.w3.org/2001/XMLSchema"
MANIFESTS = {
    "V0600": (PROFILE_SCHEMAS / "ProductionSchedule" / "V0600" / "contract.toml"),
    "V7": (PROFILE_SCHEMAS / "OperationsSchedule" / "V7" / "contract.toml"),
}
EXPECTED_MANIFESTS = {
    "V0600": {
        "family": "b2mml",
        "type": "ProductionSchedule",
        "version": "V0600",
        "format": "xml",
        "schema": "ProcessProductionSchedule.xsd",
        "official_schema": "V0600/B2MML-V0600-ProductionSchedule.xsd",
        "identify": {"namespace": NS_V0600, "root": ["ProcessProductionSchedule"]},
    },
    "V7": {
        "family": "b2mml",
        "type": "OperationsSchedule",
        "version": "V7",
        "format": "xml",
        "schema": "ProcessOperationsSchedule.xsd",
        "official_schema": "V7/B2MML-OperationsSchedule.xsd",
        "identify": {"namespace": NS_V7, "root": ["ProcessOperationsSchedule"]},
    },
}
_HEADER = re.compile(
    r"defect: (?P<defect>.+)\n\s*"
    r"profile-error: (?P<error>.+)\n\s*"
    r"official: (?P<official>valid|invalid)"
)


def _manifest(version: str) -> dict[str, object]:
    with MANIFESTS[version].open("rb") as handle:
        return tomllib.load(handle)


def _invalid_fixtures(version: str) -> list[Path]:
    return sorted((GOLDEN_DIRS[version] / "invalid").glob("*.xml"))


def _header(path: Path) -> re.Match[str]:
    document = etree.parse(str(path))
    comment = document.getroot().getprevious()
    assert comment is not None, f"{path.name}: no header comment"
    assert isinstance(comment, etree._Comment), f"{path.name}: no header comment"
    match = _HEADER.search(comment.text or "")
    assert match is not None, f"{path.name}: header comment lacks defect/profile-error/official"
    return match


INVALID_CASES = [
    (version, path) for version in ("V0600", "V7") for path in _invalid_fixtures(version)
]


@pytest.mark.parametrize("version", ["V0600", "V7"])
def test_manifest_declares_the_contract(version: str) -> None:
    manifest = _manifest(version)
    description = manifest.pop("description")
    assert isinstance(description, str)
    assert description.strip()
    assert manifest == EXPECTED_MANIFESTS[version]


@pytest.mark.parametrize("version", ["V0600", "V7"])
def test_profile_is_self_contained_and_in_the_official_namespace(version: str) -> None:
    manifest = _manifest(version)
    schema_path = MANIFESTS[version].parent / str(manifest["schema"])
    tree = etree.parse(str(schema_path))
    root = tree.getroot()
    identify = manifest["identify"]
    assert isinstance(identify, dict)
    assert root.get("targetNamespace") == identify["namespace"]
    # No import/include: MESA files are never copied or referenced by the project.
    assert (
        tree.xpath("//xsd:import | //xsd:include | //xsd:redefine", namespaces={"xsd": XSD}) == []
    )
    global_elements = [element.get("name") for element in root.findall(f"{{{XSD}}}element")]
    assert global_elements == identify["root"]
    etree.XMLSchema(tree)  # compiles with libxml2, as the registry will compile it


def test_there_are_invalid_fixtures_for_both_versions() -> None:
    assert len(_invalid_fixtures("V0600")) >= 5
    assert len(_invalid_fixtures("V7")) >= 5


@pytest.mark.parametrize(
    ("version", "path"), INVALID_CASES, ids=lambda value: getattr(value, "stem", value)
)
def test_invalid_fixture_fails_the_profile_with_the_expected_error(
    version: str, path: Path, profile_schemas: dict[str, etree.XMLSchema]
) -> None:
    header = _header(path)
    schema = profile_schemas[version]
    assert not schema.validate(etree.parse(str(path))), f"{path.name} passed the profile"
    log = str(schema.error_log)
    assert header["error"] in log, log


@pytest.mark.official_b2mml
@pytest.mark.parametrize(
    ("version", "path"), INVALID_CASES, ids=lambda value: getattr(value, "stem", value)
)
def test_official_verdict_on_invalid_fixture_is_as_documented(
    version: str, path: Path, official_schemas: dict[str, etree.XMLSchema]
) -> None:
    header = _header(path)
    valid = official_schemas[version].validate(etree.parse(str(path)))
    assert valid == (header["official"] == "valid"), str(official_schemas[version].error_log)


def _v0600_document_in_v7_namespace(
    profile: MappingProfile, *, rename_nouns: bool
) -> etree._Element:
    text = etree.tostring(
        production_schedule_v0600(typical_order(), profile, created_at=CREATED_AT).root,
        encoding="unicode",
    ).replace(f'xmlns="{NS_V0600}"', f'xmlns="{NS_V7}"')
    if rename_nouns:
        for old, new in (
            ("ProcessProductionSchedule", "ProcessOperationsSchedule"),
            ("ProductionSchedule", "OperationsSchedule"),
            ("ProductionRequest", "OperationsRequest"),
        ):
            text = re.sub(rf"<(/?){old}([ >/])", rf"<\g<1>{new}\g<2>", text)
    return etree.fromstring(text)


@pytest.mark.parametrize("rename_nouns", [False, True])
def test_v0600_shaped_document_in_the_v7_namespace_fails_the_v7_profile(
    rename_nouns: bool, profile: MappingProfile, profile_schemas: dict[str, etree.XMLSchema]
) -> None:
    document = _v0600_document_in_v7_namespace(profile, rename_nouns=rename_nouns)
    assert etree.QName(document).namespace == NS_V7
    assert not profile_schemas["V7"].validate(document)
    # The V0600 document itself is fine under its own profile: the version makes the difference.
    original = production_schedule_v0600(typical_order(), profile, created_at=CREATED_AT).root
    assert profile_schemas["V0600"].validate(original), str(profile_schemas["V0600"].error_log)


@pytest.mark.official_b2mml
@pytest.mark.parametrize("rename_nouns", [False, True])
def test_v0600_shaped_document_in_the_v7_namespace_fails_the_official_v7_schema(
    rename_nouns: bool, profile: MappingProfile, official_schemas: dict[str, etree.XMLSchema]
) -> None:
    document = _v0600_document_in_v7_namespace(profile, rename_nouns=rename_nouns)
    assert not official_schemas["V7"].validate(document)


@pytest.mark.parametrize("version", ["V0600", "V7"])
def test_xmlschema_reads_the_profile_as_libxml2_does(version: str) -> None:
    """Contract tooling (compatibility checks) uses xmlschema: it must agree with libxml2."""
    import xmlschema

    manifest = _manifest(version)
    schema = xmlschema.XMLSchema10(str(MANIFESTS[version].parent / str(manifest["schema"])))
    for path in sorted((GOLDEN_DIRS[version] / "valid").glob("*.xml")):
        schema.validate(str(path))
    accepted = [path.name for path in _invalid_fixtures(version) if schema.is_valid(str(path))]
    assert accepted == []
