"""Identity constraints checked by one compiled XPath instead of libxml2's IDC machinery.

libxml2 evaluates ``xs:key`` / ``xs:unique`` with a streaming XPath engine that costs about half
of an IDoc validation. For the constraint shapes below, ``plan_identity`` removes the
constraints from an in-memory copy of the schema document and writes one XPath expression that
is true whenever libxml2 could report one of them:

- a key with selector ``.`` and one or more fields that are child paths (``BDMNG``,
  ``EDI_DC40/DOCNUM``): the "lax segment, required child" idiom of the SAP IDoc schemas;
- with ``IdentityChecks.ALL`` only: a key or unique with a one-step child selector and one
  child-path field whose type compares as a string (``b:ProductionRequest`` / ``b:ID`` in the
  B2MML profiles). libxml2's XPath is no faster at comparing values than libxml2's identity
  constraints, so this shape stays with libxml2 by default (``IdentityChecks``).

The expression over-approximates on purpose. It looks at every element with a constrained name
wherever it is (lax wildcards apply a global declaration at any depth, Z-segments included),
which the caller finds with one ``iter`` over the names and passes in as node-set variables
``$s0``, ``$s1``, ... (one libxml2 XPath scan per name would cost more than the constraints).
A value with whitespace that a non-``preserve`` type would normalise counts as a possible
duplicate. When the expression is true, or the schema without the constraints rejects the
document, the caller validates with the complete schema and reports libxml2's own errors, so
verdicts and findings are exactly those of the complete schema; the expression only has to be
false when the complete schema accepts, which is the common case.

What the content model already guarantees in a document the stripped schema accepts (a field
that is a required, non-repeating particle of a closed sequence) is not checked again.

A constraint whose declarations or types cannot be resolved exactly from the one schema document
stays in the schema and libxml2 checks it as before: element groups, derived or imported types,
a type other types derive from (``xsi:type`` could swap it), ``anyType``, nillable or
substitutable elements, fields with a default or fixed value, keys a keyref refers to, and any
other XPath form.
"""

from __future__ import annotations

import copy
import functools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lxml import etree

__all__ = [
    "IdentityChecks",
    "IdentityPlan",
    "IdentityShortcut",
    "identity_shortcut",
    "plan_identity",
]

XSD_NS = "http://www.w3.org/2001/XMLSchema"
EXSLT_SETS_NS = "http://exslt.org/sets"
_XS = f"{{{XSD_NS}}}"
_NAME = re.compile(r"^(?:(?P<prefix>[A-Za-z_][\w.\-]*):)?(?P<local>[A-Za-z_][\w.\-]*)$")
_COMPLEX_BUILTINS = {"anyType"}
_PARTICLES = {f"{_XS}{tag}" for tag in ("element", "any", "sequence", "choice", "all", "group")}
_UNBOUNDED = math.inf

# An expanded element name: (namespace or None, local name).
_QName = tuple[str | None, str]
# A resolved type: an xs:simpleType / xs:complexType element, or a built-in type's local name.
_Type = etree._Element | str
# How many times a child may occur: (at least, at most).
_Occurs = tuple[float, float]


class IdentityChecks(Enum):
    """Which identity constraints leave libxml2 for the XPath check."""

    # None: libxml2 checks every constraint (the reference the others are tested against).
    LIBXML2 = "libxml2"
    # Keys on "." (required fields, present exactly once): less than half the cost of libxml2.
    REQUIRED_FIELDS = "required-fields"
    # Also keys and uniques that compare values. Measured on the B2MML profiles, the XPath
    # (set:distinct per scope, a whitespace check per value) costs as much as libxml2's own
    # check, and more on small documents, so it is not the default.
    ALL = "all"


class _Comparison(Enum):
    """How libxml2 compares two values of a field type."""

    EXACT = "exact"  # xs:string and restrictions of it: code point by code point
    NORMALISED = "normalised"  # after whitespace replace/collapse, or after an xsi:type swap


_STRING_BUILTINS = {
    "string": _Comparison.EXACT,
    "normalizedString": _Comparison.NORMALISED,
    "token": _Comparison.NORMALISED,
}


@dataclass(frozen=True, slots=True)
class IdentityPlan:
    """What replaces some identity constraints: the schema without them, and the XPath check.

    ``expression`` refers to ``$s0``, ``$s1``, ...: the elements named ``scopes[0]``,
    ``scopes[1]``, ... (Clark notation) in the validated subtree, in document order.
    """

    document: etree._ElementTree
    scopes: tuple[str, ...]
    expression: str
    namespaces: dict[str, str]
    constraints: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class IdentityShortcut:
    """The schema without some identity constraints, and the XPath that stands in for them."""

    schema: etree.XMLSchema
    scopes: tuple[str, ...]
    suspect: etree.XPath
    constraints: tuple[str, ...]

    def accepts(self, target: etree._Element) -> bool:
        """True only if the complete schema accepts ``target``; False means "ask it"."""
        if not self.schema.validate(target):
            return False
        if not self.scopes:
            return True  # the content models already imply every constraint
        return not self.suspect(target, **self._variables(target))

    def _variables(self, target: etree._Element) -> dict[str, Any]:
        # One pass in C over the subtree; the XPath then only looks at these elements.
        found: dict[str, list[etree._Element]] = {tag: [] for tag in self.scopes}
        for element in target.iter(*self.scopes):
            found[element.tag].append(element)
        return {f"s{index}": found[tag] for index, tag in enumerate(self.scopes)}


def identity_shortcut(
    document: etree._ElementTree, checks: IdentityChecks = IdentityChecks.REQUIRED_FIELDS
) -> IdentityShortcut | None:
    """The shortcut for a self-contained schema document; None if no constraint qualifies."""
    if checks is IdentityChecks.LIBXML2:
        return None
    plan = plan_identity(document, compare_values=checks is IdentityChecks.ALL)
    if plan is None or ("set:distinct" in plan.expression and not _has_exslt_sets()):
        return None  # libxml2 then checks every constraint itself
    try:
        schema = etree.XMLSchema(plan.document)
    except etree.XMLSchemaParseError:
        return None  # cannot happen for a schema that compiled whole; never worth failing for
    return IdentityShortcut(
        schema=schema,
        scopes=plan.scopes,
        suspect=etree.XPath(plan.expression, namespaces=plan.namespaces),
        constraints=plan.constraints,
    )


@functools.cache
def _has_exslt_sets() -> bool:
    # lxml looks XPath functions up when it calls them, not when it compiles: try one.
    try:
        etree.XPath("set:distinct(.)", namespaces={"set": EXSLT_SETS_NS})(etree.Element("x"))
    except etree.XPathError:
        return False
    return True


class _Declarations:
    """The global components of one schema document, and exact lookups in its content models."""

    def __init__(self, root: etree._Element) -> None:
        self.tns = root.get("targetNamespace") or None
        self.qualified = root.get("elementFormDefault") == "qualified"
        self.elements: dict[str, etree._Element] = {}
        self.types: dict[str, etree._Element] = {}
        for child in root:
            name = child.get("name")
            if not name:
                continue
            if child.tag == f"{_XS}element":
                self.elements[name] = child
            elif child.tag in (f"{_XS}complexType", f"{_XS}simpleType"):
                self.types[name] = child
        # Types an instance may swap in with xsi:type, and whether particles may be substituted.
        self.bases = {
            resolved.get("name", "")
            for derivation in root.iter(f"{_XS}extension", f"{_XS}restriction")
            if (resolved := self._named_type(derivation.get("base", ""), derivation)) is not None
            and not isinstance(resolved, str)
        }
        self.substitutable = any(
            element.get("substitutionGroup") for element in root.iter(f"{_XS}element")
        )

    def name_of(self, decl: etree._Element) -> _QName:
        """The expanded name instances of this element declaration carry."""
        parent = decl.getparent()
        is_global = parent is not None and parent.tag == f"{_XS}schema"
        form = decl.get("form")
        qualified = is_global or (form == "qualified" if form else self.qualified)
        return (self.tns if qualified else None, decl.get("name", ""))

    def type_of(self, decl: etree._Element) -> _Type | None:
        """The declared type, or None when it cannot be told exactly from this document."""
        if decl.get("nillable") in ("true", "1") or decl.get("substitutionGroup"):
            return None
        type_name = decl.get("type")
        if type_name is not None:
            return self._named_type(type_name, decl)
        for child in decl:
            if child.tag in (f"{_XS}complexType", f"{_XS}simpleType"):
                return child
        return "anyType"

    def _named_type(self, qname: str, context: etree._Element) -> _Type | None:
        resolved = _resolve(qname, context, default_namespace=True)
        if resolved is None:
            return None
        namespace, local = resolved
        if namespace == XSD_NS:
            return local
        return self.types.get(local) if namespace == self.tns else None

    def content(self, type_: _Type | None) -> etree._Element | None:
        """A complex type whose content model is exactly known: no derivation, no swap."""
        if type_ is None or isinstance(type_, str) or type_.tag != f"{_XS}complexType":
            return None  # anyType admits any xsi:type; a simple type has no children
        if self._has_derivations(type_) or type_.find(f"{_XS}complexContent") is not None:
            return None
        if type_.find(f"{_XS}simpleContent") is not None:
            return None
        return type_

    def child(self, parent: etree._Element, name: _QName) -> etree._Element | None:
        """The one declaration a child ``name`` of a ``parent``-typed element is validated with."""
        declarations: list[etree._Element] = []
        wildcards: list[etree._Element] = []
        for particle in _particles(parent):
            if particle is None:
                return None  # a group reference: not followed
            if particle.tag == f"{_XS}any":
                if _admits(particle, name[0], self.tns):
                    wildcards.append(particle)
            elif particle.get("ref") is None:
                if self.name_of(particle) == name:
                    declarations.append(particle)
            elif _resolve(particle.get("ref", ""), particle, default_namespace=True) == name:
                referenced = self._global(name)
                if referenced is None:
                    return None  # a reference to another schema document
                declarations.append(referenced)
        if len(declarations) == 1 and not wildcards:
            return declarations[0]
        lax_or_strict = all(w.get("processContents", "strict") != "skip" for w in wildcards)
        if not declarations and wildcards and lax_or_strict:
            return self._global(name)
        return None

    def occurs(self, parent: etree._Element, name: _QName) -> _Occurs:
        """How often a child ``name`` occurs in a valid ``parent``-typed element."""
        if self.substitutable:
            return (0, _UNBOUNDED)  # a substitute may stand in for the named particle
        bounds = [_occurs(group, name, self) for group in _model_groups(parent)]
        return bounds[0] if len(bounds) == 1 else (0, _UNBOUNDED)

    def _has_derivations(self, type_: etree._Element) -> bool:
        name = type_.get("name")
        return name is not None and name in self.bases

    def _global(self, name: _QName) -> etree._Element | None:
        return self.elements.get(name[1]) if name[0] == self.tns else None

    def comparison(self, type_: _Type) -> _Comparison | None:
        """How values of a simple type compare; None if not as strings."""
        if isinstance(type_, str):
            # An instance may swap in any built-in derived from it (xs:token for xs:string).
            return _Comparison.NORMALISED if type_ in _STRING_BUILTINS else None
        derived = self._has_derivations(type_)
        comparison = _Comparison.NORMALISED if derived else _Comparison.EXACT
        seen: set[etree._Element] = set()
        current: _Type | None = type_
        while current is not None and not isinstance(current, str):
            restriction = current.find(f"{_XS}restriction")
            if current.tag != f"{_XS}simpleType" or restriction is None or current in seen:
                return None  # a list, a union, or a complex type
            seen.add(current)
            if restriction.find(f"{_XS}whiteSpace") is not None:
                comparison = _Comparison.NORMALISED
            base = restriction.get("base")
            current = self._named_type(base, restriction) if base else None
        if current not in _STRING_BUILTINS:
            return None
        if _STRING_BUILTINS[current] is _Comparison.NORMALISED:
            return _Comparison.NORMALISED
        return comparison


def plan_identity(
    document: etree._ElementTree, *, compare_values: bool = False
) -> IdentityPlan | None:
    """The schema ``document`` without the constraints checked by XPath; None if there are none.

    ``document`` must be a complete schema on its own (no include or import): declarations and
    types are looked up in it alone. ``compare_values`` also plans the keys and uniques on child
    rows, which compare field values.
    """
    root = document.getroot()
    declarations = _Declarations(root)
    referred = {
        resolved[1]
        for keyref in root.iter(f"{_XS}keyref")
        if (resolved := _resolve(keyref.get("refer", ""), keyref, default_namespace=True))
    }
    stripped = copy.deepcopy(document)
    writer = _Writer()
    names: list[str] = []
    # Both trees list their constraints in the same document order.
    for original, twin in zip(_constraints(root), _constraints(stripped.getroot()), strict=True):
        if original.get("name") in referred:
            continue  # a keyref needs the key in the schema
        if not _plan_one(original, declarations, writer, compare_values=compare_values):
            continue
        names.append(original.get("name", ""))
        parent = twin.getparent()
        assert parent is not None
        parent.remove(twin)
    if not names:
        return None
    return IdentityPlan(
        document=stripped,
        scopes=tuple(writer.scopes),
        expression=writer.expression(),
        namespaces=writer.namespaces,
        constraints=tuple(names),
    )


def _constraints(root: etree._Element) -> list[etree._Element]:
    return list(root.iter(f"{_XS}key", f"{_XS}unique"))


def _plan_one(
    constraint: etree._Element,
    declarations: _Declarations,
    writer: _Writer,
    *,
    compare_values: bool,
) -> bool:
    """Write the check for one constraint; False (nothing written) if its shape is not exact."""
    decl = constraint.getparent()
    selector = constraint.find(f"{_XS}selector")
    if decl is None or decl.tag != f"{_XS}element" or not decl.get("name") or selector is None:
        return False
    scope_type = declarations.content(declarations.type_of(decl))
    selector_steps = _steps(selector.get("xpath", ""), selector)
    fields = [_steps(f.get("xpath", ""), f) for f in constraint.iterfind(f"{_XS}field")]
    if scope_type is None or selector_steps is None or not fields:
        return False
    paths = [path for path in fields if path]
    if len(paths) != len(fields):
        return False
    scope = declarations.name_of(decl)
    is_key = constraint.tag == f"{_XS}key"
    if not selector_steps:
        # A unique on "." can never fail; a key on "." selects the scope element alone, so
        # its key-sequence cannot repeat: each field must just be there exactly once.
        return is_key and _plan_self_key(scope, scope_type, paths, declarations, writer)
    if not compare_values or len(selector_steps) != 1 or len(paths) != 1:
        return False
    selected_decl = declarations.child(scope_type, selector_steps[0])
    selected_type = (
        declarations.content(declarations.type_of(selected_decl))
        if selected_decl is not None
        else None
    )
    field = _field(declarations, selected_type, paths[0]) if selected_type is not None else None
    if (
        field is None
        or field.decl.get("default") is not None
        or field.decl.get("fixed") is not None
    ):
        return False  # an empty field would take the default or fixed value
    comparison = declarations.comparison(field.type)
    if comparison is None:
        return False
    variable = writer.variable(scope)
    selected, value = writer.path(selector_steps), writer.path(paths[0])
    values = f"{selected}/{value}"
    # EXSLT set:distinct compares string values through a hash: linear, where comparing each
    # selected node with its following siblings would be quadratic.
    writer.require(variable, f"count(set:distinct({values})) != count({values})")
    low, high = field.occurs
    if is_key and low < 1:
        writer.add(f"{variable}/{selected}[count({value}) != 1]")
    elif high > 1:
        writer.add(f"{variable}/{selected}[count({value}) > 1]")
    if comparison is _Comparison.NORMALISED:
        # Values equal only after whitespace normalisation count as duplicates too.
        writer.add(f"{variable}/{values}[normalize-space() != .]")
    return True


def _plan_self_key(
    scope: _QName,
    scope_type: etree._Element,
    paths: list[list[_QName]],
    declarations: _Declarations,
    writer: _Writer,
) -> bool:
    checks: list[str] = []
    for path in paths:
        field = _field(declarations, scope_type, path)
        if field is None:
            return False
        if field.occurs != (1, 1):
            checks.append(f"count({writer.path(path)}) != 1")
    for check in checks:
        writer.require(writer.variable(scope), check)
    return True


@dataclass(frozen=True, slots=True)
class _Field:
    decl: etree._Element
    type: _Type
    occurs: _Occurs  # how many field nodes one selected element has


def _field(declarations: _Declarations, start: etree._Element, path: list[_QName]) -> _Field | None:
    """The declaration, simple type and count of the elements at ``path`` below ``start``."""
    parent: etree._Element | None = start
    decl: etree._Element | None = None
    low, high = 1.0, 1.0
    for index, name in enumerate(path):
        if parent is None:
            return None
        decl = declarations.child(parent, name)
        if decl is None:
            return None
        step_low, step_high = declarations.occurs(parent, name)
        low, high = low * step_low, high * step_high
        if index < len(path) - 1:
            parent = declarations.content(declarations.type_of(decl))
    assert decl is not None
    type_ = declarations.type_of(decl)
    if type_ is None or (isinstance(type_, str) and type_ in _COMPLEX_BUILTINS):
        return None
    if not isinstance(type_, str) and type_.tag != f"{_XS}simpleType":
        return None  # libxml2 refuses a field of complex type
    return _Field(decl=decl, type=type_, occurs=(low, high))


def _steps(xpath: str, context: etree._Element) -> list[_QName] | None:
    """The child steps of an identity-constraint XPath ("." steps dropped); None if not that."""
    steps: list[_QName] = []
    for raw in xpath.strip().split("/"):
        step = raw.strip().removeprefix("child::").strip()
        if step == ".":
            continue
        resolved = _resolve(step, context, default_namespace=False)
        if resolved is None:
            return None
        steps.append(resolved)
    return steps


def _resolve(qname: str, context: etree._Element, *, default_namespace: bool) -> _QName | None:
    """``prefix:local`` with the prefix bound at ``context``; None if it is not a QName.

    An unprefixed name takes the default namespace in type references, but never in
    identity-constraint XPaths (XSD 1.0).
    """
    match = _NAME.match(qname.strip())
    if match is None:
        return None
    prefix = match["prefix"]
    if prefix is None:
        return (context.nsmap.get(None) if default_namespace else None, match["local"])
    namespace = context.nsmap.get(prefix)
    return (namespace, match["local"]) if namespace is not None else None


def _model_groups(complex_type: etree._Element) -> list[etree._Element]:
    return [
        child
        for child in complex_type
        if child.tag in (f"{_XS}sequence", f"{_XS}choice", f"{_XS}all", f"{_XS}group")
    ]


def _particles(complex_type: etree._Element) -> Iterator[etree._Element | None]:
    """Element and wildcard particles of a content model; None stands for a group reference."""
    for group in _model_groups(complex_type):
        yield from _particles_in(group)


def _particles_in(group: etree._Element) -> Iterator[etree._Element | None]:
    if group.tag == f"{_XS}group":
        yield None
        return
    for child in group:
        if child.tag in (f"{_XS}element", f"{_XS}any"):
            yield child
        elif child.tag in (f"{_XS}sequence", f"{_XS}choice", f"{_XS}group"):
            yield from _particles_in(child)


def _occurs(particle: etree._Element, name: _QName, declarations: _Declarations) -> _Occurs:
    """Bounds on the children called ``name`` that ``particle`` admits."""
    low, high = _bounds(particle)
    if particle.tag == f"{_XS}any":
        return (0, _UNBOUNDED) if _admits(particle, name[0], declarations.tns) else (0, 0)
    if particle.tag == f"{_XS}element":
        ref = particle.get("ref")
        matches = (
            _resolve(ref, particle, default_namespace=True) == name
            if ref is not None
            else declarations.name_of(particle) == name
        )
        return (low, high) if matches else (0, 0)
    if particle.tag not in (f"{_XS}sequence", f"{_XS}choice", f"{_XS}all"):
        return (0, _UNBOUNDED)  # a group reference: anything
    inner = [_occurs(child, name, declarations) for child in particle if child.tag in _PARTICLES]
    if particle.tag == f"{_XS}choice":
        inner_low = min((b[0] for b in inner), default=0)
        inner_high = max((b[1] for b in inner), default=0)
    else:
        inner_low = sum(b[0] for b in inner)
        inner_high = sum(b[1] for b in inner)
    return (low * inner_low, _times(high, inner_high))


def _bounds(particle: etree._Element) -> _Occurs:
    low = float(particle.get("minOccurs", "1"))
    raw_high = particle.get("maxOccurs", "1")
    return (low, _UNBOUNDED if raw_high == "unbounded" else float(raw_high))


def _times(a: float, b: float) -> float:
    return 0 if a == 0 or b == 0 else a * b  # 0 x unbounded is 0, not NaN


def _admits(wildcard: etree._Element, namespace: str | None, tns: str | None) -> bool:
    """Whether an ``xs:any``'s namespace constraint lets an element of ``namespace`` in."""
    allowed = wildcard.get("namespace", "##any").split()
    if "##any" in allowed:
        return True
    if "##other" in allowed:
        return namespace is not None and namespace != tns
    if namespace == tns and "##targetNamespace" in allowed:
        return True
    return "##local" in allowed if namespace is None else namespace in allowed


class _Writer:
    """Builds the expression: one variable per constrained name, prefixes n0, n1, ..."""

    def __init__(self) -> None:
        self.scopes: list[str] = []
        self.namespaces: dict[str, str] = {"set": EXSLT_SETS_NS}
        self._prefixes: dict[str, str] = {}
        self._filters: dict[str, list[str]] = {}
        self._terms: list[str] = []

    def variable(self, scope: _QName) -> str:
        clark = f"{{{scope[0]}}}{scope[1]}" if scope[0] else scope[1]
        if clark not in self.scopes:
            self.scopes.append(clark)
        return f"$s{self.scopes.index(clark)}"

    def path(self, steps: list[_QName]) -> str:
        return "/".join(self._test(step) for step in steps)

    def _test(self, name: _QName) -> str:
        namespace, local = name
        if namespace is None:
            return local
        prefix = self._prefixes.get(namespace)
        if prefix is None:
            prefix = self._prefixes[namespace] = f"n{len(self._prefixes)}"
            self.namespaces[prefix] = namespace
        return f"{prefix}:{local}"

    def require(self, variable: str, violated: str) -> None:
        """A condition on each element of ``variable``: one filter per variable, one pass."""
        self._filters.setdefault(variable, []).append(violated)

    def add(self, term: str) -> None:
        """A location path that selects something only when a constraint may fail."""
        self._terms.append(term)

    def expression(self) -> str:
        filters = [f"{v}[{' or '.join(checks)}]" for v, checks in self._filters.items()]
        terms = filters + self._terms
        if not terms:
            return "false()"  # every constraint is already implied by the content models
        return f"boolean({' | '.join(terms)})"
