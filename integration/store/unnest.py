"""PostgreSQL: a batch of rows in ONE ``INSERT … SELECT * FROM unnest(arrays)``, sent in binary.

The store writes its batches (inbox, outbox, order contexts) on the consumer
loop's thread, which also consumes, acknowledges and relays, so their client
cost is the service's cost. SQLAlchemy sends a list of rows either as a
pipelined executemany (one Bind/Execute per row: ~30 µs of Python per row) or,
with RETURNING, as one multi-row INSERT whose placeholders (a thousand for 100
outbox rows) psycopg parses again for every batch. One array per column, one
short statement (its conversion cached by psycopg), binary parameters: about half
the client CPU, and one round trip.

SQLite keeps the plain SQLAlchemy statements (``Store`` chooses by dialect).

Failure modes: those of ``Connection.exec_driver_sql`` (SQLAlchemy's wrapped
DB-API errors, translated by the caller's ``translate_errors``); a naive
datetime raises ``sqlalchemy.exc.StatementError`` whose ``orig`` is the
``ValueError``, as a bound ``UTCDateTime`` parameter does.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, Table
from sqlalchemy import exc as sa_exc

from .models import UTCDateTime

__all__ = ["Unnest"]

_UTC = UTCDateTime()


class Unnest:
    """``INSERT INTO table (columns) SELECT * FROM unnest(…) [conflict] [RETURNING key, id]``.

    ``columns`` pairs each column with its PostgreSQL type (``json`` values are
    serialised, unless ``serialised_json`` says they are JSON text already;
    ``timestamptz`` values checked and put in UTC as ``UTCDateTime`` does). Every
    name comes from the code, never from data.
    """

    def __init__(
        self,
        table: Table,
        columns: Sequence[tuple[str, str]],
        *,
        conflict: str = "",
        returning_key: str | None = None,
        serialised_json: bool = False,
    ) -> None:
        self.columns = tuple(name for name, _ in columns)
        self.types = tuple(sql_type for _, sql_type in columns)
        arrays = ", ".join(f"%b::{sql_type}[]" for sql_type in self.types)
        returning = f" RETURNING {returning_key}, id" if returning_key else ""
        self.statement = (
            f"INSERT INTO {table.name} ({', '.join(self.columns)}) "  # noqa: S608 - names from code
            f"SELECT * FROM unnest({arrays}) {conflict}{returning}"
        )
        self._returning = returning_key is not None
        self._serialise_json = not serialised_json

    def insert(self, connection: Connection, rows: Sequence[Mapping[str, Any]]) -> dict[str, int]:
        """Insert ``rows``; with ``returning_key``, ``{row[key]: id}`` of the rows inserted
        (rows an ``ON CONFLICT DO NOTHING`` skipped are absent), else ``{}``."""
        arrays: list[list[Any]] = []
        for column, sql_type in zip(self.columns, self.types, strict=True):
            values = [row[column] for row in rows]
            if sql_type == "json" and self._serialise_json:
                values = [json.dumps(value) for value in values]
            elif sql_type == "timestamptz":
                dialect = connection.dialect
                try:
                    values = [_UTC.process_bind_param(value, dialect) for value in values]
                except ValueError as exc:  # reported as SQLAlchemy reports a bind processor's
                    raise sa_exc.StatementError(str(exc), self.statement, None, exc) from exc
            arrays.append(values)
        result = connection.exec_driver_sql(self.statement, tuple(arrays))
        if not self._returning:
            return {}
        return {row[0]: row[1] for row in result}
