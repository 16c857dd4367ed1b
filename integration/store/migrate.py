"""Run the store's Alembic migrations from code: no ``alembic.ini`` at run time.

``upgrade(engine)`` brings the schema to ``head`` inside one transaction that
first takes a lock, so several instances starting at once run the migration
exactly once: PostgreSQL takes a transaction-scoped advisory lock (released at
commit or rollback, also when the process dies), SQLite takes its write lock
with ``BEGIN IMMEDIATE``. Whoever comes second finds the schema at ``head``
and does nothing. PostgreSQL DDL is transactional: a failed upgrade leaves the
previous schema intact.

Operators (see docs/storage.md)::

    python -m integration.store current        # revision in the database
    python -m integration.store upgrade        # to head (what `connect` does)
    python -m integration.store upgrade --sql  # print the SQL, change nothing
    python -m integration.store downgrade REV  # e.g. base

The URL comes from ``--url``, else from ``MESBRIDGE_DATABASE_URL`` (the
service's setting).

Failure modes: an unreachable database raises ``TransientError``; a database
at a revision this code does not know (a newer mesbridge migrated it) raises
``ConfigurationError``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, text

from contracts.errors import ConfigurationError, MesbridgeError
from integration.settings import Settings

from .engine import READ_ONLY, create_store_engine, normalise_url, safe_url
from .translate import translate_errors

__all__ = [
    "MIGRATIONS_DIR",
    "MIGRATION_LOCK_KEY",
    "alembic_config",
    "current_revision",
    "downgrade",
    "head_revision",
    "main",
    "upgrade",
]

# alembic.command.upgrade / downgrade
_AlembicStep = Callable[[Config, str], None]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# One fixed 64-bit key for pg_advisory_xact_lock, derived from a name so it is recognisable.
MIGRATION_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"mesbridge.store.migrate").digest()[:8], "big", signed=True
)


def alembic_config(*, connection: Connection | None = None, url: str | None = None) -> Config:
    """An Alembic ``Config`` for the store's migrations, built in code."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    if url is not None:
        # ConfigParser interpolation: a literal '%' in a URL must be doubled.
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise ConfigurationError(f"no migrations found under {MIGRATIONS_DIR}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database."""
    with (
        translate_errors("reading the schema revision", database=safe_url(engine.url)),
        engine.connect() as connection,
    ):
        connection.execution_options(**READ_ONLY)
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision`` under the migration lock (a no-op when already there)."""
    _run_locked(engine, f"upgrading the schema to {revision}", command.upgrade, revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate down to ``revision`` (``base`` drops every table of the store)."""
    _run_locked(engine, f"downgrading the schema to {revision}", command.downgrade, revision)


def _run_locked(engine: Engine, action: str, step: _AlembicStep, revision: str) -> None:
    with translate_errors(action, database=safe_url(engine.url)), engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
            )
        try:
            step(alembic_config(connection=connection), revision)
        except CommandError as error:
            raise ConfigurationError(
                f"database {safe_url(engine.url)}: cannot run {action}: {error}; "
                f"this mesbridge knows revisions up to {head_revision()}"
            ) from error


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m integration.store``: see the module docstring."""
    parser = argparse.ArgumentParser(
        prog="python -m integration.store",
        description="Show or change the revision of mesbridge's store schema.",
    )
    parser.add_argument("--url", help="database URL (default: MESBRIDGE_DATABASE_URL)")
    actions = parser.add_subparsers(dest="action", required=True)
    actions.add_parser("current", help="print the database's revision and the newest known")
    up = actions.add_parser("upgrade", help="migrate to a revision (default head)")
    up.add_argument("revision", nargs="?", default="head")
    up.add_argument("--sql", action="store_true", help="print the SQL only (offline)")
    down = actions.add_parser("downgrade", help="migrate down to a revision, e.g. base")
    down.add_argument("revision")
    args = parser.parse_args(argv)

    url = args.url or os.environ.get("MESBRIDGE_DATABASE_URL") or _default_url()
    try:
        if args.action == "upgrade" and args.sql:
            command.upgrade(
                alembic_config(url=normalise_url(url).render_as_string(hide_password=False)),
                args.revision,
                sql=True,
            )
            return 0
        engine = create_store_engine(url)
        try:
            if args.action == "current":
                print(f"database {safe_url(engine.url)}")
                print(f"current: {current_revision(engine) or 'none (empty database)'}")
                print(f"head:    {head_revision()}")
            else:
                step = upgrade if args.action == "upgrade" else downgrade
                step(engine, args.revision)
                now_at = current_revision(engine) or "none (empty database)"
                print(f"database {safe_url(engine.url)} is at revision {now_at}")
        finally:
            engine.dispose()
    except MesbridgeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _default_url() -> str:
    return Settings().database_url
