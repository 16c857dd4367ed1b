"""Golden files: the exact schedule documents written for the named orders of ``CASES``.

The expected documents are under tests/fixtures/b2mml/ProductionSchedule/V0600/valid/
and tests/fixtures/b2mml/OperationsSchedule/V7/valid/, one per case, compared as
canonical XML (C14N), so only content counts, not indentation.

To change them on purpose (after a deliberate mapping change):

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/b2mml -k golden

rewrites the files and fails each rewritten case, so an update can never pass
unnoticed; review ``git diff tests/fixtures/b2mml`` and run again without it.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest
from lxml import etree

from tests.b2mml.b2mml_factory import CASES, CREATED_AT, GOLDEN_DIRS
from transforms.b2mml_schedule import B2mmlVersion, to_pasx_schedule
from transforms.mapping import MappingProfile

VERSIONS: tuple[B2mmlVersion, ...] = ("V0600", "V7")


def _update_requested() -> bool:
    return os.environ.get("UPDATE_GOLDEN", "") not in {"", "0"}


def _golden_path(version: str, case: str) -> Path:
    return GOLDEN_DIRS[version] / "valid" / f"{case}.xml"


def _pretty(element: etree._Element) -> str:
    return etree.tostring(element, pretty_print=True, encoding="unicode")


def _read_golden(path: Path) -> etree._Element:
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True)
    return etree.parse(str(path), parser).getroot()


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_document(case: str, version: B2mmlVersion, profile: MappingProfile) -> None:
    produced = to_pasx_schedule(CASES[case](), profile, created_at=CREATED_AT, version=version)
    path = _golden_path(version, case)
    if _update_requested():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(
            etree.tostring(produced, pretty_print=True, xml_declaration=True, encoding="UTF-8")
        )
        pytest.fail(f"UPDATE_GOLDEN: rewrote {path}; review the diff, then run without it")
    assert path.is_file(), f"missing golden file {path} (create it with UPDATE_GOLDEN=1)"
    expected = _read_golden(path)
    if etree.tostring(produced, method="c14n") != etree.tostring(expected, method="c14n"):
        diff = "\n".join(
            difflib.unified_diff(
                _pretty(expected).splitlines(),
                _pretty(produced).splitlines(),
                fromfile=str(path),
                tofile="produced",
                lineterm="",
            )
        )
        pytest.fail(f"{version} {case} differs from its golden file:\n{diff}")


def test_every_golden_file_has_a_case() -> None:
    """A golden file without a case would never be compared: stale fixtures are an error."""
    for version in VERSIONS:
        on_disk = {path.stem for path in (GOLDEN_DIRS[version] / "valid").glob("*.xml")}
        assert on_disk == set(CASES), f"{version}: golden files and CASES disagree"


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_file_is_valid_under_the_profile(
    case: str, version: str, profile_schemas: dict[str, etree.XMLSchema]
) -> None:
    schema = profile_schemas[version]
    document = _read_golden(_golden_path(version, case))
    assert schema.validate(document), str(schema.error_log)


@pytest.mark.official_b2mml
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_golden_file_is_valid_under_the_official_schema(
    case: str, version: str, official_schemas: dict[str, etree.XMLSchema]
) -> None:
    schema = official_schemas[version]
    document = _read_golden(_golden_path(version, case))
    assert schema.validate(document), str(schema.error_log)
