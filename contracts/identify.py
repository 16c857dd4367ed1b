"""Identification rules: how a contract recognises its messages from the message itself.

Three kinds of rule, chosen by the keys of a manifest's ``[identify]`` table:

- ``IdocRule`` (``idoctyp``, ``mestyp``, ``cimtyp``, ``sndprn``): an SAP IDoc XML file, read
  from the ``EDI_DC40`` control record of every ``IDOC`` element;
- ``RootRule`` (``namespace``, ``root``, ``release_id``): an XML document such as B2MML,
  read from the root element's namespace, local name and ``releaseID`` attribute;
- ``JsonFieldsRule`` (``fields``): a JSON object whose top-level fields equal given values.

Each rule has a *specificity* (how many criteria it pins down); among the contracts that match
a message the most specific wins, and the registry refuses, at load, two contracts that could
match one message with equal specificity. Nothing here guesses: a value that is absent is
absent, never inferred from the root element's name or a file name.

Failure modes: ``read_idoc_envelope`` raises ``UnknownContract`` when a control record is
missing or the IDOC elements of one file disagree on their type (with the positions).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from lxml import etree

from contracts.errors import Finding, UnknownContract
from contracts.xmlpath import element_path, local_name, namespace_of, source_line

__all__ = [
    "IDOC_ELEMENT",
    "IdentifyRule",
    "IdocControl",
    "IdocEnvelope",
    "IdocRule",
    "JsonFieldsRule",
    "RootRule",
    "describe_message",
    "is_idoc",
    "read_idoc_envelope",
]

IDOC_ELEMENT = "IDOC"
CONTROL_RECORD = "EDI_DC40"
JsonScalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class IdocControl:
    """The identifying fields of one ``IDOC``'s control record (``None`` when absent or blank)."""

    position: int
    record: etree._Element = field(compare=False, repr=False)
    line: int | None
    docnum: str | None
    idoctyp: str | None
    mestyp: str | None
    cimtyp: str | None
    sndprn: str | None

    @property
    def path(self) -> str:
        """Where the control record is, e.g. ``/LOIPRO01/IDOC[2]/EDI_DC40`` (for errors only)."""
        return element_path(self.record)

    def render(self) -> str:
        parts = [f"IDOCTYP {_show(self.idoctyp)}", f"MESTYP {_show(self.mestyp)}"]
        parts.append(f"CIMTYP {_show(self.cimtyp)}" if self.cimtyp else "no CIMTYP")
        parts.append(f"SNDPRN {_show(self.sndprn)}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class IdocEnvelope:
    """All control records of one IDoc XML file; they agree on IDOCTYP, MESTYP and CIMTYP."""

    root_name: str
    controls: tuple[IdocControl, ...]

    @property
    def first(self) -> IdocControl:
        return self.controls[0]


def _show(value: str | None) -> str:
    return "(none)" if value is None else repr(value)


def is_idoc(root: etree._Element) -> bool:
    """An IDoc XML file: an unqualified root with at least one ``IDOC`` child."""
    if namespace_of(root):
        return False
    return any(_is_element(child, IDOC_ELEMENT) for child in root)


def _is_element(node: etree._Element, name: str) -> bool:
    return isinstance(node.tag, str) and node.tag == name


def _text(parent: etree._Element, name: str) -> str | None:
    # The first unqualified child of that name, as findtext(name) finds it, without lxml's
    # Python path machinery (half the cost, on every message).
    child = next(parent.iterchildren(name), None)
    if child is None:
        return None
    value = child.text
    return (value.strip() or None) if value else None


def read_idoc_envelope(root: etree._Element) -> IdocEnvelope:
    """Every ``IDOC``'s control record; ``UnknownContract`` if one is missing or they differ."""
    controls: list[IdocControl] = []
    missing: list[Finding] = []
    idocs = list(root.iterchildren(IDOC_ELEMENT))
    for position, idoc in enumerate(idocs, start=1):
        record = next(idoc.iterchildren(CONTROL_RECORD), None)
        if record is None or _text(record, "IDOCTYP") is None:
            missing.append(
                Finding(
                    where=(
                        f"{element_path(idoc)}/{CONTROL_RECORD}"
                        if record is None
                        else element_path(record)
                    ),
                    line=source_line(idoc) if record is None else source_line(record),
                    expected=(
                        f"a control record {CONTROL_RECORD} with IDOCTYP and MESTYP"
                        if record is None
                        else "the field IDOCTYP (the IDoc basic type)"
                    ),
                )
            )
            continue
        controls.append(
            IdocControl(
                position=position,
                record=record,
                line=source_line(record),
                docnum=_text(record, "DOCNUM"),
                idoctyp=_text(record, "IDOCTYP"),
                mestyp=_text(record, "MESTYP"),
                cimtyp=_text(record, "CIMTYP"),
                sndprn=_text(record, "SNDPRN"),
            )
        )
    name = local_name(root)
    if missing:
        raise UnknownContract(
            f"IDoc file <{name}>: the IDoc type cannot be identified, "
            f"{len(missing)} of {len(idocs)} IDOC element(s) lack a control record type",
            findings=missing,
        )
    _check_agreement(name, controls)
    return IdocEnvelope(root_name=name, controls=tuple(controls))


def _check_agreement(root_name: str, controls: Sequence[IdocControl]) -> None:
    first = controls[0]
    findings: list[Finding] = []
    for control in controls[1:]:
        for name, mine, theirs in (
            ("IDOCTYP", control.idoctyp, first.idoctyp),
            ("MESTYP", control.mestyp, first.mestyp),
            ("CIMTYP", control.cimtyp, first.cimtyp),
        ):
            if mine != theirs:
                findings.append(
                    Finding(
                        where=f"{control.path}/{name}",
                        line=control.line,
                        value=mine if mine is not None else "",
                        expected=(
                            f"{_show(theirs)} as in IDOC {first.position} ({first.path}); "
                            "one file carries one IDoc type"
                        ),
                    )
                )
    if findings:
        raise UnknownContract(
            f"IDoc file <{root_name}> mixes IDoc types in its {len(controls)} IDOC elements",
            findings=findings,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class IdocRule:
    """Matches IDoc files by control record: ``None`` = any value, ``""`` in cimtyp = no CIMTYP."""

    idoctyp: frozenset[str]
    mestyp: frozenset[str] | None = None
    cimtyp: frozenset[str] | None = frozenset({""})
    sndprn: frozenset[str] | None = None

    kind = "IDoc"

    @property
    def specificity(self) -> int:
        return 1 + sum(value is not None for value in (self.mestyp, self.cimtyp, self.sndprn))

    def matches(self, control: IdocControl) -> bool:
        return (
            control.idoctyp in self.idoctyp
            and _allows(self.mestyp, control.mestyp)
            and _allows(self.cimtyp, control.cimtyp or "")
            and _allows(self.sndprn, control.sndprn)
        )

    def overlaps(self, other: IdentifyRule) -> bool:
        return (
            isinstance(other, IdocRule)
            and bool(self.idoctyp & other.idoctyp)
            and _intersect(self.mestyp, other.mestyp)
            and _intersect(self.cimtyp, other.cimtyp)
            and _intersect(self.sndprn, other.sndprn)
        )

    def describe(self) -> str:
        parts = [f"IDOCTYP {_join(self.idoctyp)}"]
        if self.mestyp is not None:
            parts.append(f"MESTYP {_join(self.mestyp)}")
        if self.cimtyp is None:
            parts.append("any CIMTYP")
        elif self.cimtyp == frozenset({""}):
            parts.append("no CIMTYP")
        else:
            parts.append(f"CIMTYP {_join(self.cimtyp)}")
        if self.sndprn is not None:
            parts.append(f"SNDPRN {_join(self.sndprn)}")
        return ", ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class RootRule:
    """Matches XML documents by root namespace and local name (and ``releaseID`` if listed)."""

    namespace: str
    root: frozenset[str]
    release_id: frozenset[str] | None = None

    kind = "XML root"

    @property
    def specificity(self) -> int:
        return 1 + (self.release_id is not None)

    def matches(self, root: etree._Element) -> bool:
        return (
            namespace_of(root) == self.namespace
            and local_name(root) in self.root
            and _allows(self.release_id, root.get("releaseID"))
        )

    def overlaps(self, other: IdentifyRule) -> bool:
        return (
            isinstance(other, RootRule)
            and self.namespace == other.namespace
            and bool(self.root & other.root)
            and _intersect(self.release_id, other.release_id)
        )

    def describe(self) -> str:
        where = f"{{{self.namespace}}}" if self.namespace else "(no namespace) "
        text = f"root {where}{_join(self.root)}"
        if self.release_id is not None:
            text += f", releaseID {_join(self.release_id)}"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonFieldsRule:
    """Matches JSON objects whose top-level fields equal all of ``fields``; empty = never."""

    fields: tuple[tuple[str, JsonScalar], ...]

    kind = "JSON"

    @property
    def specificity(self) -> int:
        return len(self.fields)

    def matches(self, data: object) -> bool:
        if not self.fields or not isinstance(data, Mapping):
            return False
        return all(name in data and _same(data[name], value) for name, value in self.fields)

    def overlaps(self, other: IdentifyRule) -> bool:
        if not isinstance(other, JsonFieldsRule) or not self.fields or not other.fields:
            return False
        theirs = dict(other.fields)
        return all(name not in theirs or _same(theirs[name], value) for name, value in self.fields)

    def describe(self) -> str:
        if not self.fields:
            return "never identified automatically"
        return ", ".join(f"{name} = {value!r}" for name, value in self.fields)


IdentifyRule = IdocRule | RootRule | JsonFieldsRule


def _same(found: object, wanted: JsonScalar) -> bool:
    # True == 1 in Python; a JSON true must not satisfy version = 1, nor "1" satisfy 1.
    return type(found) is type(wanted) and found == wanted


def _allows(allowed: frozenset[str] | None, value: str | None) -> bool:
    return allowed is None or (value if value is not None else "") in allowed


def _intersect(left: frozenset[str] | None, right: frozenset[str] | None) -> bool:
    return left is None or right is None or bool(left & right)


def _join(values: frozenset[str]) -> str:
    return " | ".join(sorted(repr(value) if value else "(none)" for value in values))


def describe_message(root: etree._Element) -> str:
    """A short, human reference to an XML message for logs and errors; never raises.

    ``IDoc 0000000000815001 (LOIPRO01/LOIPRO from ERPCLNT200)``, or for B2MML
    ``ProcessProductionSchedule BODID 4711``.
    """
    if is_idoc(root):
        return _describe_idoc(root)
    name = local_name(root)
    namespace = namespace_of(root)
    bodid = None
    for area in root:
        if isinstance(area.tag, str) and local_name(area) == "ApplicationArea":
            for child in area:
                if isinstance(child.tag, str) and local_name(child) == "BODID":
                    bodid = (child.text or "").strip() or None
    if bodid is not None:
        return f"{name} BODID {bodid}"
    return f"{name} (no BODID)" if namespace else f"<{name}>"


_DOCNUMS_SHOWN = 3


def _describe_idoc(root: etree._Element) -> str:
    records = [
        next(idoc.iterchildren(CONTROL_RECORD), None) for idoc in root.iterchildren(IDOC_ELEMENT)
    ]
    docnums = [(_text(r, "DOCNUM") if r is not None else None) or "?" for r in records]
    first = records[0]
    if first is None:
        return f"IDoc file <{local_name(root)}> without control record"
    idoctyp = _text(first, "IDOCTYP") or "?"
    cimtyp = _text(first, "CIMTYP")
    kind = f"{idoctyp}+{cimtyp}" if cimtyp else idoctyp
    mestyp = _text(first, "MESTYP") or "?"
    sender = _text(first, "SNDPRN") or "?"
    shown = ", ".join(docnums[:_DOCNUMS_SHOWN])
    if len(docnums) > _DOCNUMS_SHOWN:
        shown += f" and {len(docnums) - _DOCNUMS_SHOWN} more"
    label = "IDoc" if len(docnums) == 1 else "IDocs"
    return f"{label} {shown} ({kind}/{mestyp} from {sender})"
