"""``mesbridge contracts check OLD NEW``: is NEW backward-compatible with OLD?

Backward-compatible, as in a schema registry's BACKWARD mode: every message valid under OLD
is still valid under NEW, so a sender that keeps sending what it sent before is not broken
by the upgrade. A change is *breaking* when it can reject such a message: an element or
property removed, something newly required (minOccurs 0 → 1, a new required element or
property, a new required key field or ``require_any`` rule), a type narrowed (maxLength,
maxInclusive, totalDigits reduced, a pattern added or changed, enumeration values removed,
a narrower base type), a cardinality reduced (maxOccurs lowered), a wildcard removed or made
stricter, ``additionalProperties`` true → false. Additions of optional things and widenings
are *compatible*. What the comparison cannot prove compatible counts as breaking.

OLD and NEW are each a contract directory (with ``contract.toml``), a ``contract.toml``, a
schema file (``.xsd`` or ``.json``) or a loaded ``Contract``. XSD is walked with xmlschema
(tooling, not the per-message path): global element declarations, their content models and
simple types, and the required fields that identity constraints enforce; JSON Schema is
walked keyword by keyword. Every change names its exact path.

Failure modes: ``ConfigurationError`` when a side cannot be read or compiled, or when OLD
and NEW are of different formats.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from contracts.compat_json import compare_json_schemas
from contracts.compat_xsd import compare_xsd
from contracts.contract import Contract
from contracts.errors import ConfigurationError
from contracts.manifest import MANIFEST_NAME, RequireAny, read_manifest

__all__ = ["Change", "ChangeKind", "CompatibilityReport", "check_compatibility"]

ChangeKind = Literal["breaking", "compatible"]


@dataclass(frozen=True, slots=True, order=True)
class Change:
    """One difference between OLD and NEW, at an exact path."""

    kind: ChangeKind
    path: str
    description: str

    def __str__(self) -> str:
        return f"{self.kind.upper():10} {self.path}: {self.description}"


@dataclass(frozen=True, slots=True)
class CompatibilityReport:
    old: str
    new: str
    changes: tuple[Change, ...] = field(default_factory=tuple)

    @property
    def breaking(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind == "breaking")

    @property
    def compatible(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if c.kind == "compatible")

    @property
    def is_compatible(self) -> bool:
        return not self.breaking

    def render(self) -> str:
        verdict = (
            "backward-compatible"
            if self.is_compatible
            else f"NOT backward-compatible ({len(self.breaking)} breaking change(s))"
        )
        lines = [f"{self.new} against {self.old}: {verdict}"]
        lines += [f"  {change}" for change in self.breaking + self.compatible]
        if not self.changes:
            lines.append("  no differences in what the schemas accept")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Side:
    label: str
    format: Literal["xml", "json"]
    schema_path: Path
    require_any: tuple[RequireAny, ...]


def check_compatibility(old: Contract | Path, new: Contract | Path) -> CompatibilityReport:
    """Compare two contract versions (or schema files) and list every change, classified."""
    before, after = _side(old), _side(new)
    if before.format != after.format:
        raise ConfigurationError(
            f"cannot compare {before.label} ({before.format}) with {after.label} ({after.format})"
        )
    changes: list[Change] = []
    if before.format == "xml":
        raw = compare_xsd(before.schema_path, after.schema_path)
        raw += _compare_require_any(before.require_any, after.require_any)
    else:
        raw = compare_json_schemas(before.schema_path, after.schema_path)
    changes = sorted({Change(kind, path, text) for kind, path, text in raw})
    return CompatibilityReport(old=before.label, new=after.label, changes=tuple(changes))


def _side(value: Contract | Path) -> _Side:
    if isinstance(value, Contract):
        return _Side(str(value.key), value.format, value.schema_path, value.require_any)
    path = value
    if path.is_dir():
        path = path / MANIFEST_NAME
    if path.name == MANIFEST_NAME:
        manifest = read_manifest(path)
        label = f"{manifest.family}/{manifest.type}/{manifest.version}"
        schema = manifest.directory / manifest.schema
        return _Side(label, manifest.format, schema, manifest.require_any)
    if not path.is_file():
        raise ConfigurationError(f"{path}: no such contract directory or schema file")
    suffix = path.suffix.lower()
    if suffix == ".xsd":
        return _Side(str(path), "xml", path, ())
    if suffix == ".json":
        return _Side(str(path), "json", path, ())
    raise ConfigurationError(
        f"{path}: expected a contract directory, a {MANIFEST_NAME}, an .xsd or a .json schema"
    )


def _compare_require_any(
    old: Iterable[RequireAny], new: Iterable[RequireAny]
) -> list[tuple[ChangeKind, str, str]]:
    before = {rule.element: frozenset(rule.children) for rule in old}
    after = {rule.element: frozenset(rule.children) for rule in new}
    changes: list[tuple[ChangeKind, str, str]] = []
    for element in sorted(before.keys() | after.keys()):
        path = f"//{element}"
        was, now = before.get(element), after.get(element)
        if was == now:
            continue
        if was is None:
            changes.append(("breaking", path, f"newly requires one of {_names(now)}"))
        elif now is None:
            changes.append(("compatible", path, f"no longer requires one of {_names(was)}"))
        elif now < was:
            changes.append(
                ("breaking", path, f"requires one of {_names(now)}, was one of {_names(was)}")
            )
        elif now > was:
            changes.append(
                ("compatible", path, f"accepts one of {_names(now)}, was one of {_names(was)}")
            )
        else:
            changes.append(
                ("breaking", path, f"requires one of {_names(now)}, was one of {_names(was)}")
            )
    return changes


def _names(names: frozenset[str] | None) -> str:
    return ", ".join(sorted(names or ()))
