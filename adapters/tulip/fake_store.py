"""The tables behind :class:`adapters.tulip.fake.FakeTulip`: schema, records, value checks.

Behaviour follows Tulip's public API docs where they say something: every table has
an ``id`` column (unique text, required on create, never changed); a record
answer holds every visible column (``null`` when unset) plus ``_sequenceNumber``,
``_createdAt`` and ``_updatedAt``; a number column takes a JSON number (read as a
float, so trailing zeros are lost) or a decimal string ``[-]digits[.digits]``
(kept exactly); with ``X-Tulip-Number-Format: decimal`` numbers are answered as
strings, otherwise as JSON numbers. A timestamp column takes ISO 8601 with an
offset and answers it in UTC with milliseconds (``…T06:00:00.000Z``); that exact
text format is this fake's assumption.

Problems are raised as :class:`FakeTulipError` with the HTTP status and a message
(``{"errorCode": ..., "message": ...}`` is this fake's body shape; the stored
public docs do not show Tulip's). Not thread-safe by itself: the server holds a lock.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

__all__ = ["FakeTable", "FakeTulipError", "tulip_column"]

_RECORD_ID = re.compile(r"^\S+( +\S+)*$")
_DECIMAL_STRING = re.compile(r"^-?\d+(\.\d+)?$")
_COLUMN_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class FakeTulipError(Exception):
    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message


def tulip_column(
    name: str, label: str, data_type: str = "string", *, hidden: bool = False
) -> dict[str, object]:
    """A column definition as ``GET /tables/{id}`` shows it (``data_type``: string, float, …)."""
    return {
        "name": name,
        "label": label,
        "description": "",
        "dataType": {"type": data_type},
        "hidden": hidden,
        "unique": False,
    }


@dataclass
class _Record:
    sequence: int
    created_at: str
    updated_at: str
    values: dict[str, object] = field(default_factory=dict)


class FakeTable:
    def __init__(self, table_id: str, columns: Sequence[Mapping[str, object]]) -> None:
        self.table_id = table_id
        self.columns: list[dict[str, object]] = [
            {**tulip_column("id", "ID"), "unique": True},
        ]
        for column in columns:
            name = column.get("name")
            if not isinstance(name, str) or not _COLUMN_NAME.match(name) or name == "id":
                raise ValueError(f"fake Tulip table {table_id}: bad column name {name!r}")
            label = column.get("label", name)
            self.columns.append({**tulip_column(name, str(label)), **dict(column)})
        self._types = {str(c["name"]): _data_type(c) for c in self.columns}
        self._records: dict[str, _Record] = {}
        self._sequence = 0

    def schema(self) -> dict[str, object]:
        return {
            "id": self.table_id,
            "label": self.table_id,
            "description": "",
            "columns": [dict(column) for column in self.columns],
        }

    def get(self, record_id: str, *, decimal: bool) -> dict[str, object]:
        record = self._records.get(record_id)
        if record is None:
            raise FakeTulipError(
                404, "RecordNotFound", f"record {record_id!r} not found in table {self.table_id}"
            )
        return self._render(record_id, record, decimal=decimal)

    def list_records(
        self, *, limit: int, offset: int, equal: Mapping[str, object], decimal: bool
    ) -> list[dict[str, object]]:
        rendered = [self._render(rid, rec, decimal=decimal) for rid, rec in self._records.items()]
        matching = [r for r in rendered if all(_same(r.get(k), v) for k, v in equal.items())]
        return matching[offset : offset + limit]

    def create(self, body: object, *, decimal: bool) -> dict[str, object]:
        values = self._checked_body(body)
        record_id = values.get("id")
        if not isinstance(record_id, str) or not _RECORD_ID.match(record_id):
            raise FakeTulipError(
                400,
                "InvalidRecordId",
                f"the record must have an 'id' that is a non-empty string, got {record_id!r}",
            )
        if record_id in self._records:
            raise FakeTulipError(
                409, "RecordAlreadyExists", f"a record with id {record_id!r} already exists"
            )
        now = _timestamp()
        self._sequence += 1
        values.pop("id")
        record = _Record(sequence=self._sequence, created_at=now, updated_at=now, values=values)
        self._records[record_id] = record
        return self._render(record_id, record, decimal=decimal)

    def update(self, record_id: str, body: object, *, decimal: bool) -> dict[str, object]:
        record = self._records.get(record_id)
        if record is None:
            raise FakeTulipError(
                404, "RecordNotFound", f"record {record_id!r} not found in table {self.table_id}"
            )
        values = self._checked_body(body)
        if "id" in values and values.pop("id") != record_id:
            raise FakeTulipError(400, "InvalidRecordId", "the 'id' in the body must match the URL")
        record.values.update(values)
        record.updated_at = _timestamp()
        return self._render(record_id, record, decimal=decimal)

    def delete(self, record_id: str) -> None:
        self._records.pop(record_id, None)

    def _checked_body(self, body: object) -> dict[str, object]:
        if not isinstance(body, dict):
            raise FakeTulipError(400, "InvalidRequest", "the body must be a JSON object")
        checked: dict[str, object] = {}
        for column, value in body.items():
            if column not in self._types:
                raise FakeTulipError(
                    400,
                    "InvalidColumn",
                    f"unknown column '{column}' in table {self.table_id}",
                )
            checked[column] = _checked_value(column, self._types[column], value)
        return checked

    def _render(self, record_id: str, record: _Record, *, decimal: bool) -> dict[str, object]:
        rendered: dict[str, object] = {"id": record_id}
        for column in self.columns:
            name = str(column["name"])
            if name == "id" or column.get("hidden") is True:
                continue
            value = record.values.get(name)
            if isinstance(value, Decimal):
                value = format(value, "f") if decimal else float(value)
            rendered[name] = value
        rendered["_sequenceNumber"] = record.sequence
        rendered["_createdAt"] = record.created_at
        rendered["_updatedAt"] = record.updated_at
        return rendered


def _data_type(column: Mapping[str, object]) -> str:
    data_type = column.get("dataType")
    if isinstance(data_type, Mapping) and isinstance(data_type.get("type"), str):
        return str(data_type["type"])
    return "string"


def _checked_value(column: str, data_type: str, value: object) -> object:
    if value is None:
        return None
    ok: bool
    if data_type == "string":
        ok = isinstance(value, str)
    elif data_type in ("integer", "interval"):
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif data_type == "boolean":
        ok = isinstance(value, bool)
    elif data_type == "float":
        if isinstance(value, str) and _DECIMAL_STRING.match(value):
            return Decimal(value)
        if isinstance(value, int | Decimal) and not isinstance(value, bool):
            # A JSON number is a float at Tulip: trailing zeros and excess digits are gone.
            return Decimal(repr(float(value)))
        ok = False
    elif data_type == "timestamp":
        if isinstance(value, str) and (moment := _iso_timestamp(value)) is not None:
            # Stored as an instant and answered in UTC, whatever offset was sent.
            return _format_utc(moment)
        ok = False
    else:
        ok = True  # types this fake does not model (user, machine, file, …) are stored as sent
    if not ok:
        raise FakeTulipError(
            400,
            "InvalidValue",
            f"invalid value {value!r} for column '{column}' of type {data_type}",
        )
    return value


def _iso_timestamp(value: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.utcoffset() is not None else None


def _format_utc(moment: datetime) -> str:
    utc = moment.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="milliseconds") + "Z"


def _same(stored: object, wanted: object) -> bool:
    return stored == wanted or (stored is not None and str(stored) == str(wanted))


def _timestamp() -> str:
    return _format_utc(datetime.now(UTC))
