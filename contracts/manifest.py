"""The contract manifest, ``contract.toml``: what a contract directory declares, checked key by key.

Format (docs/contracts.md has the full description)::

    family = "sap-idoc"          # and type, version: must equal the directory path
    type = "LOIPRO01"
    version = "1"
    format = "xml"               # xml (XSD 1.0) | json (JSON Schema)
    schema = "LOIPRO.xsd"        # relative to the directory
    description = "..."
    official_schema = ""         # optional: file in the official schema bundle (B2MML)
    validate_each = ""           # optional: validate each root child of this name (IDoc: "IDOC")
    [identify]                   # idoctyp/mestyp/cimtyp/sndprn | namespace/root/release_id | fields
    [[require_any]]              # optional co-constraint XSD 1.0 cannot express
    element = "E1AFKOL"
    children = ["MATNR", "MATNR_LONG"]

Failure modes: every problem is a ``ConfigurationError`` that names the file and the key; an
unknown key comes with the nearest known one (difflib), so a typo never falls back to a default.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from contracts.errors import ConfigurationError
from contracts.identify import IdentifyRule, IdocRule, JsonFieldsRule, JsonScalar, RootRule

__all__ = ["MANIFEST_NAME", "Manifest", "RequireAny", "read_manifest"]

MANIFEST_NAME = "contract.toml"

_TOP_KEYS = (
    "family",
    "type",
    "version",
    "format",
    "schema",
    "description",
    "official_schema",
    "validate_each",
    "identify",
    "require_any",
)
_IDOC_KEYS = ("idoctyp", "mestyp", "cimtyp", "sndprn")
_ROOT_KEYS = ("namespace", "root", "release_id")
_JSON_KEYS = ("fields",)
_REQUIRE_ANY_KEYS = ("element", "children")
_FORMATS = ("xml", "json")
_ANY = "*"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequireAny:
    """Every element named ``element`` must have at least one non-empty child among ``children``."""

    element: str
    children: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest:
    path: Path
    family: str
    type: str
    version: str
    format: Literal["xml", "json"]
    schema: str
    description: str
    official_schema: str
    validate_each: str
    identify: IdentifyRule | None
    require_any: tuple[RequireAny, ...]

    @property
    def directory(self) -> Path:
        return self.path.parent


def read_manifest(path: Path) -> Manifest:
    """Parse and check one ``contract.toml``; ``ConfigurationError`` names the file and key."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the contract manifest: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: the contract manifest is not valid TOML: {exc}") from exc
    table = _Table(data, path, "")
    table.only(_TOP_KEYS)
    fmt = table.text("format")
    if fmt not in _FORMATS:
        raise ConfigurationError(
            f"{path}: format = {fmt!r} is not supported; expected one of {', '.join(_FORMATS)}"
        )
    validate_each = table.text("validate_each", default="")
    if validate_each and fmt != "xml":
        raise ConfigurationError(f"{path}: validate_each applies to format = 'xml' only")
    return Manifest(
        path=path,
        family=table.name("family"),
        type=table.name("type"),
        version=table.name("version"),
        format="xml" if fmt == "xml" else "json",
        schema=table.text("schema"),
        description=table.text("description"),
        official_schema=table.text("official_schema", default=""),
        validate_each=validate_each,
        identify=_identify(table, fmt),
        require_any=_require_any(table, fmt),
    )


def _identify(table: _Table, fmt: str) -> IdentifyRule | None:
    if "identify" not in table.data:
        return None
    rules = table.sub("identify")
    rules.only(_IDOC_KEYS + _ROOT_KEYS + _JSON_KEYS)
    present = set(rules.data)
    kinds = [
        name
        for name, keys in (("IDoc", _IDOC_KEYS), ("XML root", _ROOT_KEYS), ("JSON", _JSON_KEYS))
        if present & set(keys)
    ]
    if not kinds:
        return None
    if len(kinds) > 1:
        raise ConfigurationError(
            f"{table.path}: [identify] mixes {' and '.join(kinds)} keys; use one kind of rule"
        )
    kind = kinds[0]
    wanted_format = "json" if kind == "JSON" else "xml"
    if fmt != wanted_format:
        raise ConfigurationError(f"{table.path}: [identify] has {kind} keys but format = {fmt!r}")
    if kind == "IDoc":
        cimtyp = rules.names("cimtyp", default=[""], allow_any=True, allow_empty=True)
        return IdocRule(
            idoctyp=rules.name_set("idoctyp"),
            mestyp=rules.optional_set("mestyp"),
            cimtyp=cimtyp,
            sndprn=rules.optional_set("sndprn"),
        )
    if kind == "XML root":
        return RootRule(
            namespace=rules.text("namespace", default=""),
            root=rules.name_set("root"),
            release_id=rules.optional_set("release_id"),
        )
    return JsonFieldsRule(fields=rules.scalars("fields"))


def _require_any(table: _Table, fmt: str) -> tuple[RequireAny, ...]:
    if "require_any" not in table.data:
        return ()
    entries = table.data["require_any"]
    if not isinstance(entries, list):
        raise ConfigurationError(f"{table.path}: require_any must be an array of tables")
    if fmt != "xml":
        raise ConfigurationError(f"{table.path}: require_any applies to format = 'xml' only")
    result = []
    for index, entry in enumerate(entries, start=1):
        if not isinstance(entry, Mapping):
            raise ConfigurationError(f"{table.path}: require_any[{index}] must be a table")
        rule = _Table(entry, table.path, f"require_any[{index}].")
        rule.only(_REQUIRE_ANY_KEYS)
        children = rule.name_set("children")
        result.append(RequireAny(element=rule.name("element"), children=tuple(sorted(children))))
    return tuple(result)


class _Table:
    """One TOML table of a manifest, with typed accessors that name the file and key on error."""

    def __init__(self, data: Mapping[str, Any], path: Path, prefix: str) -> None:
        self.data = data
        self.path = path
        self.prefix = prefix

    def _where(self, key: str) -> str:
        return f"{self.path}: key {self.prefix}{key!s}"

    def only(self, allowed: tuple[str, ...]) -> None:
        for key in self.data:
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                suggestion = f"; did you mean {self.prefix}{hint[0]}?" if hint else ""
                raise ConfigurationError(
                    f"{self._where(key)} is unknown{suggestion} "
                    f"(known: {', '.join(self.prefix + name for name in allowed)})"
                )

    def sub(self, key: str) -> _Table:
        value = self.data[key]
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{self._where(key)} must be a table ([{key}])")
        return _Table(value, self.path, f"{self.prefix}{key}.")

    def text(self, key: str, default: str | None = None) -> str:
        if key not in self.data:
            if default is None:
                raise ConfigurationError(f"{self._where(key)} is missing")
            return default
        value = self.data[key]
        if not isinstance(value, str):
            raise ConfigurationError(f"{self._where(key)} must be a string, found {value!r}")
        return value

    def name(self, key: str) -> str:
        value = self.text(key).strip()
        if not value or "/" in value or value in {".", ".."}:
            raise ConfigurationError(f"{self._where(key)} must be a non-empty name without '/'")
        return value

    def names(
        self, key: str, *, default: list[str], allow_any: bool = False, allow_empty: bool = False
    ) -> frozenset[str] | None:
        raw = self.data.get(key, default)
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise ConfigurationError(f"{self._where(key)} must be an array of strings")
        values = [item.strip() for item in raw]
        if not values:
            raise ConfigurationError(f"{self._where(key)} must not be empty")
        if _ANY in values:
            if not allow_any or len(values) > 1:
                raise ConfigurationError(
                    f"{self._where(key)}: {_ANY!r} (any value) "
                    + ("must stand alone" if allow_any else "is not allowed here")
                )
            return None
        if "" in values and not allow_empty:
            raise ConfigurationError(f"{self._where(key)} must not contain an empty string")
        return frozenset(values)

    def name_set(self, key: str) -> frozenset[str]:
        if key not in self.data:
            raise ConfigurationError(f"{self._where(key)} is missing")
        values = self.names(key, default=[])
        assert values is not None  # allow_any is False, so "*" raised above
        return values

    def optional_set(self, key: str) -> frozenset[str] | None:
        if key not in self.data:
            return None
        return self.names(key, default=[])

    def scalars(self, key: str) -> tuple[tuple[str, JsonScalar], ...]:
        value = self.data[key]
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{self._where(key)} must be a table of field = value")
        result: list[tuple[str, JsonScalar]] = []
        for name, wanted in sorted(value.items()):
            if not isinstance(wanted, str | int | float | bool):
                raise ConfigurationError(
                    f"{self._where(key)}.{name} must be a string, number or boolean"
                )
            result.append((name, wanted))
        return tuple(result)
