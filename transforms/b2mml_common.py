"""Shared pieces of the B2MML writers: namespaces, value checks and formatting, XML text.

Every value that goes into a B2MML document passes through one check here, so
that a value the schema would reject, or that a receiver's whitespace handling
would silently change, becomes a ``MappingError`` naming the order, the field
and the value. Nothing is truncated, rounded or guessed:

* identifiers (B2MML ``IdentifierType``/``CodeType`` are ``xsd:normalizedString``,
  where a receiver turns tab, CR and LF into blanks): non-empty, no tab/CR/LF, no
  leading or trailing blank, only XML characters;
* texts (``xsd:string``): only XML characters; a text that is empty or only blanks
  is omitted, never sent empty;
* quantities: ``Decimal`` written with ``format(value, "f")`` (exact digits, no
  exponent); negative, NaN and infinite values are errors;
* date-times: aware ``datetime`` only, written as ISO 8601 with the offset in the
  zone the caller names (the plant's).

The writers put the checked values into XML text (``escape``, ``element``,
``optional_element``) and ``written_document`` turns the text into the element tree
in one libxml2 pass. That gives exactly the tree that adding the elements one by
one through lxml would give (the golden tests and ``test_b2mml_text`` pin it
down), for a fraction of the cost: one ``SubElement`` call, which looks the
namespace up through every ancestor, costs about five times what the parser
spends on an element. Every element is in the document's default namespace, so
tags are written unprefixed. A value written unescaped would fail the parse
(``&``, ``<``) or silently become another value (CR turns into LF): only texts
made here from digits and fixed names skip ``escape``.

Failure modes: ``MappingError`` (with ``message_ref`` naming the IDoc) for a value
of an order; ``ConfigurationError`` for a value of the mapping profile (B2MML
sender, receiver, release id); ``ValueError`` for a naive ``created_at``, which is
a programming error of the caller, not a problem of the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, tzinfo
from decimal import Decimal
from functools import lru_cache
from zoneinfo import ZoneInfo

from lxml import etree

from contracts.errors import ConfigurationError, Finding, MappingError
from transforms.mapping import MappingProfile
from transforms.model import ProcessOrder

__all__ = [
    "NS_V0600",
    "NS_V7",
    "OrderContext",
    "WrittenDocument",
    "application_area",
    "check_profile_identifier",
    "decimal_text",
    "document_start",
    "element",
    "escape",
    "format_created_at",
    "is_identifier",
    "optional_element",
    "quantity_and_properties",
    "written_document",
]

NS_V0600 = "http://www.mesa.org/xml/B2MML-V0600"
NS_V7 = "http://www.mesa.org/xml/B2MML"

# XML 1.0 "Char": anything else cannot be written at all (lxml refuses it).
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# normalizedString replaces these with blanks on the receiving side.
_NOT_NORMALIZED = re.compile("[\t\n\r]")


def _identifier_problem(value: str) -> str | None:
    if not value:
        return "is empty"
    if _NOT_XML_CHAR.search(value):
        return "contains a character XML cannot carry"
    if _NOT_NORMALIZED.search(value):
        return "contains a tab or line break, which B2MML identifiers cannot keep"
    if value != value.strip(" "):
        return "has leading or trailing blanks"
    return None


def is_identifier(value: str) -> bool:
    """Whether ``value`` can be written as a B2MML identifier unchanged."""
    # Most identifiers are letters and digits only, and most others printable characters:
    # every printable character is an XML character and none is a tab or line break, so
    # only the blanks at either end are left to check. (OrderContext repeats the first
    # line: it runs about 150 times per order.)
    if value.isalnum():
        return True
    if value.isprintable():
        return value != "" and value[0] != " " and value[-1] != " "
    return _identifier_problem(value) is None


def decimal_text(value: Decimal) -> str | None:
    """``value`` as the plain decimal text B2MML quantities carry (exact digits, no exponent,
    no sign), or None when it has none: NaN, infinite or below zero. ``-0`` is ``0``."""
    if not value.is_finite():
        return None
    if value.is_signed():
        if value:
            return None
        # -0 is zero; written without its sign so the text stays a plain unsigned decimal.
        value = value.copy_abs()
    # str() is the exact digits too, at a quarter of the cost of format(value, "f"), except
    # where it switches to exponent notation (large exponents, tiny numbers).
    text = str(value)
    if "E" in text or "e" in text:
        return format(value, "f")
    return text


_IDENTIFIER_EXPECTED = (
    "a non-empty identifier without tab, line break, control character, or leading/trailing blank"
)


def _at(scope: str | None, field: str) -> str:
    return field if scope is None else f"{scope}: {field}"


@dataclass(frozen=True, slots=True)
class OrderContext:
    """Checks and formats one order's values; errors name the IDoc, the order and the field.

    ``zone`` is the plant's time zone, in which every date-time of the order is written.

    A check names its field as ``field`` within an optional ``scope`` (``"phase
    0010"``); the two are joined into the error's ``where`` only when the check
    fails, since almost every check passes.
    """

    order: ProcessOrder
    zone: ZoneInfo

    @property
    def message_ref(self) -> str:
        control = self.order.control
        return f"{control.mestyp} IDoc {control.docnum} from {control.sender_partner}"

    def error(self, where: str, value: str | None, expected: str) -> MappingError:
        return MappingError(
            f"process order {self.order.order_number} cannot be written as B2MML",
            message_ref=self.message_ref,
            findings=[
                Finding(
                    where=f"order {self.order.order_number}: {where}",
                    value=value,
                    expected=expected,
                )
            ],
        )

    def identifier(self, value: str, field: str, scope: str | None = None) -> str:
        if value.isalnum() or is_identifier(value):
            return value
        raise self.identifier_error(value, field, scope)

    def identifier_error(self, value: str, field: str, scope: str | None = None) -> MappingError:
        """The error for ``value``, which ``is_identifier`` refused."""
        return self.error(
            _at(scope, field), value, f"{_IDENTIFIER_EXPECTED} (it {_identifier_problem(value)})"
        )

    def optional_identifier(
        self, value: str | None, field: str, scope: str | None = None
    ) -> str | None:
        # An absent value and an empty one mean the same in an IDoc: nothing to send.
        if value is None or value == "":
            return None
        if value.isalnum() or is_identifier(value):
            return value
        raise self.identifier_error(value, field, scope)

    def text(self, value: str | None, field: str, scope: str | None = None) -> str | None:
        if value is None or not value.strip():
            return None
        # Printable characters are all XML characters; the search is for the rest.
        if not value.isprintable() and _NOT_XML_CHAR.search(value):
            raise self.error(
                _at(scope, field), value, "text without control characters XML cannot carry"
            )
        return value

    def quantity(self, value: Decimal, field: str, scope: str | None = None) -> str:
        text = decimal_text(value)
        if text is not None:
            return text
        if not value.is_finite():
            raise self.error(_at(scope, field), str(value), "a finite decimal number")
        raise self.error(_at(scope, field), format(value, "f"), "a quantity of zero or more")

    def timestamp(self, value: datetime | None, field: str, scope: str | None = None) -> str | None:
        if value is None:
            return None
        written = _plant_time(value, value.fold, value.tzinfo, self.zone)
        if written is None:
            raise self.error(
                _at(scope, field),
                value.isoformat(),
                "a date and time with its time zone (plant-local)",
            )
        return written


# Date-times as written, kept by the process: orders repeat a few dates across all their
# phases and from one order to the next, and writing one costs ten times the lookup.
# Bounded, so memory stays flat. The key is everything the text depends on: equal
# datetimes with the same fold and time zone are the same wall clock and offset (datetime
# equality ignores fold within one zone, so fold is part of the key).
@lru_cache(maxsize=2048)
def _plant_time(
    value: datetime, fold: int, zone_of_value: tzinfo | None, zone: ZoneInfo
) -> str | None:
    """``value`` in the plant's ``zone`` as ISO 8601; None for a naive ``value``."""
    if value.tzinfo is None or value.utcoffset() is None:
        return None
    # Same instant, shown in the plant's zone: PAS-X sees the plant's wall clock and offset.
    return value.astimezone(zone).isoformat()


def check_profile_identifier(value: str, key: str) -> str:
    """A B2MML identity from the mapping profile; a bad one is an installation problem."""
    if is_identifier(value):
        return value
    problem = _identifier_problem(value)
    if problem is not None:
        raise ConfigurationError(
            f"mapping profile: b2mml.{key} {value!r} {problem}; expected {_IDENTIFIER_EXPECTED}"
        )
    return value


def format_created_at(created_at: datetime) -> str:
    if created_at.tzinfo is None or created_at.utcoffset() is None:
        raise ValueError(
            f"created_at must be an aware datetime (e.g. datetime.now(UTC)), got {created_at!r}"
        )
    return created_at.isoformat()


# -- XML text ---------------------------------------------------------------------------


def escape(value: str) -> str:
    """``value`` as XML character data (element content)."""
    if "&" in value or "<" in value or ">" in value or "\r" in value:
        # A literal CR would reach the tree as LF (XML end-of-line handling): written as a
        # character reference, as lxml's serializer does.
        return (
            value.replace("&", "&amp;")
            .replace("<", "&lt;")
            .replace(">", "&gt;")
            .replace("\r", "&#13;")
        )
    return value


def _escape_attribute(value: str) -> str:
    # Tab, LF and CR as references too: a parser turns literal ones into blanks.
    return escape(value).replace('"', "&quot;").replace("\t", "&#9;").replace("\n", "&#10;")


def element(name: str, value: str) -> str:
    """``<name>value</name>``; every value the checks above pass is non-empty."""
    return f"<{name}>{escape(value)}</{name}>"


def optional_element(name: str, value: str | None) -> str:
    """The element only when there is a value: missing data is omitted, never sent empty."""
    return "" if value is None else f"<{name}>{escape(value)}</{name}>"


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>\n'


@dataclass(frozen=True, slots=True)
class WrittenDocument:
    """A document as the writers made it: the bytes to send and the tree parsed from them.

    The tree is parsed from exactly these bytes, so validating it validates what is sent;
    serialising the tree again would cost more than the writing (~40 µs for a 12-phase
    order) and could only give the same document back.
    """

    body: bytes
    root: etree._Element


def written_document(parts: list[str]) -> WrittenDocument:
    """The document text ``parts`` (written with the functions here) as bytes and tree."""
    body = (XML_DECLARATION + "".join(parts)).encode("utf-8")
    # A parser per call (a few µs): lxml parsers should not be shared between threads. The
    # text is our own, every value escaped, no DTD: nothing to resolve, no size limit to guard.
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, collect_ids=False, huge_tree=True
    )
    return WrittenDocument(body=body, root=etree.fromstring(body, parser))


def document_start(name: str, namespace: str, profile: MappingProfile) -> str:
    """The start tag of the transaction element (``Process…Schedule``): ``namespace`` as the
    default namespace and the profile's ``releaseID``."""
    release_id = check_profile_identifier(profile.b2mml.release_id, "release_id")
    return f'<{name} xmlns="{namespace}" releaseID="{_escape_attribute(release_id)}">'


def application_area(profile: MappingProfile, *, created_at: datetime, document_id: str) -> str:
    """ApplicationArea: Sender, Receiver, CreationDateTime and BODID (alike in V0600 and V7)."""
    sender = check_profile_identifier(profile.b2mml.sender, "sender")
    receiver = check_profile_identifier(profile.b2mml.receiver, "receiver")
    return (
        "<ApplicationArea>"
        f"<Sender>{element('LogicalID', sender)}</Sender>"
        f"<Receiver>{element('LogicalID', receiver)}</Receiver>"
        f"{element('CreationDateTime', format_created_at(created_at))}"
        f"{element('BODID', document_id)}"
        "</ApplicationArea>"
    )


def quantity_and_properties(
    quantity: str, unit: str, properties: tuple[tuple[str, str], ...]
) -> str:
    """A material requirement's ``Quantity`` (the exact decimal text, ``DataType`` ``decimal``,
    the partner's unit code) and one ``MaterialRequirementProperty`` per ``(ID, value)``.

    Written as they are, unescaped: the quantity text (digits and a point, see
    ``OrderContext.quantity``) and the property IDs (the plan's own names, letters only).
    """
    written = (
        f"<Quantity><QuantityString>{quantity}</QuantityString><DataType>decimal</DataType>"
        f"<UnitOfMeasure>{escape(unit)}</UnitOfMeasure></Quantity>"
    )
    for name, value in properties:
        written += (
            f"<MaterialRequirementProperty><ID>{name}</ID>"
            f"<Value><ValueString>{escape(value)}</ValueString></Value>"
            "</MaterialRequirementProperty>"
        )
    return written
