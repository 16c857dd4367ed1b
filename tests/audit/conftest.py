"""Fixtures for the audit trail and retention tests, on SQLite and on PostgreSQL.

``database_url`` (from the store tests) is parametrised over both backends;
PostgreSQL tests get a schema of their own. ``tamper`` changes the trail as
an attacker with database administrator rights would: it first drops
(SQLite) or disables (PostgreSQL) the append-only triggers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, text

from integration.audit import AuditAction, AuditTrail
from integration.store import Store
from tests.store.conftest import database_url, pg_admin, postgres_schema_url

__all__ = ["database_url", "pg_admin", "postgres_schema_url"]

KEY = bytes(range(32, 64))

Tamper = Callable[..., None]


class StepClock:
    """A clock that advances one second per reading, from a fixed start."""

    def __init__(self, start: datetime = datetime(2026, 5, 9, 8, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        current = self.now
        self.now += timedelta(seconds=1)
        return current


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.connect(database_url)
    yield opened
    opened.close()


@pytest.fixture
def trail(store: Store) -> AuditTrail:
    return AuditTrail(store.engine, KEY, clock=StepClock())


def fill(trail: AuditTrail, count: int) -> None:
    for n in range(1, count + 1):
        trail.record(
            actor=f"analyst{n % 3}",
            action=list(AuditAction)[n % len(AuditAction)],
            subject=f"failed_message:{n}",
            reason=f"reason {n}",
            before_sha256=f"{n:064x}",
            after_sha256=None if n % 2 else f"{n + 1000:064x}",
            details={"n": n, "note": "größe"},
        )


def disable_guards(engine: Engine) -> None:
    """What an administrator can do: take the append-only triggers out of the way."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(
                text("ALTER TABLE audit_entry DISABLE TRIGGER audit_entry_append_only")
            )
        else:
            connection.execute(text("DROP TRIGGER IF EXISTS audit_entry_no_update"))
            connection.execute(text("DROP TRIGGER IF EXISTS audit_entry_no_delete"))


@pytest.fixture
def tamper(store: Store) -> Tamper:
    """Run SQL statements on the trail with the triggers disabled."""

    def run(*statements: str, **params: object) -> None:
        disable_guards(store.engine)
        with store.engine.begin() as connection:
            for statement in statements:
                connection.execute(text(statement), params)

    return run
