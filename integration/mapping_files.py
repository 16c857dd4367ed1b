"""Load the mapping profile (units, plants, Tulip columns) from TOML, or the embedded one."""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from pathlib import Path

from contracts.errors import ConfigurationError
from transforms.mapping import MappingProfile

__all__ = ["EMBEDDED_MAPPING", "load_mapping_profile"]

EMBEDDED_MAPPING = "embedded mapping profile (integration/defaults/mapping.toml)"


def load_mapping_profile(path: Path | None = None) -> MappingProfile:
    """The site's profile from ``path``, or the embedded one; errors name the file and the key."""
    if path is None:
        text = resources.files("integration.defaults").joinpath("mapping.toml").read_text("utf-8")
        source = EMBEDDED_MAPPING
    else:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read mapping file {path}: {exc.strerror}") from exc
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message carries the line and column.
        raise ConfigurationError(f"{source} is not valid TOML: {exc}") from exc
    try:
        return MappingProfile.from_mapping(data, source=source)
    except ConfigurationError as exc:
        line = _line_of_error(str(exc), source, text)
        if line is None:
            raise
        raise ConfigurationError(f"{source}, line {line}: {str(exc)[len(source) + 2 :]}") from exc


# "<source>: plants.1000.timezone: ..." / "<source>: units[3]: ..." / "<source>: sap: 'client' ..."
_KEY = r"""[A-Za-z0-9_\-]+|"[^"]*"|'[^']*'"""
_HEADER = re.compile(rf"^\s*\[(\[)?\s*(?P<path>(?:{_KEY})(?:\s*\.\s*(?:{_KEY}))*)\s*\]")
_ASSIGNMENT = re.compile(rf"^\s*(?P<path>(?:{_KEY})(?:\s*\.\s*(?:{_KEY}))*)\s*=")
_QUOTED_KEY = re.compile(r"^(?:unknown key )?'(?P<key>[^']+)'")


def _dotted(path: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in re.findall(_KEY, path))


def _line_of_error(message: str, source: str, text: str) -> int | None:
    """The line of the TOML key a ``MappingProfile`` error names, when it can be found."""
    if not message.startswith(f"{source}: "):
        return None
    where, _, rest = message[len(source) + 2 :].partition(": ")
    target = list(_dotted(where.replace("[", ".").replace("]", "")))
    key = _QUOTED_KEY.match(rest)
    if key:
        target.append(key.group("key"))
    return _find(text, tuple(target))


def _find(text: str, target: tuple[str, ...]) -> int | None:
    """The first line defining ``target`` (or the closest enclosing table of it)."""
    table: tuple[str, ...] = ()
    arrays: dict[tuple[str, ...], int] = {}
    best: tuple[int, int] | None = None  # (matched length, line)
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _dotted(header.group("path"))
            if header.group(1):  # [[array]]: address its entries as array.1, array.2, ...
                arrays[table] = arrays.get(table, 0) + 1
                table = (*table, str(arrays[table]))
            path = table
        elif (assignment := _ASSIGNMENT.match(line)) is not None:
            path = (*table, *_dotted(assignment.group("path")))
        else:
            continue
        if path == target[: len(path)] and (best is None or len(path) > best[0]):
            best = (len(path), number)
    return best[1] if best else None
