"""libxml2 validation errors → ``Finding``: where, line, the value found, what was expected.

The translation is a table of (message pattern, rewrite): each libxml2 message shape that an
analyst meets (a facet, a datatype, a missing or repeated field, an unexpected element, an
attribute) becomes a readable "expected" text. A named simple type's ``xs:documentation`` adds
the business meaning ("at most 10 characters (SAP CHAR 10)", "a date YYYYMMDD ..."); a failed
identity constraint names the required field. A message no rule knows is kept as libxml2 wrote
it, so nothing is ever hidden.

The value is taken from the message when libxml2 quotes it, otherwise from the element's text
(libxml2 omits it for length facets).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, cast

from lxml import etree

from contracts.errors import Finding
from contracts.xmlpath import element_path, find_by_libxml2_path, local_name, source_line
from contracts.xsd import XsdSchema

__all__ = ["LogEntry", "log_entries", "translate_errors"]

_PREFIX = re.compile(r"^Element '(?P<element>[^']*)'(?:, attribute '(?P<attribute>[^']*)')?: ")
_FACET = re.compile(r"^\[facet '(?P<facet>\w+)'\] ")
_QUOTED_VALUE = re.compile(r"^The value '(?P<value>.*?)' (?=has|is|must)", re.DOTALL)
_NO_VALUE_WARNING = "Warning: No precomputed value available"
_SET_ITEM = re.compile(r"'((?:[^']|'(?!, |\}))*)'")


class LogEntry(Protocol):
    """The parts of an lxml ``_LogEntry`` used here (lxml-stubs do not describe it)."""

    message: str
    path: str | None
    line: int


def log_entries(error_log: object) -> list[LogEntry]:
    """The entries of an lxml error log, typed."""
    return list(cast(Iterable[LogEntry], error_log))


@dataclass(frozen=True, slots=True)
class _Context:
    """What a rewrite rule may look at: the parsed message, the element, the schema's docs."""

    rest: str
    element: etree._Element | None
    attribute: str | None
    type_doc: str | None
    schema: XsdSchema


# A rewrite gives the "expected" text, optionally with the element the finding should point
# at, or None when the error only repeats what another finding already says.
_Result = str | tuple[str, etree._Element] | None
_Rewrite = Callable[[re.Match[str], _Context], _Result]


def _with_doc(text: str, ctx: _Context) -> str:
    return f"{text} ({ctx.type_doc})" if ctx.type_doc else text


def _chars(count: str) -> str:
    return f"{count} character" + ("" if count == "1" else "s")


def _enumeration(match: re.Match[str], ctx: _Context) -> str:
    values = [
        value if value.strip() else ("(empty)" if not value else "(blank)")
        for value in _SET_ITEM.findall(match["set"])
    ]
    text = "one of " + ", ".join(values)
    return _with_doc(text, ctx)


def _pattern(match: re.Match[str], ctx: _Context) -> str:
    return ctx.type_doc or f"text matching the pattern {match['pattern']}"


def _datatype(match: re.Match[str], ctx: _Context) -> str:
    return ctx.type_doc or f"a valid {match['type']}"


def _key_missing(match: re.Match[str], ctx: _Context) -> _Result:
    fields = ctx.schema.key_fields.get(match["key"], ())
    if len(fields) != 1 or not fields[0] or ctx.element is None:
        return f"the fields of key {match['key']} ({', '.join(fields) or '?'}), which are missing"
    # Walk the field path from the constrained element: the first absent step is what is
    # missing. When every step is present, libxml2 complains only because the value itself
    # was invalid, which an earlier finding already says: drop this one.
    node = ctx.element
    steps = [step for step in fields[0].split("/") if step not in {"", "."}]
    for index, step in enumerate(steps):
        child = next(
            (
                c
                for c in node
                if isinstance(c.tag, str) and local_name(c) == step.rpartition(":")[2]
            ),
            None,
        )
        if child is None:
            kind = "field" if index == len(steps) - 1 else "segment"
            return f"required {kind} {step}, which is missing", node
        node = child
    return None


def _key_repeated(match: re.Match[str], ctx: _Context) -> _Result:
    steps = [step for step in match["xpath"].split("/") if step not in {"", "."}]
    node = ctx.element
    if node is None or not steps:
        return f"{match['xpath']} only once (key {match['key']}); it is repeated"
    # libxml2 points at the second match of the field path; climb to the first step.
    outer = node
    for _ in steps[1:]:
        parent = outer.getparent()
        outer = parent if parent is not None else outer
    scope = outer.getparent()
    if len(steps) > 1 and scope is not None:
        twins = [c for c in scope if isinstance(c.tag, str) and c.tag == outer.tag]
        if len(twins) > 1:
            return (
                f"exactly one segment {steps[0]} in {local_name(scope)}; found more than one",
                outer,
            )
    holder = node.getparent()
    within = f" in {local_name(holder)}" if holder is not None else ""
    return f"field {local_name(node)} only once{within}; it is repeated", node


# Order matters: the first pattern that matches the message after "Element '...': " wins.
_RULES: tuple[tuple[re.Pattern[str], _Rewrite], ...] = tuple(
    (re.compile(pattern, re.DOTALL), rewrite)
    for pattern, rewrite in (
        (
            r"\[facet 'maxLength'\] .*allowed maximum length of '(?P<n>\d+)'",
            lambda m, c: _with_doc(f"at most {_chars(m['n'])}", c),
        ),
        (
            r"\[facet 'minLength'\] .*allowed minimum length of '(?P<n>\d+)'",
            lambda m, c: _with_doc(f"at least {_chars(m['n'])}", c),
        ),
        (
            r"\[facet 'length'\] .*allowed length of '(?P<n>\d+)'",
            lambda m, c: _with_doc(f"exactly {_chars(m['n'])}", c),
        ),
        (r"\[facet 'pattern'\] .*not accepted by the pattern '(?P<pattern>.*)'\.$", _pattern),
        (r"\[facet 'enumeration'\] .*not an element of the set \{(?P<set>.*)\}\.$", _enumeration),
        (
            r"\[facet 'maxInclusive'\] .*maximum value allowed \('(?P<n>[^']*)'\)",
            lambda m, c: _with_doc(f"at most {m['n']}", c),
        ),
        (
            r"\[facet 'minInclusive'\] .*minimum value allowed \('(?P<n>[^']*)'\)",
            lambda m, c: _with_doc(f"at least {m['n']}", c),
        ),
        (
            r"\[facet 'maxExclusive'\] .*must be less than '(?P<n>[^']*)'",
            lambda m, c: _with_doc(f"less than {m['n']}", c),
        ),
        (
            r"\[facet 'minExclusive'\] .*must be greater than '(?P<n>[^']*)'",
            lambda m, c: _with_doc(f"more than {m['n']}", c),
        ),
        (
            r"\[facet 'totalDigits'\] .*more digits than are allowed \('(?P<n>\d+)'\)",
            lambda m, c: _with_doc(f"at most {m['n']} digits in all", c),
        ),
        (
            r"\[facet 'fractionDigits'\] .*more fractional digits than are allowed "
            r"\('(?P<n>\d+)'\)",
            lambda m, c: _with_doc(f"at most {m['n']} decimals", c),
        ),
        (
            r"^'.*' is not a valid value of the (?:local )?(?:atomic|list|union) type"
            r"(?: '(?P<type>[^']*)')?\.$",
            _datatype,
        ),
        (
            r"Not all fields of (?:key|unique) identity-constraint '(?P<key>[^']*)' "
            r"evaluate to a node",
            _key_missing,
        ),
        (
            r"The XPath '(?P<xpath>[^']*)' of a field of (?:key|unique) identity-constraint "
            r"'(?P<key>[^']*)' evaluates to a node-set with more than one member",
            _key_repeated,
        ),
        (
            r"Duplicate key-sequence \[(?P<values>.*)\] in (?:key|unique) identity-constraint "
            r"'(?P<key>[^']*)'",
            lambda m, c: f"a value not used before for key {m['key']}; {m['values']} is repeated",
        ),
        (
            r"Missing child element\(s\)\. Expected is (?:one of )?\( (?P<names>.*) \)",
            lambda m, c: f"required element(s) {m['names']}, which are missing",
        ),
        (
            r"This element is not expected\. Expected is (?:one of )?\( (?P<names>.*) \)",
            lambda m, c: f"no element here but {m['names']}",
        ),
        (r"This element is not expected\.", lambda m, c: "no such element here"),
        (
            r"The attribute '(?P<name>[^']*)' is required but missing",
            lambda m, c: f"required attribute {m['name']}, which is missing",
        ),
        (
            r"The attribute '(?P<name>[^']*)' is not allowed",
            lambda m, c: f"no attribute {m['name']}",
        ),
        (
            r"Character content other than whitespace is not allowed",
            lambda m, c: "child elements only, no text",
        ),
        (
            r"Element content is not allowed, because the (?:content type|type definition) is",
            lambda m, c: "text only, no child elements",
        ),
        (
            r"No matching global declaration available for the validation root",
            lambda m, c: "a root element the schema declares",
        ),
    )
)

# Messages whose subject is the element's own text: a value the analyst should see.
_VALUE_FROM_TEXT = re.compile(r"^\[facet '\w+'\]|is not a valid value of")


def translate_errors(
    errors: Iterable[LogEntry],
    *,
    target: etree._Element,
    schema: XsdSchema,
    suffix: str = "",
) -> list[Finding]:
    """One finding per libxml2 error, with a datatype error dropped when a facet error said it."""
    findings: list[Finding] = []
    facet_seen: set[tuple[str, int | None]] = set()
    for error in errors:
        translated = _translate(error, target, schema)
        if translated is None:
            continue
        finding, is_facet, is_datatype = translated
        key = (finding.where, finding.line)
        if is_datatype and key in facet_seen:
            continue  # libxml2 may follow a facet error with a generic one for the same value
        if is_facet:
            facet_seen.add(key)
        if suffix:
            finding = Finding(
                where=finding.where,
                line=finding.line,
                value=finding.value,
                expected=f"{finding.expected} {suffix}",
            )
        if finding not in findings:  # nested keys can report one missing field twice
            findings.append(finding)
    return findings


def _translate(
    error: LogEntry,
    target: etree._Element,
    schema: XsdSchema,
) -> tuple[Finding, bool, bool] | None:
    message = error.message.strip()
    prefix = _PREFIX.match(message)
    rest = message[prefix.end() :] if prefix else message
    if rest.startswith(_NO_VALUE_WARNING):
        return None  # an identity constraint met an invalid value: the value error says it
    attribute = prefix["attribute"] if prefix else None
    element = find_by_libxml2_path(target, error.path or "")
    where = element_path(element) if element is not None else (error.path or "?")
    line: int | None = error.line or None
    if attribute:
        where += f"/@{attribute}"
    type_doc = _type_doc(rest, schema) or (
        schema.doc_of_element(local_name(element)) if element is not None else None
    )
    ctx = _Context(
        rest=rest, element=element, attribute=attribute, type_doc=type_doc, schema=schema
    )
    expected = rest
    for pattern, rewrite in _RULES:
        match = pattern.search(rest)
        if match:
            result = rewrite(match, ctx)
            if result is None:
                return None
            if isinstance(result, tuple):
                expected, pointed = result
                where, line = element_path(pointed), source_line(pointed)
            else:
                expected = result
            break
    value = _value(rest, element, attribute)
    is_facet = _FACET.match(rest) is not None
    is_datatype = "is not a valid value of" in rest
    return (
        Finding(where=where, line=line, value=value, expected=expected),
        is_facet,
        is_datatype,
    )


def _type_doc(rest: str, schema: XsdSchema) -> str | None:
    match = re.search(r"of the atomic type '(?:\{[^}]*\})?(?:\w+:)?(?P<name>[^']+)'", rest)
    return schema.type_docs.get(match["name"]) if match else None


def _value(rest: str, element: etree._Element | None, attribute: str | None) -> str | None:
    facet = _FACET.match(rest)
    quoted = _QUOTED_VALUE.match(rest[facet.end() :] if facet else rest)
    if quoted:
        return quoted["value"]
    datatype = re.match(r"^'(?P<value>.*)' is not a valid value of", rest, re.DOTALL)
    if datatype:
        return datatype["value"]
    if element is None or not _VALUE_FROM_TEXT.search(rest):
        return None
    if attribute:
        return element.get(attribute)
    return element.text or ""
