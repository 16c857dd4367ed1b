"""Shared pieces of the B2MML writers: namespaces, value checks and formatting, element building.

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

Failure modes: ``MappingError`` (with ``message_ref`` naming the IDoc) for a value
of an order; ``ConfigurationError`` for a value of the mapping profile (B2MML
sender, receiver, release id); ``ValueError`` for a naive ``created_at``, which is
a programming error of the caller, not a problem of the message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from lxml import etree

from contracts.errors import ConfigurationError, Finding, MappingError
from transforms.mapping import MappingProfile
from transforms.model import ProcessOrder

__all__ = [
    "NS_V0600",
    "NS_V7",
    "ElementBuilder",
    "OrderContext",
    "application_area",
    "check_profile_identifier",
    "document_root",
    "format_created_at",
    "material_property",
    "quantity_element",
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


_IDENTIFIER_EXPECTED = (
    "a non-empty identifier without tab, line break, control character, or leading/trailing blank"
)


@dataclass(frozen=True, slots=True)
class OrderContext:
    """Checks and formats one order's values; errors name the IDoc, the order and the field."""

    order: ProcessOrder

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

    def identifier(self, value: str, where: str) -> str:
        problem = _identifier_problem(value)
        if problem is not None:
            raise self.error(where, value, f"{_IDENTIFIER_EXPECTED} (it {problem})")
        return value

    def optional_identifier(self, value: str | None, where: str) -> str | None:
        # An absent value and an empty one mean the same in an IDoc: nothing to send.
        if value is None or value == "":
            return None
        return self.identifier(value, where)

    def text(self, value: str | None, where: str) -> str | None:
        if value is None or not value.strip():
            return None
        if _NOT_XML_CHAR.search(value):
            raise self.error(where, value, "text without control characters XML cannot carry")
        return value

    def quantity(self, value: Decimal, where: str) -> str:
        if not value.is_finite():
            raise self.error(where, str(value), "a finite decimal number")
        if value < 0:
            raise self.error(where, format(value, "f"), "a quantity of zero or more")
        # -0 is zero; written without its sign so the text stays a plain unsigned decimal.
        return format(value.copy_abs(), "f")

    def timestamp(self, value: datetime | None, zone: ZoneInfo, where: str) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise self.error(
                where, value.isoformat(), "a date and time with its time zone (plant-local)"
            )
        # Same instant, shown in the plant's zone: PAS-X sees the plant's wall clock and offset.
        return value.astimezone(zone).isoformat()


def check_profile_identifier(value: str, key: str) -> str:
    """A B2MML identity from the mapping profile; a bad one is an installation problem."""
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


class ElementBuilder:
    """Creates elements in one B2MML namespace, with the namespace as the default (no prefix)."""

    def __init__(self, namespace: str) -> None:
        self.namespace = namespace

    def root(self, name: str, **attributes: str) -> etree._Element:
        # lxml-stubs type nsmap keys as str; None (the default namespace) is what lxml expects.
        nsmap: dict[str | None, str] = {None: self.namespace}
        return etree.Element(self._tag(name), attributes, nsmap=nsmap)  # type: ignore[arg-type]

    def sub(
        self, parent: etree._Element, name: str, text: str | None = None, **attributes: str
    ) -> etree._Element:
        element = etree.SubElement(parent, self._tag(name), attributes)
        if text is not None:
            element.text = text
        return element

    def optional(self, parent: etree._Element, name: str, text: str | None) -> None:
        """Write the element only when there is a value: missing data is omitted, never empty."""
        if text is not None:
            self.sub(parent, name, text)

    def _tag(self, name: str) -> str:
        return f"{{{self.namespace}}}{name}"


def document_root(builder: ElementBuilder, name: str, profile: MappingProfile) -> etree._Element:
    """The transaction element (``Process…Schedule``) with the profile's ``releaseID``."""
    release_id = check_profile_identifier(profile.b2mml.release_id, "release_id")
    return builder.root(name, releaseID=release_id)


def application_area(
    builder: ElementBuilder,
    root: etree._Element,
    profile: MappingProfile,
    *,
    created_at: datetime,
    document_id: str,
) -> None:
    """ApplicationArea: Sender, Receiver, CreationDateTime and BODID (alike in V0600 and V7)."""
    area = builder.sub(root, "ApplicationArea")
    sender = builder.sub(area, "Sender")
    builder.sub(sender, "LogicalID", check_profile_identifier(profile.b2mml.sender, "sender"))
    receiver = builder.sub(area, "Receiver")
    builder.sub(receiver, "LogicalID", check_profile_identifier(profile.b2mml.receiver, "receiver"))
    builder.sub(area, "CreationDateTime", format_created_at(created_at))
    builder.sub(area, "BODID", document_id)


def quantity_element(
    builder: ElementBuilder, parent: etree._Element, quantity: str, unit: str
) -> None:
    """``Quantity``: the exact decimal text, ``DataType`` ``decimal``, the partner's unit code."""
    element = builder.sub(parent, "Quantity")
    builder.sub(element, "QuantityString", quantity)
    builder.sub(element, "DataType", "decimal")
    builder.sub(element, "UnitOfMeasure", unit)


def material_property(
    builder: ElementBuilder, parent: etree._Element, name: str, value: str
) -> None:
    """``MaterialRequirementProperty`` with an ``ID`` and one string ``Value``."""
    element = builder.sub(parent, "MaterialRequirementProperty")
    builder.sub(element, "ID", name)
    value_element = builder.sub(element, "Value")
    builder.sub(value_element, "ValueString", value)
