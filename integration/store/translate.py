"""Which database errors are transient, declared as data, and the translation at the store's edge.

A transient error (server down, connection refused or lost, pool exhausted,
SQLite file busy, PostgreSQL deadlock or serialization failure) becomes
``contracts.errors.TransientError``: the caller stops consuming, backs off
and retries; no message is parked for it. Everything else (an integrity
violation other than the expected idempotency repeat, a missing table, bad
SQL) is a bug or a broken installation and propagates unchanged.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import exc as sa_exc

from contracts.errors import TransientError

__all__ = ["TRANSIENT_DB_ERRORS", "TRANSIENT_SQLITE_CODES", "is_transient", "translate_errors"]

# SQLAlchemy's wrappers of DB-API errors that mean "unreachable or busy now". psycopg maps
# connection failures, admin shutdown, deadlocks and serialization failures to these.
TRANSIENT_DB_ERRORS: tuple[type[Exception], ...] = (
    sa_exc.OperationalError,
    sa_exc.InterfaceError,
    sa_exc.TimeoutError,  # no connection free in the pool
)

# sqlite3 raises OperationalError for "no such table" and syntax errors too; only these
# primary result codes are about the file being busy or unreachable.
TRANSIENT_SQLITE_CODES: frozenset[int] = frozenset(
    {
        sqlite3.SQLITE_BUSY,
        sqlite3.SQLITE_LOCKED,
        sqlite3.SQLITE_IOERR,
        sqlite3.SQLITE_FULL,
        sqlite3.SQLITE_CANTOPEN,
        sqlite3.SQLITE_PROTOCOL,
    }
)


def is_transient(error: BaseException) -> bool:
    """True when retrying later may succeed: the database, not the request, is the problem."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if not isinstance(error, TRANSIENT_DB_ERRORS):
        return False
    original = getattr(error, "orig", None)
    if isinstance(original, sqlite3.Error):
        code = getattr(original, "sqlite_errorcode", None)
        # Extended codes carry the primary code in their low byte (SQLITE_BUSY_SNAPSHOT...).
        return code is not None and (code & 0xFF) in TRANSIENT_SQLITE_CODES
    return True


def _describe(error: BaseException) -> str:
    original = getattr(error, "orig", None) or error
    text = " ".join(str(original).split())
    return f"{type(original).__name__}: {text}" if text else type(original).__name__


@contextmanager
def translate_errors(action: str, *, database: str) -> Iterator[None]:
    """Raise ``TransientError`` for transient database errors met while doing ``action``."""
    try:
        yield
    except TRANSIENT_DB_ERRORS as error:
        if not is_transient(error):
            raise
        raise TransientError(
            f"database {database} unavailable while {action}: {_describe(error)}"
        ) from error
    except sa_exc.DBAPIError as error:
        if not is_transient(error):
            raise
        raise TransientError(
            f"database {database} connection lost while {action}: {_describe(error)}"
        ) from error
