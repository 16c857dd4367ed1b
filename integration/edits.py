"""What an analyst's edit of a failed message changed: a text diff and the fields, old and new.

``text_diff`` is a unified diff of the two versions as text (kept with the
edited copy, shown by ``mesbridge failed show``). ``field_changes`` lists,
for XML and JSON messages, every field whose value differs, with its path, the
old and the new value (``None`` where the field is absent), as SAP AIF logs a
field edit; it goes into the audit entry of the edit.

Both versions are read only through the intake guard (``read_message``); a
version the guard refuses gives no field changes (the text diff still shows
what changed). Bytes that are not UTF-8 are shown as ISO-8859-1 in the diff
and the diff says so.

Pure apart from parsing; no IO.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from dataclasses import dataclass

from lxml import etree

from contracts.errors import MesbridgeError
from contracts.xmlpath import element_path
from integration.intake import IntakeLimits, JsonMessage, XmlMessage, read_message

__all__ = ["FieldChange", "decode_for_display", "field_changes", "text_diff"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldChange:
    where: str
    old: str | None
    new: str | None

    def as_dict(self) -> dict[str, str | None]:
        return {"where": self.where, "old": self.old, "new": self.new}


def decode_for_display(body: bytes) -> tuple[str, str]:
    """``(text, encoding)``: UTF-8 when the bytes are UTF-8, else ISO-8859-1 (never fails)."""
    try:
        return body.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        return body.decode("iso-8859-1"), "ISO-8859-1"


def text_diff(old: bytes, new: bytes, *, old_name: str, new_name: str) -> str:
    """A unified diff of ``old`` and ``new`` as text, 3 lines of context."""
    old_text, old_encoding = decode_for_display(old)
    new_text, new_encoding = decode_for_display(new)
    lines = difflib.unified_diff(
        old_text.splitlines(keepends=True),
        new_text.splitlines(keepends=True),
        fromfile=f"{old_name} ({old_encoding})" if old_encoding != "UTF-8" else old_name,
        tofile=f"{new_name} ({new_encoding})" if new_encoding != "UTF-8" else new_name,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def field_changes(
    old: bytes, new: bytes, *, limits: IntakeLimits | None = None
) -> list[FieldChange] | None:
    """The fields whose values differ, in document order; None when a version is unreadable."""
    guard = limits or IntakeLimits()
    try:
        before = read_message(old, source="original", limits=guard)
        after = read_message(new, source="edited copy", limits=guard)
    except MesbridgeError:
        return None
    old_fields, new_fields = dict(_fields(before)), dict(_fields(after))
    changes = [
        FieldChange(where=where, old=value, new=new_fields.get(where))
        for where, value in old_fields.items()
        if new_fields.get(where) != value
    ]
    changes += [
        FieldChange(where=where, old=None, new=value)
        for where, value in new_fields.items()
        if where not in old_fields
    ]
    return changes


def _fields(message: XmlMessage | JsonMessage) -> Iterator[tuple[str, str]]:
    if isinstance(message, XmlMessage):
        yield from _xml_fields(message.root)
    else:
        yield from _json_fields(message.data, "$")


def _xml_fields(root: etree._Element) -> Iterator[tuple[str, str]]:
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments and processing instructions are not fields
        if any(isinstance(child.tag, str) for child in element):
            continue
        yield element_path(element), (element.text or "").strip()


def _json_fields(value: object, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_fields(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_fields(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value
    else:
        # JSON spelling (true, null, 1.50): Decimals come back as they were written.
        yield path, json.dumps(value, default=str).strip('"')
