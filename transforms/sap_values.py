"""SAP IDoc field values → Python values, by the normalisation rules of docs/normalisation.md.

IDoc fields are all text. These functions turn one field's text into a value or
raise ``MappingError`` whose finding names the field, its line and the value.
They never truncate, round or guess: a value that does not fit is an error.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from zoneinfo import ZoneInfo

from contracts.errors import Finding, MappingError

__all__ = [
    "FieldRef",
    "sap_batch",
    "sap_date",
    "sap_decimal",
    "sap_local_datetime",
    "sap_material",
    "sap_order_number",
    "sap_time",
    "sap_upper",
]

ORDER_NUMBER_LENGTH = 12
MATERIAL_LENGTH = 18
MATERIAL_LONG_LENGTH = 40
BATCH_LENGTH = 10

# SAP writes signed numbers with the sign last ("12.500-"); some senders put it first.
_SAP_DECIMAL = re.compile(r"^\s*(?P<lead>-)?(?P<digits>\d+(?:\.\d*)?|\.\d+)(?P<trail>-)?\s*$")
_EMPTY_DATES = frozenset({"", "00000000"})


class FieldRef:
    """Where a value came from: a path like ``/LOIPRO01/IDOC[1]/E1AFKOL/GAMNG`` and its line.

    The path may be given as a function: it is then computed only when an error needs
    it, which keeps the path off the per-field cost of a valid message.
    """

    __slots__ = ("_where", "line")

    def __init__(self, where: str | Callable[[], str], line: int | None = None) -> None:
        self._where = where
        self.line = line

    @property
    def where(self) -> str:
        return self._where if isinstance(self._where, str) else self._where()

    def error(self, summary: str, value: str | None, expected: str) -> MappingError:
        return MappingError(
            summary,
            findings=[Finding(where=self.where, line=self.line, value=value, expected=expected)],
        )


def sap_decimal(text: str, ref: FieldRef, *, allow_negative: bool = False) -> Decimal:
    """Parse an SAP decimal (``"41.250"``, ``" 3.5"``, ``"1.000-"``) exactly."""
    match = _SAP_DECIMAL.match(text)
    if match is None or (match["lead"] and match["trail"]):
        raise ref.error(
            "not a decimal number", text, "a decimal with '.' as separator, e.g. 41.250"
        )
    try:
        value = Decimal(match["digits"])
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only valid digits
        raise ref.error("not a decimal number", text, "a decimal number") from exc
    if match["lead"] or match["trail"]:
        value = -value
    if value < 0 and not allow_negative:
        raise ref.error("negative quantity", text, "a quantity of zero or more")
    return value


def sap_date(text: str, ref: FieldRef) -> date | None:
    """``YYYYMMDD``; SAP's empty date ``00000000`` (or nothing) is ``None``."""
    value = text.strip()
    if value in _EMPTY_DATES:
        return None
    if len(value) != 8 or not value.isdigit():
        raise ref.error("not an SAP date", text, "a date YYYYMMDD")
    try:
        return date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError as exc:
        raise ref.error("not a calendar date", text, "a real calendar date YYYYMMDD") from exc


def sap_time(text: str, ref: FieldRef) -> timedelta | None:
    """``HHMMSS`` as the offset from midnight; ``240000`` (SAP's end of day) is allowed."""
    value = text.strip()
    if not value:
        return None
    if len(value) != 6 or not value.isdigit():
        raise ref.error("not an SAP time", text, "a time HHMMSS")
    hours, minutes, seconds = int(value[:2]), int(value[2:4]), int(value[4:])
    if value == "240000":
        return timedelta(hours=24)
    if hours > 23 or minutes > 59 or seconds > 59:
        raise ref.error("not a clock time", text, "a time HHMMSS from 000000 to 235959")
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def sap_local_datetime(
    day: date | None, clock: timedelta | None, zone: ZoneInfo, *, end_of_day: bool
) -> datetime | None:
    """A plant-local date and optional time as an aware datetime.

    SAP sends many dates without a time. A start without a time is the start of
    that day; a finish without a time is the last second of that day, because
    SAP's finish dates are inclusive (docs/normalisation.md).
    """
    if day is None:
        return None
    if clock is None:
        clock = timedelta(hours=23, minutes=59, seconds=59) if end_of_day else timedelta(0)
    naive = datetime.combine(day, time(0)) + clock
    return naive.replace(tzinfo=zone)


def sap_order_number(text: str, ref: FieldRef) -> str:
    """AUFNR: numeric order numbers zero-padded to 12, as SAP keeps them internally."""
    return _padded_key(text, ref, ORDER_NUMBER_LENGTH, "order number (AUFNR)")


def sap_material(text: str, ref: FieldRef, *, long_field: bool = False) -> str:
    """MATNR: numeric material numbers zero-padded to 18; ``*_LONG`` fields hold up to 40."""
    value = text.strip()
    limit = MATERIAL_LONG_LENGTH if long_field else MATERIAL_LENGTH
    if not value:
        raise ref.error("material number is empty", text, "a material number")
    if len(value) > limit:
        raise ref.error(
            f"material number is {len(value)} characters",
            text,
            f"at most {limit} characters (SAP {'MATNR_LONG' if long_field else 'MATNR'})",
        )
    if value.isdigit() and len(value) <= MATERIAL_LENGTH:
        return value.zfill(MATERIAL_LENGTH)
    return sap_upper(value)


def sap_batch(text: str, ref: FieldRef) -> str | None:
    """CHARG: upper case, at most 10 characters; a longer batch is an error, never cut."""
    value = text.strip()
    if not value:
        return None
    if len(value) > BATCH_LENGTH:
        raise ref.error(
            f"batch {value!r} is {len(value)} characters",
            text,
            f"at most {BATCH_LENGTH} characters (SAP batch CHARG)",
        )
    return sap_upper(value)


def sap_upper(value: str) -> str:
    """``value`` in upper case, as SAP keeps batches, materials and order numbers, without
    ever changing its length: a character whose upper case is several characters (``ß`` →
    ``SS``) is kept as it is, so the value stays the one the sender meant and a length check
    sees the value as sent."""
    upper = value.upper()
    if len(upper) == len(value):
        return upper
    return "".join(c.upper() if len(c.upper()) == 1 else c for c in value)


def _padded_key(text: str, ref: FieldRef, length: int, what: str) -> str:
    value = text.strip()
    if not value:
        raise ref.error(f"{what} is empty", text, f"an {what}")
    if len(value) > length:
        raise ref.error(f"{what} is {len(value)} characters", text, f"at most {length} characters")
    return value.zfill(length) if value.isdigit() else sap_upper(value)
