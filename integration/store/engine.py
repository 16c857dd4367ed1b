"""Build the SQLAlchemy engine for a store URL: SQLite (one machine) or PostgreSQL (production).

URLs: ``sqlite:///var/mesbridge.db`` (a file; its directory is created) and
``postgresql://user@host:5432/db`` (driver psycopg 3; ``postgresql+psycopg://``
is the same). Query parameters go to the driver, e.g.
``?options=-csearch_path%3Dmesbridge`` to use a schema other than ``public``.

PostgreSQL sessions compress large values with lz4 where the server has it
(``default_toast_compression``; about a fifth of pglz's CPU for outbox bodies).
SQLite connections run in WAL mode (readers do not block the writer), wait up
to ``busy_timeout`` for the write lock instead of failing at once, enforce
foreign keys, and keep ``synchronous=FULL``: an acked message must survive a
power cut, not only a crash. Write transactions start with ``BEGIN IMMEDIATE``
so that the single writer is chosen at BEGIN, not half-way through a batch;
read-only work asks for a deferred BEGIN (``READ_ONLY``).

Failure modes: an unsupported or malformed URL, an in-memory SQLite database
(each pooled connection would see its own empty database), a missing driver or
a SQLite file that cannot use WAL (network file system) raise
``ConfigurationError``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url

from contracts.errors import ConfigurationError

__all__ = ["READ_ONLY", "SUPPORTED_BACKENDS", "create_store_engine", "normalise_url", "safe_url"]

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_MS = 5_000

# Execution options for work that only reads: on SQLite it must not take the write lock.
READ_ONLY: dict[str, Any] = {"mesbridge_sqlite_begin": "DEFERRED"}
_SQLITE_BEGIN_MODES = ("IMMEDIATE", "DEFERRED")


def normalise_url(url: str) -> URL:
    """The URL with its driver made explicit; refuses what the store cannot run on."""
    try:
        parsed = make_url(url)
    except sa_exc.ArgumentError as error:
        raise ConfigurationError(
            f"database URL {url!r} is not a URL; expected e.g. sqlite:///var/mesbridge.db "
            "or postgresql://user@host:5432/mesbridge"
        ) from error
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise ConfigurationError(
            f"database URL {safe_url(parsed)}: backend {backend!r} is not supported; "
            f"expected one of {', '.join(SUPPORTED_BACKENDS)}"
        )
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite" and parsed.database in (None, "", ":memory:"):
        raise ConfigurationError(
            f"database URL {safe_url(parsed)}: an in-memory SQLite database cannot hold the "
            "store (every connection would see its own); give a file, e.g. "
            "sqlite:///var/mesbridge.db"
        )
    return parsed


def safe_url(url: URL) -> str:
    """The URL for messages and logs: never the password."""
    return url.render_as_string(hide_password=True)


def create_store_engine(url: str, *, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS) -> Engine:
    """An engine for ``url`` set up as described in the module docstring; connects lazily."""
    parsed = normalise_url(url)
    try:
        if parsed.get_backend_name() == "sqlite":
            return _sqlite_engine(parsed, busy_timeout_ms)
        return _postgres_engine(parsed)
    except (ImportError, sa_exc.NoSuchModuleError) as error:
        raise ConfigurationError(
            f"database URL {safe_url(parsed)}: driver missing ({error}); for PostgreSQL "
            "install mesbridge[postgres]"
        ) from error


# Outbox bodies (B2MML schedules, ~20 KB) are compressed when stored (TOAST). pglz, the
# default, costs the server ~100 µs per body; lz4 (PostgreSQL 14+, when built with it)
# ~15 µs, for a little more space. Asked for per session, only where the server offers it.
_PREFER_LZ4 = (
    "SELECT set_config('default_toast_compression', 'lz4', false) FROM pg_settings "
    "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


def _postgres_engine(url: URL) -> Engine:
    engine = create_engine(url, pool_pre_ping=True)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(_PREFER_LZ4)
        dbapi_connection.commit()

    return engine


def _sqlite_engine(url: URL, busy_timeout_ms: int) -> Engine:
    database = url.database or ""
    if not database.startswith("file:"):
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            _enable_wal(cursor, busy_timeout_ms, url)
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get("mesbridge_sqlite_begin", "IMMEDIATE")
        if mode not in _SQLITE_BEGIN_MODES:
            raise ValueError(f"mesbridge_sqlite_begin {mode!r}: expected {_SQLITE_BEGIN_MODES}")
        connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _enable_wal(cursor: Any, busy_timeout_ms: int, url: URL) -> None:
    # WAL is persistent: only a new file needs the switch. The switch wants the file to
    # itself and SQLite does not run the busy handler for it, so instances opening a new
    # file together retry here, within the same patience as busy_timeout.
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal":
                return
            mode = cursor.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower()
        except sqlite3.OperationalError as error:
            busy = (getattr(error, "sqlite_errorcode", 0) & 0xFF) == sqlite3.SQLITE_BUSY
            if not busy or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)
            continue
        if mode != "wal":
            raise ConfigurationError(
                f"database URL {safe_url(url)}: SQLite refused write-ahead logging (journal "
                f"mode stays {mode!r}); put the file on a local disk"
            )
        return
