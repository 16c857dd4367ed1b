"""Compatibility of two JSON Schemas, keyword by keyword (see ``contracts.compat`` for the rules).

Paths are instance paths: ``$`` the document, ``$.id`` a property, ``$.lines[*]`` the items
of an array, ``$.*`` the additional properties, ``$.(property names)`` the names. Local
``$ref`` (``#/$defs/...``) are followed on both sides; a keyword this walker does not analyse
counts as breaking when it changes, since it cannot be proven compatible.

Failure modes: ``ConfigurationError`` for an unreadable or invalid schema file, and for a
``$ref`` that is not local to the document.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from contracts.errors import ConfigurationError

__all__ = ["compare_json_schemas"]

_Kind = Literal["breaking", "compatible"]
_Raw = tuple[_Kind, str, str]

_UPPER = ("maxLength", "maxItems", "maxProperties", "maximum", "exclusiveMaximum")
_LOWER = ("minLength", "minItems", "minProperties", "minimum", "exclusiveMinimum")
_HANDLED = frozenset(
    {
        "type",
        "properties",
        "required",
        "enum",
        "const",
        "pattern",
        "items",
        "additionalProperties",
        "propertyNames",
        "uniqueItems",
        "$ref",
        *_UPPER,
        *_LOWER,
    }
)
# Keywords that do not change what validates.
_ANNOTATIONS = frozenset(
    {
        "$schema",
        "$id",
        "$comment",
        "$defs",
        "definitions",
        "title",
        "description",
        "examples",
        "default",
        "deprecated",
        "readOnly",
        "writeOnly",
        "format",  # an annotation unless format assertion is switched on, which mesbridge does not
    }
)


def _load(path: Path) -> Any:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot read the JSON Schema: {exc}") from exc
    if not isinstance(data, dict | bool):
        raise ConfigurationError(f"{path}: a JSON Schema must be an object or a boolean")
    return data


def compare_json_schemas(old_path: Path, new_path: Path) -> list[_Raw]:
    walker = _Walker(_load(old_path), _load(new_path))
    walker.compare(walker.old_root, walker.new_root, "$")
    return walker.changes


class _Walker:
    def __init__(self, old_root: Any, new_root: Any) -> None:
        self.old_root = old_root
        self.new_root = new_root
        self.changes: list[_Raw] = []
        self._branch: set[tuple[int, int]] = set()

    def add(self, kind: _Kind, path: str, text: str) -> None:
        self.changes.append((kind, path, text))

    def compare(self, old: Any, new: Any, path: str) -> None:
        # Identity of the nodes as written in the documents (stable, unlike merged $ref views).
        marker = (id(old), id(new))
        old = self._deref(old, self.old_root)
        new = self._deref(new, self.new_root)
        if marker in self._branch:
            return  # a recursive $ref: this pair is already being compared higher up
        self._branch.add(marker)
        try:
            self._compare(old, new, path)
        finally:
            self._branch.discard(marker)

    def _compare(self, old: Any, new: Any, path: str) -> None:
        if isinstance(old, bool) or isinstance(new, bool):
            self._booleans(old, new, path)
            return
        self._types(old.get("type"), new.get("type"), path)
        self._properties(old, new, path)
        self._required(old, new, path)
        self._values(old, new, path)
        for name in _UPPER:
            self._bound(name, old.get(name), new.get(name), path, upper=True)
        for name in _LOWER:
            self._bound(name, old.get(name), new.get(name), path, upper=False)
        self._pattern(old.get("pattern"), new.get("pattern"), path)
        if "items" in old or "items" in new:
            self.compare(old.get("items", True), new.get("items", True), f"{path}[*]")
        self._additional(old, new, path)
        if "propertyNames" in old or "propertyNames" in new:
            self.compare(
                old.get("propertyNames", True),
                new.get("propertyNames", True),
                f"{path}.(property names)",
            )
        if new.get("uniqueItems") and not old.get("uniqueItems"):
            self.add("breaking", path, "uniqueItems added")
        elif old.get("uniqueItems") and not new.get("uniqueItems"):
            self.add("compatible", path, "uniqueItems removed")
        for keyword in sorted((old.keys() | new.keys()) - _HANDLED - _ANNOTATIONS):
            if old.get(keyword) != new.get(keyword):
                self.add(
                    "breaking",
                    path,
                    f"{keyword} changed (not analysed; cannot be proven compatible)",
                )

    def _deref(self, node: Any, root: Any) -> Any:
        hops = 0
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if not ref.startswith("#"):
                raise ConfigurationError(f"$ref {ref!r} is not local to the schema document")
            siblings = {k: v for k, v in node.items() if k != "$ref"}
            target = _pointer(root, ref[1:])
            if set(siblings) - _ANNOTATIONS:
                # $ref with sibling assertions: both apply; merge for the comparison.
                node = {**target, **siblings} if isinstance(target, dict) else target
            else:
                node = target
            hops += 1
            if hops > 50:
                raise ConfigurationError(f"$ref {ref!r} loops")
        return node

    def _booleans(self, old: Any, new: Any, path: str) -> None:
        if old == new:
            return
        if new is False:
            self.add("breaking", path, "now rejects every value (schema false)")
        elif old is False:
            self.add("compatible", path, "now allows values (was schema false)")
        else:
            # true is the empty schema: compare it as {} so every added constraint shows.
            self.compare({} if old is True else old, {} if new is True else new, path)

    def _types(self, old: Any, new: Any, path: str) -> None:
        if old == new:
            return
        before, after = _type_set(old), _type_set(new)
        if after is None:
            self.add("compatible", path, f"type {_show_types(before)} removed (any type)")
            return
        if before is None:
            self.add("breaking", path, f"type {_show_types(after)} added (was: any type)")
            return
        lost = {t for t in before if not (t in after or (t == "integer" and "number" in after))}
        gained = after - before
        if lost:
            self.add("breaking", path, f"type narrowed: {', '.join(sorted(lost))} no longer valid")
        if gained:
            self.add("compatible", path, f"type widened: {', '.join(sorted(gained))} now valid")

    def _properties(self, old: Any, new: Any, path: str) -> None:
        before = old.get("properties", {}) or {}
        after = new.get("properties", {}) or {}
        required_after = set(new.get("required", []) or [])
        for name in sorted(before.keys() - after.keys()):
            self.add("breaking", f"{path}.{name}", "property removed")
        for name in sorted(after.keys() - before.keys()):
            if name in required_after:
                self.add("breaking", f"{path}.{name}", "new required property")
            else:
                self.add("compatible", f"{path}.{name}", "new optional property")
        for name in sorted(before.keys() & after.keys()):
            self.compare(before[name], after[name], f"{path}.{name}")

    def _required(self, old: Any, new: Any, path: str) -> None:
        before = set(old.get("required", []) or [])
        after = set(new.get("required", []) or [])
        new_properties = (new.get("properties", {}) or {}).keys()
        old_properties = (old.get("properties", {}) or {}).keys()
        for name in sorted(after - before):
            if name in new_properties and name not in old_properties:
                continue  # reported as "new required property"
            self.add("breaking", f"{path}.{name}", "property is now required")
        for name in sorted(before - after):
            self.add("compatible", f"{path}.{name}", "property no longer required")

    def _values(self, old: Any, new: Any, path: str) -> None:
        before = _allowed(old)
        after = _allowed(new)
        if before == after:
            return
        if after is None:
            self.add("compatible", path, "enum/const removed (any value of the type)")
            return
        if before is None:
            self.add("breaking", path, f"enum/const added: {', '.join(sorted(after))}")
            return
        if before - after:
            self.add(
                "breaking", path, f"values no longer allowed: {', '.join(sorted(before - after))}"
            )
        if after - before:
            self.add("compatible", path, f"values now allowed: {', '.join(sorted(after - before))}")

    def _bound(self, name: str, old: Any, new: Any, path: str, *, upper: bool) -> None:
        if old == new:
            return
        if new is None:
            self.add("compatible", path, f"{name} {old} removed")
        elif old is None:
            self.add("breaking", path, f"{name} {new} added")
        else:
            narrower = new < old if upper else new > old
            self.add("breaking" if narrower else "compatible", path, f"{name} {old} → {new}")

    def _pattern(self, old: Any, new: Any, path: str) -> None:
        if old == new:
            return
        if new is None:
            self.add("compatible", path, f"pattern {old} removed")
        elif old is None:
            self.add("breaking", path, f"pattern {new} added")
        else:
            self.add("breaking", path, f"pattern {old} → {new}")

    def _additional(self, old: Any, new: Any, path: str) -> None:
        before = old.get("additionalProperties", True)
        after = new.get("additionalProperties", True)
        if before is not False and after is False:
            self.add("breaking", f"{path}.*", "additionalProperties true → false")
        elif before is False and after is not False:
            self.add("compatible", f"{path}.*", "additionalProperties false → allowed")
        elif before is not False and after is not False:
            self.compare(before, after, f"{path}.*")


def _pointer(root: Any, pointer: str) -> Any:
    node = root
    for raw in pointer.split("/")[1:] if pointer else []:
        part = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise ConfigurationError(f"$ref '#{pointer}' does not resolve in the schema")
    return node


def _type_set(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(value if isinstance(value, list) else [value])


def _show_types(types: frozenset[str] | None) -> str:
    return " | ".join(sorted(types or ()))


def _allowed(node: Any) -> frozenset[str] | None:
    if "const" in node:
        return frozenset({json.dumps(node["const"], sort_keys=True)})
    if "enum" in node:
        return frozenset(json.dumps(value, sort_keys=True) for value in node["enum"])
    return None
