"""Turn a work-order record into the JSON Tulip stores, without losing anything on the way.

Tulip number columns take a decimal *string* (``"[-]digits[.digits]"``, no exponent);
a string keeps its trailing zeros, a JSON number would be read as a float. So a
``Decimal`` goes out as its plain string (``Decimal("1.250")`` → ``"1.250"``) and a
``float`` is refused: its value is already rounded. Datetimes must carry a zone
and go out as ISO 8601 UTC with milliseconds (``...T06:00:00.000Z``).

Tulip documents its numbers as exact decimals up to ``9007199254740991`` (JavaScript's
largest safe integer) with at most 20 digits after the point, rounding beyond; so an
``int`` or ``Decimal`` outside that range or a ``Decimal`` with more than 20 decimal
places is refused here rather than rounded there.

Accepted values: ``None``, ``bool``, ``str``, ``int`` and finite ``Decimal`` within
Tulip's number range, aware ``datetime`` without sub-millisecond digits. Anything
else is a ``MappingError`` naming the record, the column, the value and what was
expected: a wrong value is a mapping defect, never something to coerce.

The record id (Tulip's ``id`` column, the order number) must be a non-empty string
without leading or trailing spaces and with no whitespace but spaces inside, which is
Tulip's documented pattern for a record id: one or more non-space runs joined by spaces.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal

from contracts.errors import Finding, MappingError

__all__ = ["JsonScalar", "changed_columns", "encode_record", "record_id_of"]

JsonScalar = str | int | bool | None

# Tulip's documented pattern for the recordId path parameter.
_RECORD_ID = re.compile(r"^\S+( +\S+)*$")
# Tulip's documented number limits (support.tulip.co "Numbers and Numeric Precision").
_MAX_MAGNITUDE = 9_007_199_254_740_991
_MAX_DECIMAL_PLACES = 20


def record_id_of(record: Mapping[str, object]) -> str:
    """The record's ``id``, checked; a ``MappingError`` if it is missing or unusable."""
    value = record.get("id")
    if not isinstance(value, str) or not _RECORD_ID.match(value):
        shown = None if value is None else repr(value)
        raise MappingError(
            "Tulip record has no usable id",
            findings=[
                Finding(
                    where="Tulip record, column id",
                    value=shown,
                    expected="the order number as a non-empty string without leading or "
                    "trailing spaces, tabs or line breaks",
                )
            ],
        )
    return value


def encode_record(record: Mapping[str, object]) -> dict[str, JsonScalar]:
    """The record as Tulip JSON (decimals as strings); every problem is reported at once."""
    record_id = record_id_of(record)
    encoded: dict[str, JsonScalar] = {}
    findings: list[Finding] = []
    for column, value in record.items():
        try:
            encoded[column] = _encode_value(value)
        except _Refused as refused:
            findings.append(
                Finding(
                    where=f"Tulip record {record_id}, column {column}",
                    value=repr(value),
                    expected=refused.expected,
                )
            )
    if findings:
        raise MappingError(
            f"Tulip record {record_id} has values that cannot be sent without changing them",
            findings=findings,
        )
    return encoded


def changed_columns(
    wanted: Mapping[str, JsonScalar],
    stored: Mapping[str, object],
    *,
    timestamp_columns: Collection[str] = (),
) -> list[str]:
    """Columns of ``wanted`` whose stored value differs (type and value), ``id`` excluded.

    Deliberately strict: ``1`` and ``True``, ``"1.2"`` and ``"1.20"`` differ. A false
    "changed" costs one idempotent write; a false "unchanged" would lose an update.
    The one loosening: in a column known to be a Tulip timestamp, two ISO 8601 texts
    of the same instant are equal (Tulip answers ``…06:00:00.000Z`` for a sent
    ``…08:00:00+02:00``), else every resend would rewrite every record.
    """
    changed = []
    for column, value in wanted.items():
        if column == "id":
            continue
        current = stored.get(column)
        if type(current) is type(value) and current == value:
            continue
        if column in timestamp_columns and _same_instant(value, current):
            continue
        changed.append(column)
    return changed


def _same_instant(left: object, right: object) -> bool:
    if not isinstance(left, str) or not isinstance(right, str):
        return False
    try:
        first, second = datetime.fromisoformat(left), datetime.fromisoformat(right)
    except ValueError:
        return False
    if first.utcoffset() is None or second.utcoffset() is None:
        return False  # a naive time is not an instant; never call it equal
    return first == second


class _Refused(Exception):
    def __init__(self, expected: str) -> None:
        super().__init__(expected)
        self.expected = expected


def _encode_value(value: object) -> JsonScalar:
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if abs(value) > _MAX_MAGNITUDE:
            raise _Refused(_RANGE)
        return value
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _Refused("a finite decimal number")
        if abs(value) > _MAX_MAGNITUDE:
            raise _Refused(_RANGE)
        exponent = value.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > _MAX_DECIMAL_PLACES:
            raise _Refused(
                f"at most {_MAX_DECIMAL_PLACES} digits after the decimal point "
                "(Tulip rounds beyond)"
            )
        # 'f' never uses an exponent, which Tulip's decimal strings do not allow.
        return format(value, "f")
    if isinstance(value, float):
        raise _Refused("a Decimal or a decimal string (a float has already been rounded)")
    if isinstance(value, datetime):
        return _encode_datetime(value)
    if isinstance(value, date):
        raise _Refused("a datetime with a time zone (Tulip has no date-only type)")
    raise _Refused("a string, integer, boolean, Decimal, zoned datetime or None")


_RANGE = f"a number within ±{_MAX_MAGNITUDE} (Tulip's largest exact number)"


def _encode_datetime(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        raise _Refused("a datetime with a time zone (a naive time would be a guess)")
    if value.microsecond % 1000:
        raise _Refused("a datetime with at most millisecond precision (Tulip keeps milliseconds)")
    utc = value.astimezone(UTC)
    return utc.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
