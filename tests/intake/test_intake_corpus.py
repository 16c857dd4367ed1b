"""The hostile corpus: every file in fixtures/hostile/refused/ is refused as expected.toml says,
with the expected class, phrase and line; every file in accepted/ passes."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest

from contracts import errors
from integration.intake import JsonMessage, XmlMessage, read_json, read_message, read_xml

HOSTILE = Path(__file__).resolve().parent.parent / "fixtures" / "hostile"
REFUSED = HOSTILE / "refused"
ACCEPTED = HOSTILE / "accepted"


def _expectations() -> dict[str, dict[str, Any]]:
    with (HOSTILE / "expected.toml").open("rb") as handle:
        return tomllib.load(handle)


EXPECTED = _expectations()


def test_every_refused_file_has_an_expectation_and_every_expectation_a_file() -> None:
    files = {path.name for path in REFUSED.iterdir() if path.is_file()}
    assert files == set(EXPECTED)
    assert len(files) >= 30


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_refused(name: str) -> None:
    expected = EXPECTED[name]
    error_class = getattr(errors, expected["error"])
    data = (REFUSED / name).read_bytes()
    with pytest.raises(errors.UnusableInput) as caught:
        read_message(data, source=f"hostile/{name}")
    exc = caught.value
    assert type(exc) is error_class, f"{name}: {type(exc).__name__}: {exc}"
    assert expected["phrase"] in str(exc)
    assert exc.message_ref == f"hostile/{name}"
    assert str(exc).startswith(f"hostile/{name}: ")
    assert exc.findings, "an analyst needs at least one finding: where, what, expected"
    if "line" in expected:
        assert expected["line"] in [finding.line for finding in exc.findings], str(exc)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_refused_by_the_format_specific_reader_too(name: str) -> None:
    """read_xml / read_json refuse the same files (except the one that is neither format)."""
    if name == "not-xml-or-json.xml":
        with pytest.raises(errors.MalformedInput, match="does not start with '<'"):
            read_xml((REFUSED / name).read_bytes(), source=name)
        return
    reader = read_json if name.endswith(".json") else read_xml
    error_class = getattr(errors, EXPECTED[name]["error"])
    with pytest.raises(error_class):
        reader((REFUSED / name).read_bytes(), source=name)


@pytest.mark.parametrize("path", sorted(ACCEPTED.iterdir()), ids=lambda path: path.name)
def test_accepted(path: Path) -> None:
    data = path.read_bytes()
    message = read_message(data, source=path.name)
    expected_type = JsonMessage if path.suffix == ".json" else XmlMessage
    assert type(message) is expected_type
    assert message.raw is data
    assert message.source == path.name
