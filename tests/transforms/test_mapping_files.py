"""A site's mapping file: every mistake is reported with the line it is on."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.errors import ConfigurationError
from integration.mapping_files import load_mapping_profile

BASE = """version = "site-1"
default_timezone = "Europe/Berlin"

[plants.1000]
timezone = "Europe/Vienna"
issue_storage_location = "RM01"

[[units]]
sap = "KG"
iso = "KGM"
"""


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (("RM01", "RM001"), 6, "storage location (LGORT)"),
        (("Europe/Vienna", "Europe/Vienne"), 5, "IANA time zone"),
        (("", '[senders.PASX-1]\ntimzone = "Europe/Berlin"\n'), 13, "did you mean 'timezone'"),
        (("", '[sap]\nclient = ""\n'), 13, "'client' must be a non-empty string"),
        (("", '[[units]]\nsap = "G"\niso = 5\n'), 14, "units[2]: 'iso'"),
        (("", '[b2mml]\nsendr = "x"\n'), 13, "unknown key 'sendr'"),
    ],
)
def test_errors_point_at_the_line(
    tmp_path: Path, change: tuple[str, str], line: int, words: str
) -> None:
    old, new = change
    text = BASE.replace(old, new) if old else BASE + "\n" + new
    path = tmp_path / "mapping.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigurationError) as caught:
        load_mapping_profile(path)
    message = str(caught.value)
    assert message.startswith(f"{path}, line {line}: "), message
    assert words in message


def test_a_toml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text(BASE + "[plants\n", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"line 11, column"):
        load_mapping_profile(path)


def test_a_correct_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "mapping.toml"
    path.write_text(BASE, encoding="utf-8")
    profile = load_mapping_profile(path)
    assert profile.plant_storage["1000"].issue == "RM01"
