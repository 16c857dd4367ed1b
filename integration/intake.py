"""The intake guard: refuse hostile or unreadable bytes before they cost memory or leak a file.

Every inbound message passes here first (receive → **guard** → identify → …).
``read_message`` sniffs XML or JSON from the first byte that is not whitespace
(after an optional UTF-8 byte-order mark); ``read_xml`` and ``read_json`` do the
work. They return the parsed document, or raise one of the
``contracts.errors.UnusableInput`` classes with ``message_ref`` = ``source``:

``OversizedMessage``
    ``len(data)`` is above ``IntakeLimits.max_bytes``; checked before anything
    else, nothing is decoded or parsed. Also: a single XML value (text, CDATA,
    attribute, comment) above libxml2's fixed 10,000,000-byte limit, which stays
    on because ``huge_tree`` is off.
``HostileInput``
    any DTD markup (``<!DOCTYPE``, ``<!ENTITY`` …), an entity reference, an
    attempt to load an external DTD or entity, an XInclude element. The DOCTYPE
    is found by a byte-level scan of the prolog, before the parser allocates
    anything, so billion laughs and quadratic blow-up are refused without
    expanding a single entity. Error texts never quote what an entity or an
    external file would have pulled in (nothing is ever pulled in).
``MalformedInput``
    empty, not well-formed or truncated, not valid UTF-8, a UTF-16/UTF-32
    byte-order mark, an XML declaration naming an encoding other than UTF-8,
    US-ASCII or one of the single-byte encodings below, a NUL byte, a bare
    ``&`` in a value (the error says to write ``&amp;``), elements or JSON
    containers nested deeper than
    ``IntakeLimits.max_depth``, JSON with a duplicate key, ``NaN``/``Infinity``,
    an unpaired surrogate escape or an integer too long to convert.

UTF-8 by preference: SAP sends IDoc XML over an XML/HTTP port as UTF-8, and
PAS-X and Tulip send UTF-8. A non-Unicode SAP system declares ISO-8859-1 (or
-15, or windows-1252): such a message is decoded strictly and re-encoded as
UTF-8 *before* any scan or parse, so every check below sees UTF-8; the original
bytes remain the message of record. The byte-level prolog scan is only sound
when the bytes are ASCII-compatible; accepting UTF-16 would let ``<!DOCTYPE``
hide from it as ``<\\0!\\0D\\0``, so a UTF-16 message is refused with a clear
error instead.

lxml is configured defensively as well (entities not resolved, no network, no
DTD loading, no huge trees, no ID table), and a resolver refuses every external
load: measured with lxml 6.1 / libxml2 2.14, ``load_dtd=False`` alone still
*opens and reads* a ``SYSTEM`` external subset or parameter entity given as a
file path. A parsed tree that still carries a DTD or an entity reference node is
refused too. Processing instructions (``<?xml-stylesheet …?>``) and
``xsi:schemaLocation`` hints are kept as data: nothing here acts on them, and
nothing downstream may (validate with the compiled contract schemas, never with
the document's hints).

Cost, measured (docs/security.md): about 14 µs on top of lxml's own ~24 µs parse
for a 3 KB IDoc; JSON about 9 µs for a 0.5 KB Tulip event.

Line numbers: lxml keeps ``sourceline`` on every element. It is exact up to line
65,534; beyond it libxml2 stores big line numbers only on text nodes, so an
element with text keeps its exact line, an empty element reports the next text
line and an element with only element children reports 65,535.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
from array import array
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final, NoReturn

from lxml import etree

from contracts.errors import (
    ConfigurationError,
    Finding,
    HostileInput,
    MalformedInput,
    OversizedMessage,
    UnusableInput,
)
from contracts.xmlpath import source_line

if TYPE_CHECKING:
    from integration.settings import Settings

__all__ = [
    "IntakeLimits",
    "JsonMessage",
    "ParsedMessage",
    "XmlMessage",
    "read_json",
    "read_message",
    "read_xml",
    "require_lxml",
]

_MIB: Final = 1024 * 1024
# libxml2 refuses elements nested deeper than 256 unless huge_tree is on, which it never is.
_LIBXML2_MAX_DEPTH: Final = 256
_LIBXML2_MAX_VALUE_BYTES: Final = 10_000_000
_MAX_SHOWN_PARSER_TEXT: Final = 200

_UTF8_BOM: Final = b"\xef\xbb\xbf"
# UTF-32 first: its little-endian mark starts with the UTF-16 one.
_FOREIGN_BOMS: Final = (
    (b"\x00\x00\xfe\xff", "UTF-32 (big-endian)"),
    (b"\xff\xfe\x00\x00", "UTF-32 (little-endian)"),
    (b"\xfe\xff", "UTF-16 (big-endian)"),
    (b"\xff\xfe", "UTF-16 (little-endian)"),
)
_ACCEPTED_XML_ENCODINGS: Final = frozenset({"utf-8", "us-ascii"})
# Declared single-byte encodings transcoded to UTF-8 before anything looks at the bytes.
_SINGLE_BYTE_ENCODINGS: Final = {
    "iso-8859-1": "latin-1",
    "latin1": "latin-1",
    "iso_8859-1": "latin-1",
    "iso-8859-15": "iso8859-15",
    "windows-1252": "cp1252",
    "cp1252": "cp1252",
}
_XINCLUDE_NAMESPACES: Final = ("http://www.w3.org/2001/XInclude", "http://www.w3.org/2003/XInclude")

_LEADING_SPACE = re.compile(rb"[ \t\r\n]*")
_XML_DECLARATION = re.compile(
    rb"<\?xml[ \t\r\n]+version[ \t\r\n]*=[ \t\r\n]*(?:\"[^\"]*\"|'[^']*')"
    rb"(?:[ \t\r\n]+encoding[ \t\r\n]*=[ \t\r\n]*(?:\"([^\"]*)\"|'([^']*)'))?"
)
# What may precede the root element or a DOCTYPE: white space, the XML declaration and
# other processing instructions, comments. Possessive, so a hostile prolog cannot backtrack.
_PROLOG_MISC = re.compile(rb"(?:[ \t\r\n]++|<\?.*?\?>|<!--.*?-->)*+", re.DOTALL)
_DECLARATION_KEYWORD = re.compile(rb"<![A-Za-z]*")
_PARSER_POSITION_SUFFIX = re.compile(r",\s*line \d+, column \d+\s*$")


def _parser_error_codes(*names: str) -> frozenset[int]:
    return frozenset(int(getattr(etree.ErrorTypes, name)) for name in names)


# libxml2 errors that mean the document declares, references or loads entities (hostile),
# as opposed to a bare '&' in a value (malformed; SAP texts like "AT&T" end up here).
_HOSTILE_PARSER_ERRORS: Final = _parser_error_codes(
    "ERR_ENTITYREF_IN_DTD",
    "ERR_PEREF_AT_EOF",
    "ERR_PEREF_IN_PROLOG",
    "ERR_PEREF_IN_EPILOG",
    "ERR_PEREF_IN_INT_SUBSET",
    "ERR_PEREF_NO_NAME",
    "ERR_PEREF_SEMICOL_MISSING",
    "ERR_UNDECLARED_ENTITY",
    "WAR_UNDECLARED_ENTITY",
    "ERR_UNPARSED_ENTITY",
    "ERR_ENTITY_IS_EXTERNAL",
    "ERR_ENTITY_IS_PARAMETER",
    "ERR_ENTITY_NOT_STARTED",
    "ERR_ENTITY_NOT_FINISHED",
    "ERR_DOCTYPE_NOT_FINISHED",
    "ERR_EXT_ENTITY_STANDALONE",
    "ERR_ENTITY_CHAR_ERROR",
    "ERR_ENTITY_PE_INTERNAL",
    "ERR_ENTITY_LOOP",
    "ERR_ENTITY_BOUNDARY",
    "ERR_ENTITY_PROCESSING",
    "WAR_ENTITY_REDEFINED",
    "ERR_REDECL_PREDEF_ENTITY",
)
_BARE_AMPERSAND_ERRORS: Final = _parser_error_codes(
    "ERR_ENTITYREF_AT_EOF", "ERR_ENTITYREF_NO_NAME", "ERR_ENTITYREF_SEMICOL_MISSING"
)
_NAME_REQUIRED: Final = int(etree.ErrorTypes.ERR_NAME_REQUIRED)

_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_JSON_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|-?Infinity|NaN', re.DOTALL)
_JSON_DEPTH_STEP: Final = str.maketrans({"[": "\x01", "{": "\x01", "]": "\xff", "}": "\xff"})
_JSON_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True, kw_only=True)
class IntakeLimits:
    """What the guard accepts. ``max_bytes`` comes from ``Settings.max_message_bytes``."""

    # A 100 MB IDoc costs ~1 GB to parse; 10 MiB is far above any real IDoc or B2MML message.
    max_bytes: int = 10 * _MIB
    # Element (or JSON container) nesting; IDocs are < 10 deep, B2MML < 30.
    max_depth: int = 128

    def __post_init__(self) -> None:
        if self.max_bytes < 1:
            raise ConfigurationError(
                f"max_message_bytes is {self.max_bytes}; it must be at least 1 byte"
            )
        # libxml2 stops at 256 on its own; a larger limit would be a promise not kept.
        if not 1 <= self.max_depth < _LIBXML2_MAX_DEPTH:
            raise ConfigurationError(
                f"intake max_depth is {self.max_depth}; it must be between 1 and "
                f"{_LIBXML2_MAX_DEPTH - 1}"
            )

    @classmethod
    def from_settings(cls, settings: Settings) -> IntakeLimits:
        return cls(max_bytes=settings.max_message_bytes)


@dataclass(frozen=True, slots=True, kw_only=True)
class XmlMessage:
    """An XML message that passed the guard: its root, its original bytes, their SHA-256."""

    root: etree._Element
    raw: bytes = field(repr=False)
    sha256: str
    source: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JsonMessage:
    """A JSON message that passed the guard; numbers with a fraction or exponent are Decimal."""

    data: object
    raw: bytes = field(repr=False)
    sha256: str
    source: str


ParsedMessage = XmlMessage | JsonMessage


def require_lxml(minimum: tuple[int, int] = (6, 1)) -> None:
    """Refuse to start on an lxml older than ``minimum``: 6.1 fixes CVE-2026-41066 (XXE)."""
    installed: tuple[int, ...] = tuple(etree.LXML_VERSION)
    if installed[: len(minimum)] < minimum:
        found = ".".join(str(part) for part in installed)
        wanted = ".".join(str(part) for part in minimum)
        raise ConfigurationError(
            f"lxml {found} is installed; mesbridge needs lxml >= {wanted} "
            "(older versions let iterparse() and ETCompatXMLParser read local files through "
            f"external entities, CVE-2026-41066); upgrade with: pip install 'lxml>={wanted}'"
        )


def read_message(
    data: bytes, *, source: str, limits: IntakeLimits = IntakeLimits()
) -> XmlMessage | JsonMessage:
    """Guard and parse one inbound message, XML or JSON, told apart by its first character."""
    _check_size(data, source, limits)
    start = _content_start(data, source)
    first = _LEADING_SPACE.match(data, start)
    position = first.end() if first is not None else start
    if position == len(data):
        _refuse_empty(source)
    lead = data[position : position + 1]
    if lead == b"<":
        root = read_xml(data, source=source, limits=limits)
        return XmlMessage(
            root=root, raw=data, sha256=hashlib.sha256(data).hexdigest(), source=source
        )
    if lead in (b"{", b"["):
        value = read_json(data, source=source, limits=limits)
        return JsonMessage(
            data=value, raw=data, sha256=hashlib.sha256(data).hexdigest(), source=source
        )
    raise _first_character_error(
        data,
        position,
        source,
        "message is neither XML nor JSON",
        expected="'<' (XML) or '{' / '[' (JSON)",
    )


def read_xml(data: bytes, *, source: str, limits: IntakeLimits = IntakeLimits()) -> etree._Element:
    """Guard and parse one XML message; return its root element (``sourceline`` kept)."""
    _check_size(data, source, limits)
    start = _content_start(data, source)
    data = _transcode_single_byte(data, start, source)
    _check_xml_bytes(data, start, source)
    _refuse_declarations(data, start, source)
    root = _parse_xml(data, source, limits.max_depth)
    _check_parsed_tree(root, source)
    # Every element has a start tag, and every '<' that does not open an end tag may open
    # one: a message with no more of those than max_depth cannot nest deeper than that.
    if data.count(b"<") - data.count(b"</") > limits.max_depth:
        _check_xml_depth(root, source, limits.max_depth)
    return root


def read_json(data: bytes, *, source: str, limits: IntakeLimits = IntakeLimits()) -> object:
    """Guard and parse one JSON message (RFC 8259, strict UTF-8); fractions become Decimal."""
    _check_size(data, source, limits)
    start = _content_start(data, source)
    text = _decode_utf8(data, start, source)
    if not text.strip(" \t\r\n"):
        _refuse_empty(source)
    _check_json_depth(text, source, limits.max_depth)
    try:
        value = json.loads(
            text,
            parse_float=Decimal,
            parse_constant=_refuse_json_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise MalformedInput(
            f"not well-formed JSON: {exc.msg}",
            message_ref=source,
            findings=[
                Finding(where=f"column {exc.colno}", line=exc.lineno, expected="well-formed JSON")
            ],
        ) from exc
    except _DuplicateKey as exc:
        raise MalformedInput(
            "duplicate key in one JSON object: which value is meant would be a guess",
            message_ref=source,
            findings=[Finding(where="JSON object", value=exc.key, expected="each key once")],
        ) from None
    except _NonNumber as exc:
        line, column = _locate_json_constant(text, exc.token)
        raise MalformedInput(
            f"{exc.token} is not a JSON number (RFC 8259); quantities must be decimal numbers",
            message_ref=source,
            findings=[
                Finding(where=f"column {column}", line=line, value=exc.token, expected="a number")
            ],
        ) from None
    except ValueError as exc:
        # Python refuses integers longer than sys.get_int_max_str_digits() (4300 by default).
        digits = sys.get_int_max_str_digits()
        summary = (
            f"a JSON integer has more than {digits} digits; it cannot be read as a number"
            if "digits" in str(exc)
            else f"a JSON value cannot be read: {exc}"
        )
        raise MalformedInput(
            summary,
            message_ref=source,
            findings=[Finding(where="JSON number", expected=f"at most {digits} digits")],
        ) from exc
    if _JSON_SURROGATE_ESCAPE.search(text) is not None:
        _check_no_lone_surrogates(value, source)
    return value


# --- size and encoding ---------------------------------------------------------------------


def _check_size(data: bytes, source: str, limits: IntakeLimits) -> None:
    if len(data) > limits.max_bytes:
        raise OversizedMessage(
            f"message is too large: {len(data):,} bytes, the cap is {limits.max_bytes:,} bytes "
            "(MESBRIDGE_MAX_MESSAGE_BYTES); it was not parsed",
            message_ref=source,
            findings=[
                Finding(
                    where="message size",
                    value=f"{len(data)} bytes",
                    expected=f"at most {limits.max_bytes} bytes",
                )
            ],
        )


def _content_start(data: bytes, source: str) -> int:
    """Where the content starts: after a UTF-8 byte-order mark; any other mark is refused."""
    if data.startswith(_UTF8_BOM):
        return len(_UTF8_BOM)
    for mark, name in _FOREIGN_BOMS:
        if data.startswith(mark):
            raise MalformedInput(
                f"message is encoded as {name}; mesbridge reads UTF-8 only",
                message_ref=source,
                findings=[
                    Finding(
                        where="byte-order mark",
                        line=1,
                        value=name,
                        expected="UTF-8 (with or without its byte-order mark)",
                    )
                ],
            )
    return 0


def _decode_utf8(data: bytes, start: int, source: str) -> str:
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        _refuse_invalid_utf8(data, start + exc.start, source)


def _check_utf8(data: bytes, start: int, source: str) -> None:
    if data.isascii():
        return
    try:
        data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        _refuse_invalid_utf8(data, start + exc.start, source)


def _refuse_invalid_utf8(data: bytes, offset: int, source: str) -> NoReturn:
    raise _byte_error(
        data,
        offset,
        source,
        "message is not valid UTF-8",
        expected="UTF-8 (an IDoc XML port sends UTF-8; a Latin-1 sender is misconfigured)",
    )


def _byte_error(
    data: bytes, offset: int, source: str, summary: str, *, expected: str
) -> MalformedInput:
    """A message refused for one byte: named by offset, line and column, shown in hex."""
    return _located_error(
        data,
        offset,
        source,
        summary,
        what=f"byte {offset}",
        value=f"0x{data[offset]:02X}",
        expected=expected,
    )


def _first_character_error(
    data: bytes, position: int, source: str, summary: str, *, expected: str
) -> MalformedInput:
    return _located_error(
        data,
        position,
        source,
        summary,
        what="first character",
        value=_describe_byte(data, position),
        expected=expected,
    )


def _located_error(
    data: bytes, offset: int, source: str, summary: str, *, what: str, value: str, expected: str
) -> MalformedInput:
    line, column = _locate(data, offset)
    return MalformedInput(
        summary,
        message_ref=source,
        findings=[
            Finding(where=f"{what}, column {column}", line=line, value=value, expected=expected)
        ],
    )


def _refuse_empty(source: str) -> NoReturn:
    raise MalformedInput(
        "message is empty",
        message_ref=source,
        findings=[Finding(where="message body", expected="an XML or JSON document")],
    )


# --- XML -------------------------------------------------------------------------------------


def _check_xml_bytes(data: bytes, start: int, source: str) -> None:
    """UTF-8 (or US-ASCII) bytes that start with '<': what the byte-level scan needs to be sound."""
    lead = _LEADING_SPACE.match(data, start)
    position = lead.end() if lead is not None else start
    if position == len(data):
        _refuse_empty(source)
    if data[position] != ord("<"):
        raise _first_character_error(
            data,
            position,
            source,
            "message is not XML: it does not start with '<'",
            expected="'<'",
        )
    nul = data.find(b"\x00", start)
    if nul >= 0:
        line, column = _locate(data, nul)
        raise MalformedInput(
            "message contains a NUL byte, which XML never does (UTF-16 without a byte-order mark?)",
            message_ref=source,
            findings=[
                Finding(where=f"byte {nul}, column {column}", line=line, expected="UTF-8 text")
            ],
        )
    declaration = _XML_DECLARATION.match(data, start)
    raw_encoding = None if declaration is None else declaration.group(1) or declaration.group(2)
    if raw_encoding is not None:
        _check_declared_encoding(data, start, raw_encoding, source)
    _check_utf8(data, start, source)


def _transcode_single_byte(data: bytes, start: int, source: str) -> bytes:
    """A message declared as ISO-8859-1/-15 or windows-1252, as UTF-8 with the declaration to match.

    Only the XML declaration on line 1 changes, so every line number stays true.
    """
    declaration = _XML_DECLARATION.match(data, start)
    if declaration is None:
        return data
    group = 1 if declaration.group(1) is not None else 2
    raw = declaration.group(group)
    if raw is None:
        return data
    codec = _SINGLE_BYTE_ENCODINGS.get(raw.decode("ascii", "replace").lower())
    if codec is None:
        return data
    try:
        text = data[start:].decode(codec)
    except UnicodeDecodeError as exc:
        name = raw.decode("ascii")
        raise _byte_error(
            data,
            start + exc.start,
            source,
            f"message declared as {name} holds a byte that encoding does not define",
            expected=f"a character of {name}, as declared",
        ) from None
    begin, end = declaration.span(group)
    utf8 = text.encode("utf-8")
    shift = begin - start
    return data[:start] + utf8[:shift] + b"UTF-8" + utf8[shift + (end - begin) :]


def _check_declared_encoding(data: bytes, start: int, raw_encoding: bytes, source: str) -> None:
    encoding = raw_encoding.decode("ascii", "replace")
    if encoding.lower() not in _ACCEPTED_XML_ENCODINGS:
        raise MalformedInput(
            f"XML declaration names encoding {encoding!r}; mesbridge accepts UTF-8, US-ASCII, "
            "ISO-8859-1, ISO-8859-15 and windows-1252",
            message_ref=source,
            findings=[
                Finding(
                    where="XML declaration, encoding",
                    line=1,
                    value=encoding,
                    expected="UTF-8, US-ASCII, ISO-8859-1, ISO-8859-15 or windows-1252",
                )
            ],
        )
    if encoding.lower() == "us-ascii" and not data[start:].isascii():
        offset = next(i for i in range(start, len(data)) if data[i] > 0x7F)
        raise _byte_error(
            data,
            offset,
            source,
            "XML declaration names encoding 'US-ASCII' but the message contains non-ASCII bytes",
            expected="US-ASCII, as declared",
        )


def _refuse_declarations(data: bytes, start: int, source: str) -> None:
    """Refuse DTD markup in the prolog, the only place XML allows it, before parsing anything."""
    prolog = _PROLOG_MISC.match(data, start)
    end = prolog.end() if prolog is not None else start
    if not data.startswith(b"<!", end) or data.startswith(b"<!--", end):
        return
    keyword = _DECLARATION_KEYWORD.match(data, end)
    if keyword is None or len(keyword.group()) == 2:
        return  # "<!" followed by something else: not well-formed, the parser says so
    line, column = _locate(data, end)
    raise HostileInput(
        "DOCTYPE refused: a document type declaration can define entities that read files, "
        "reach the network or expand to gigabytes; mesbridge accepts no DTD, so it was not "
        "parsed",
        message_ref=source,
        findings=[
            Finding(
                where=f"prolog, column {column}",
                line=line,
                value=keyword.group().decode("ascii"),
                expected="the root element, with no DTD or entity declarations",
            )
        ],
    )


class _ExternalLoadRefused(Exception):
    """Raised inside lxml when it asks for an external DTD or entity; never leaves this module."""


class _RefuseExternal(etree.Resolver):
    # Called by libxml2 for an external subset or parameter entity even with load_dtd=False.
    def resolve(self, system_url: str, public_id: str, context: object = None) -> NoReturn:
        raise _ExternalLoadRefused


_REFUSE_EXTERNAL: Final = _RefuseExternal()


def _parse_xml(data: bytes, source: str, max_depth: int) -> etree._Element:
    # A parser per call (0.6 µs): lxml parsers should not be shared between threads.
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        collect_ids=False,
    )
    parser.resolvers.add(_REFUSE_EXTERNAL)
    try:
        return etree.fromstring(data, parser)
    except _ExternalLoadRefused:
        raise HostileInput(
            "external DTD or entity refused: the document asks the parser to load a resource "
            "from outside the message; nothing was loaded",
            message_ref=source,
            findings=[Finding(where="document type declaration", expected="no external resource")],
        ) from None
    except etree.XMLSyntaxError as exc:
        raise _translate_syntax_error(exc, source, max_depth) from exc


def _translate_syntax_error(
    exc: etree.XMLSyntaxError, source: str, max_depth: int
) -> UnusableInput:
    text = _PARSER_POSITION_SUFFIX.sub("", str(exc.msg or "").strip()).strip()
    if len(text) > _MAX_SHOWN_PARSER_TEXT:
        text = text[:_MAX_SHOWN_PARSER_TEXT] + "…"
    line, column = exc.position if exc.position else (exc.lineno or None, 0)
    where = f"column {column}" if column else "document"
    lowered = text.lower()
    if "excessive depth" in lowered:
        return MalformedInput(
            f"elements nested deeper than {max_depth} levels (more than {_LIBXML2_MAX_DEPTH}: "
            "the parser stopped)",
            message_ref=source,
            findings=[
                Finding(
                    where=where,
                    line=line,
                    expected=f"at most {max_depth} levels (SAP IDocs nest < 10, B2MML < 30)",
                )
            ],
        )
    code = getattr(exc, "code", None)
    if code in _HOSTILE_PARSER_ERRORS or "amplification" in lowered:
        return HostileInput(
            f"entity refused: {text}; mesbridge accepts only the five predefined entities "
            "and character references",
            message_ref=source,
            findings=[Finding(where=where, line=line, expected="no entity references")],
        )
    if "too big" in lowered or "resource limit" in lowered or "huge" in lowered:
        return OversizedMessage(
            f"a single value is longer than the parser's {_LIBXML2_MAX_VALUE_BYTES:,}-byte "
            f"limit ({text}); huge trees stay off on purpose",
            message_ref=source,
            findings=[
                Finding(
                    where=where,
                    line=line,
                    expected=f"text, attributes and comments under {_LIBXML2_MAX_VALUE_BYTES:,} "
                    "bytes each",
                )
            ],
        )
    if code in _BARE_AMPERSAND_ERRORS or (code == _NAME_REQUIRED and "EntityRef" in text):
        text += "; a '&' in a value must be written as &amp;"
    return MalformedInput(
        f"not well-formed XML: {text}",
        message_ref=source,
        findings=[Finding(where=where, line=line, expected="well-formed XML")],
    )


def _check_parsed_tree(root: etree._Element, source: str) -> None:
    """Second line of defence: a DTD or entity node that got past the prolog scan is refused."""
    docinfo = root.getroottree().docinfo
    if docinfo.internalDTD is not None or docinfo.externalDTD is not None or docinfo.doctype:
        raise HostileInput(
            "DOCTYPE refused: the parsed document carries a document type declaration",
            message_ref=source,
            findings=[Finding(where="document type declaration", expected="no DTD")],
        )
    suspect = next(
        root.iter(etree.Entity, *(f"{{{ns}}}*" for ns in _XINCLUDE_NAMESPACES)),
        None,
    )
    if suspect is None:
        return
    if isinstance(suspect.tag, str):
        raise HostileInput(
            "XInclude element refused: mesbridge never follows xi:include, and no SAP or "
            "B2MML message uses it",
            message_ref=source,
            findings=[
                Finding(
                    where=f"element {etree.QName(suspect).localname} (XInclude)",
                    line=source_line(suspect),
                    expected="no XInclude elements",
                )
            ],
        )
    raise HostileInput(
        "entity reference refused: mesbridge accepts only the five predefined entities",
        message_ref=source,
        findings=[
            Finding(
                where="entity reference",
                line=source_line(suspect),
                expected="no entity references",
            )
        ],
    )


@lru_cache(maxsize=8)
def _deeper_than(max_depth: int) -> etree.XPath:
    # One child step per level; lxml serialises calls on one XPath object, so sharing is safe.
    return etree.XPath("/*" + "/*" * max_depth, smart_strings=False)


def _check_xml_depth(root: etree._Element, source: str, max_depth: int) -> None:
    probe = _deeper_than(max_depth)
    # boolean() would be the same cost; the node list is only non-empty for a refused message.
    too_deep = probe(root)
    if not isinstance(too_deep, list) or not too_deep:
        return
    first = too_deep[0]
    line = source_line(first) if isinstance(first, etree._Element) else None
    raise MalformedInput(
        f"elements nested deeper than {max_depth} levels",
        message_ref=source,
        findings=[
            Finding(
                where=f"element at depth {max_depth + 1}",
                line=line,
                expected=f"at most {max_depth} levels (SAP IDocs nest < 10, B2MML < 30)",
            )
        ],
    )


# --- JSON ------------------------------------------------------------------------------------


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


class _NonNumber(Exception):
    def __init__(self, token: str) -> None:
        super().__init__(token)
        self.token = token


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return result


def _refuse_json_constant(token: str) -> NoReturn:
    raise _NonNumber(token)


def _check_json_depth(text: str, source: str, max_depth: int) -> None:
    """Refuse deep nesting before json allocates anything; all C-level passes, no Python loop."""
    if text.count("[") + text.count("{") <= max_depth:
        return  # fewer openers than levels, even counting those inside strings: cannot be too deep
    brackets = _JSON_NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    if len(brackets) <= max_depth:
        return  # fewer brackets than levels: cannot be too deep
    steps = array("b", brackets.translate(_JSON_DEPTH_STEP).encode("latin-1"))
    if max(accumulate(steps)) <= max_depth:
        return
    line, column = _locate_json_depth(text, max_depth)
    raise MalformedInput(
        f"JSON nested deeper than {max_depth} levels",
        message_ref=source,
        findings=[
            Finding(
                where=f"column {column}",
                line=line,
                expected=f"at most {max_depth} nested objects or arrays",
            )
        ],
    )


def _locate_json_depth(text: str, max_depth: int) -> tuple[int, int]:
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            depth += 1
            if depth > max_depth:
                return _locate_text(text, match.start())
        elif token in ("]", "}"):
            depth -= 1
    return 1, 1


def _locate_json_constant(text: str, constant: str) -> tuple[int | None, int | None]:
    for match in _JSON_TOKEN.finditer(text):
        if match.group() == constant:
            return _locate_text(text, match.start())
    return None, None


def _check_no_lone_surrogates(value: object, source: str) -> None:
    # Rare path: only when the text holds a \uD800-\uDFFF escape. Pairs were already combined.
    pending: list[object] = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise MalformedInput(
                    "a JSON string holds an unpaired surrogate escape (\\uD800-\\uDFFF): "
                    "it is no character and cannot be stored or forwarded",
                    message_ref=source,
                    findings=[Finding(where="JSON string", expected="valid Unicode text")],
                ) from None


# --- locations ---------------------------------------------------------------------------------


def _locate(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and character column of a byte offset (failure paths only)."""
    line = data.count(b"\n", 0, offset) + 1
    line_start = data.rfind(b"\n", 0, offset) + 1
    return line, len(data[line_start:offset].decode("utf-8", "replace")) + 1


def _locate_text(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _describe_byte(data: bytes, offset: int) -> str:
    byte = data[offset]
    return chr(byte) if 0x20 < byte < 0x7F else f"0x{byte:02X}"
