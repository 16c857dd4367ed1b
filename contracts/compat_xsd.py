"""Compatibility of two XSD 1.0 schemas, walked with xmlschema (tooling only, never per message).

Each schema is flattened into *shapes* keyed by path: ``//NAME`` for a global element
declaration, ``//NAME/child/grandchild`` for elements declared inside its content model, and
``…/@attr`` for attributes. A shape records the effective occurrences (through nested
sequences and choices), the simple type's facets, the wildcard, and the fields identity
constraints make required. The two shape maps are then compared path by path; see
``contracts.compat`` for what counts as breaking.

Recursive types (B2MML nests segments) are walked once per path until a type repeats on the
current branch. Schema files are loaded with ``allow="sandbox"`` (no file outside the
schema's directory, no network) and ``defuse="always"``.

Failure modes: ``ConfigurationError`` when a schema cannot be read or built.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal

import xmlschema
from xmlschema.validators import XsdAnyElement, XsdElement, XsdGroup

from contracts.errors import ConfigurationError

__all__ = ["compare_xsd"]

_XSD = "{http://www.w3.org/2001/XMLSchema}"
_Kind = Literal["breaking", "compatible"]
_Raw = tuple[_Kind, str, str]
_STRICTNESS = {"skip": 0, "lax": 1, "strict": 2}
_UPPER = ("maxLength", "totalDigits", "fractionDigits")
_LOWER = ("minLength",)


@dataclass(slots=True)
class _Simple:
    builtin: str
    variety: str
    facets: dict[str, str] = field(default_factory=dict)
    patterns: tuple[tuple[str, ...], ...] = ()
    enumeration: frozenset[str] | None = None


@dataclass(slots=True)
class _Shape:
    min: int
    max: int | None
    is_global: bool = False
    simple: _Simple | None = None
    complex_content: bool = False
    wildcard: str | None = None
    any_attribute: bool = False
    required_fields: frozenset[str] = frozenset()
    constraints: frozenset[str] = frozenset()
    attribute: bool = False


def _load(path: Path) -> Any:
    try:
        return xmlschema.XMLSchema10(str(path.resolve()), allow="sandbox", defuse="always")
    except (xmlschema.XMLSchemaException, OSError) as exc:
        raise ConfigurationError(f"{path}: cannot load the schema for comparison: {exc}") from exc


def compare_xsd(old_path: Path, new_path: Path) -> list[_Raw]:
    old, new = _load(old_path), _load(new_path)
    changes: list[_Raw] = []
    if old.target_namespace != new.target_namespace:
        changes.append(
            (
                "breaking",
                "/",
                f"target namespace changed from {old.target_namespace!r} "
                f"to {new.target_namespace!r}",
            )
        )
    before, after = _shapes(old), _shapes(new)
    lax_before = any(s.wildcard in {"lax", "strict"} for s in before.values())
    removed = before.keys() - after.keys()
    added = after.keys() - before.keys()
    for path in sorted(before.keys() | after.keys()):
        was, now = before.get(path), after.get(path)
        if now is None:
            assert was is not None
            if _parent(path) not in removed:  # the removed parent says it all
                what = "attribute" if was.attribute else "element"
                changes.append(("breaking", path, f"{what} removed"))
        elif was is None:
            if _parent(path) not in added:  # judged with the added parent
                changes.append(_added(path, now, lax_before))
        else:
            changes += _compare(path, was, now, new)
    return changes


def _parent(path: str) -> str:
    parent = path.rpartition("/")[0]
    return parent if parent not in {"", "/"} else ""


def _added(path: str, now: _Shape, lax_before: bool) -> _Raw:
    if now.attribute:
        if now.min:
            return ("breaking", path, "new required attribute")
        return ("compatible", path, "new optional attribute")
    if now.is_global:
        if lax_before:
            return (
                "breaking",
                path,
                "new global element declaration: such elements, accepted unchecked by the "
                "old schema's wildcards, are now validated",
            )
        return ("compatible", path, "new global element declaration")
    if now.min:
        return ("breaking", path, f"new required element (minOccurs {now.min})")
    return ("compatible", path, "new optional element")


# ---------------------------------------------------------------------------- flattening


_Occurs = tuple[int, int | None]  # (min, max); max None = unbounded


def _shapes(schema: Any) -> dict[str, _Shape]:
    flattener = _Flattener()
    for name, element in sorted(schema.elements.items()):
        flattener.element(element, f"//{element.local_name or name}", (1, 1), is_global=True)
    return flattener.shapes


class _Flattener:
    """Walks element declarations into ``shapes``; ``stack`` holds the types on the branch."""

    def __init__(self) -> None:
        self.shapes: dict[str, _Shape] = {}

    def element(
        self,
        element: Any,
        path: str,
        occurs: _Occurs,
        *,
        stack: tuple[int, ...] = (),
        is_global: bool = False,
    ) -> None:
        low, high = occurs
        existing = self.shapes.get(path)
        if existing is not None:
            # The same name twice in one content model (e.g. in two choice branches).
            existing.min = min(existing.min, low)
            existing.max = None if existing.max is None or high is None else existing.max + high
            return
        shape = _Shape(min=low, max=high, is_global=is_global)
        self.shapes[path] = shape
        _identities(element, shape)
        if element.ref is not None and not is_global:
            return  # a reference to a global declaration: compared at //NAME
        xsd_type = element.type
        if xsd_type.is_simple():
            shape.simple = _simple(xsd_type)
            return
        if xsd_type.has_simple_content():
            shape.simple = _simple(xsd_type.content)
        self.attributes(xsd_type, path, shape)
        content = xsd_type.content
        if not isinstance(content, XsdGroup):
            return
        shape.complex_content = True
        if id(xsd_type) in stack:
            return  # recursive type: its content was walked higher up this branch
        self.group(content, path, (1, 1), shape, stack=(*stack, id(xsd_type)))

    def attributes(self, xsd_type: Any, path: str, owner: _Shape) -> None:
        for name, attribute in xsd_type.attributes.items():
            if name is None:
                owner.any_attribute = True
                continue
            local = name.rpartition("}")[2]
            required = attribute.use == "required"
            self.shapes[f"{path}/@{local}"] = _Shape(
                min=1 if required else 0, max=1, simple=_simple(attribute.type), attribute=True
            )

    def group(
        self, group: Any, path: str, occurs: _Occurs, owner: _Shape, *, stack: tuple[int, ...]
    ) -> None:
        low = occurs[0] * group.min_occurs
        high = _times(occurs[1], group.max_occurs)
        choice = group.model == "choice" and len(group) > 1
        item_low = 0 if choice else low  # in a choice, each branch may be absent
        for item in group:
            if isinstance(item, XsdGroup):
                self.group(item, path, (item_low, high), owner, stack=stack)
            elif isinstance(item, XsdAnyElement):
                mode = str(item.process_contents)
                if owner.wildcard is None or _STRICTNESS[mode] > _STRICTNESS[owner.wildcard]:
                    owner.wildcard = mode
            elif isinstance(item, XsdElement):
                self.element(
                    item,
                    f"{path}/{item.local_name}",
                    (item_low * item.min_occurs, _times(high, item.max_occurs)),
                    stack=stack,
                )


def _identities(element: Any, shape: _Shape) -> None:
    required: set[str] = set()
    constraints: set[str] = set()
    for identity in getattr(element, "identities", []) or []:
        fields = [f.path for f in identity.fields]
        kind = type(identity).__name__
        if kind == "XsdKey" and identity.selector.path == "." and len(fields) == 1:
            required.add(fields[0])  # the lax-segment idiom: a key on "." = a required child
        else:
            constraints.add(
                f"{kind} {identity.name}: {identity.selector.path} [{', '.join(fields)}]"
            )
    shape.required_fields = frozenset(required)
    shape.constraints = frozenset(constraints)


def _times(left: int | None, right: int | None) -> int | None:
    return None if left is None or right is None else left * right


def _simple(xsd_type: Any) -> _Simple:
    variety = "atomic"
    if getattr(xsd_type, "is_list", lambda: False)():
        variety = "list"
    elif getattr(xsd_type, "is_union", lambda: False)():
        variety = "union"
    chain = []
    current = xsd_type
    while current is not None and not _is_builtin(current):
        chain.append(current)
        current = getattr(current, "base_type", None)
    builtin = str(current.name) if current is not None else "?"
    facets: dict[str, str] = {}
    patterns: list[tuple[str, ...]] = []
    enumeration: frozenset[str] | None = None
    for level in chain:  # most derived first: its facets win
        for qname, facet in (getattr(level, "facets", None) or {}).items():
            name = (qname or "").rpartition("}")[2]
            if name in {"pattern", "enumeration", "assertion"} or name in facets:
                continue
            value = getattr(facet, "value", None)
            if value is not None:
                facets[name] = str(value)
        level_patterns = getattr(level, "patterns", None)
        if level_patterns:
            patterns.append(tuple(sorted(level_patterns.regexps)))
        if enumeration is None and getattr(level, "enumeration", None) is not None:
            enumeration = frozenset(str(value) for value in level.enumeration)
    if variety == "union":
        members = getattr(xsd_type, "member_types", [])
        builtin = "union(" + ", ".join(sorted(str(m.name) for m in members)) + ")"
    return _Simple(
        builtin=builtin or "?",
        variety=variety,
        facets=facets,
        patterns=tuple(sorted(patterns)),
        enumeration=enumeration,
    )


def _is_builtin(xsd_type: Any) -> bool:
    name = getattr(xsd_type, "name", None)
    return isinstance(name, str) and name.startswith(_XSD)


# ---------------------------------------------------------------------------- comparing


def _compare(path: str, was: _Shape, now: _Shape, new_schema: Any) -> list[_Raw]:
    changes: list[_Raw] = []
    if not was.is_global:
        changes += _occurs(path, was, now)
    if was.simple is not None and now.simple is not None:
        changes += _compare_simple(path, was.simple, now.simple, new_schema)
    elif was.simple is not None and now.simple is None:
        changes.append(("breaking", path, "text content no longer allowed (now elements only)"))
    elif was.simple is None and now.simple is not None and was.complex_content:
        changes.append(("breaking", path, "child elements no longer allowed (now text only)"))
    for name in sorted(now.required_fields - was.required_fields):
        changes.append(("breaking", path, f"newly required field {name} (identity constraint)"))
    for name in sorted(was.required_fields - now.required_fields):
        changes.append(("compatible", path, f"field {name} no longer required"))
    for constraint in sorted(now.constraints - was.constraints):
        changes.append(("breaking", path, f"new identity constraint {constraint}"))
    for constraint in sorted(was.constraints - now.constraints):
        changes.append(("compatible", path, f"identity constraint removed: {constraint}"))
    changes += _wildcards(path, was, now)
    return changes


def _occurs(path: str, was: _Shape, now: _Shape) -> list[_Raw]:
    changes: list[_Raw] = []
    label = "use" if was.attribute else "minOccurs"
    if now.min > was.min:
        text = "optional → required" if was.attribute else f"minOccurs {was.min} → {now.min}"
        changes.append(("breaking", path, text))
    elif now.min < was.min:
        text = "required → optional" if was.attribute else f"{label} {was.min} → {now.min}"
        changes.append(("compatible", path, text))
    if was.attribute:
        return changes
    if _lower_max(now.max, was.max):
        changes.append(("breaking", path, f"maxOccurs {_show(was.max)} → {_show(now.max)}"))
    elif _lower_max(was.max, now.max):
        changes.append(("compatible", path, f"maxOccurs {_show(was.max)} → {_show(now.max)}"))
    return changes


def _lower_max(candidate: int | None, reference: int | None) -> bool:
    if candidate is None:
        return False
    return reference is None or candidate < reference


def _show(value: int | None) -> str:
    return "unbounded" if value is None else str(value)


def _wildcards(path: str, was: _Shape, now: _Shape) -> list[_Raw]:
    changes: list[_Raw] = []
    if was.wildcard != now.wildcard:
        if now.wildcard is None:
            changes.append(
                ("breaking", path, "wildcard removed: unknown child elements are now rejected")
            )
        elif was.wildcard is None:
            changes.append(("compatible", path, f"wildcard added ({now.wildcard})"))
        elif _STRICTNESS[now.wildcard] > _STRICTNESS[was.wildcard]:
            changes.append(
                ("breaking", path, f"wildcard processContents {was.wildcard} → {now.wildcard}")
            )
        else:
            changes.append(
                ("compatible", path, f"wildcard processContents {was.wildcard} → {now.wildcard}")
            )
    if was.any_attribute and not now.any_attribute:
        changes.append(("breaking", path, "anyAttribute removed: unknown attributes rejected"))
    elif now.any_attribute and not was.any_attribute:
        changes.append(("compatible", path, "anyAttribute added"))
    return changes


def _compare_simple(path: str, was: _Simple, now: _Simple, new_schema: Any) -> list[_Raw]:
    changes: list[_Raw] = []
    if was.builtin != now.builtin or was.variety != now.variety:
        changes.append(_base_change(path, was, now, new_schema))
    for name in _UPPER:
        changes += _bound(path, name, was.facets.get(name), now.facets.get(name), upper=True)
    for name in _LOWER:
        changes += _bound(path, name, was.facets.get(name), now.facets.get(name), upper=False)
    for name in ("maxInclusive", "maxExclusive"):
        changes += _bound(path, name, was.facets.get(name), now.facets.get(name), upper=True)
    for name in ("minInclusive", "minExclusive"):
        changes += _bound(path, name, was.facets.get(name), now.facets.get(name), upper=False)
    if was.facets.get("length") != now.facets.get("length"):
        kind: _Kind = "compatible" if now.facets.get("length") is None else "breaking"
        changes.append(
            (kind, path, f"length {was.facets.get('length')} → {now.facets.get('length')}")
        )
    if was.patterns != now.patterns:
        added = set(now.patterns) - set(was.patterns)
        if added:
            shown = " and ".join("|".join(level) for level in sorted(added))
            changes.append(("breaking", path, f"pattern added or changed: {shown}"))
        else:
            changes.append(("compatible", path, "pattern removed"))
    changes += _enumeration(path, was.enumeration, now.enumeration)
    return changes


def _base_change(path: str, was: _Simple, now: _Simple, new_schema: Any) -> _Raw:
    text = f"base type {_short(was.builtin)} → {_short(now.builtin)}"
    if was.variety == now.variety == "atomic":
        types = new_schema.maps.types
        old_type, new_type = types.get(was.builtin), types.get(now.builtin)
        if old_type is not None and new_type is not None:
            if old_type.is_derived(new_type):
                return ("compatible", path, f"{text} (wider)")
            if new_type.is_derived(old_type):
                return ("breaking", path, f"{text} (narrower)")
    return ("breaking", path, f"{text} (not a widening)")


def _short(qname: str) -> str:
    return qname.replace(_XSD, "xs:")


def _bound(path: str, name: str, was: str | None, now: str | None, *, upper: bool) -> list[_Raw]:
    if was == now:
        return []
    if now is None:
        return [("compatible", path, f"{name} {was} removed")]
    if was is None:
        return [("breaking", path, f"{name} {now} added")]
    try:
        old_value, new_value = Decimal(was), Decimal(now)
    except InvalidOperation:
        return [("breaking", path, f"{name} {was} → {now}")]
    narrower = new_value < old_value if upper else new_value > old_value
    return [("breaking" if narrower else "compatible", path, f"{name} {was} → {now}")]


def _enumeration(path: str, was: frozenset[str] | None, now: frozenset[str] | None) -> list[_Raw]:
    if was == now:
        return []
    if now is None:
        return [("compatible", path, "enumeration removed (any value of the type)")]
    if was is None:
        return [("breaking", path, f"enumeration added: {', '.join(sorted(now))}")]
    changes: list[_Raw] = []
    if was - now:
        changes.append(
            ("breaking", path, f"enumeration values removed: {', '.join(sorted(was - now))}")
        )
    if now - was:
        changes.append(
            ("compatible", path, f"enumeration values added: {', '.join(sorted(now - was))}")
        )
    return changes
