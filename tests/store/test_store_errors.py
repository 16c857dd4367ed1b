"""The store's edge: transient errors become TransientError, bugs stay bugs, URLs are checked.

The closed-port tests need no database server: they prove that an outage is
reported as transient (retry, do not park) and never leaks a password.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import exc as sa_exc

from contracts.errors import ConfigurationError, TransientError
from integration.store import InboundRecord, Store, is_transient
from integration.store.engine import create_store_engine, normalise_url

RecordFactory = Callable[..., InboundRecord]


def test_ping_answers_when_the_database_is_there(store: Store) -> None:
    store.ping()


def test_ping_against_a_closed_port_is_transient_and_hides_the_password(closed_port: int) -> None:
    url = f"postgresql://mesbridge:s3cret@127.0.0.1:{closed_port}/mesbridge?connect_timeout=2"
    store = Store.connect(url, migrate=False)
    try:
        with pytest.raises(TransientError) as caught:
            store.ping()
    finally:
        store.close()
    text = str(caught.value)
    assert "s3cret" not in text
    assert f"127.0.0.1:{closed_port}" in text
    assert "checking readiness" in text
    assert isinstance(caught.value.__cause__, sa_exc.OperationalError)


def test_connect_with_migration_to_a_closed_port_is_transient(closed_port: int) -> None:
    with pytest.raises(TransientError, match="upgrading the schema"):
        Store.connect(f"postgresql://postgres@127.0.0.1:{closed_port}/test?connect_timeout=2")


def test_every_operation_on_a_closed_port_is_transient(
    closed_port: int, make_record: RecordFactory
) -> None:
    store = Store.connect(
        f"postgresql://postgres@127.0.0.1:{closed_port}/test?connect_timeout=2", migrate=False
    )
    try:
        operations: list[Callable[[], object]] = [
            lambda: store.settle_batch([make_record("k1")]),
            lambda: store.pending_outbox(limit=1),
            lambda: store.mark_sent([1], sent_at=make_record("k1").received_at),
            store.outbox_backlog,
            lambda: store.lookup("k1"),
        ]
        for operation in operations:
            with pytest.raises(TransientError):
                operation()
    finally:
        store.close()


def test_a_busy_sqlite_file_is_transient(tmp_path: Path, make_record: RecordFactory) -> None:
    path = tmp_path / "busy.db"
    Store.connect(f"sqlite:///{path}").close()
    impatient = Store(create_store_engine(f"sqlite:///{path}", busy_timeout_ms=50))
    other_writer = sqlite3.connect(path, isolation_level=None)
    try:
        other_writer.execute("BEGIN IMMEDIATE")
        with pytest.raises(TransientError, match="database is locked"):
            impatient.settle_batch([make_record("k1")])
        other_writer.execute("ROLLBACK")
        assert impatient.settle_batch([make_record("k1")])  # the lock is gone: it works again
    finally:
        other_writer.close()
        impatient.close()


def test_a_missing_schema_is_a_bug_not_an_outage(
    database_url: str, make_record: RecordFactory
) -> None:
    store = Store.connect(database_url, migrate=False)
    try:
        with pytest.raises(sa_exc.DBAPIError) as caught:
            store.settle_batch([make_record("k1")])
        assert not isinstance(caught.value, TransientError)
        assert not is_transient(caught.value)
        with pytest.raises(ConfigurationError, match="schema revision none"):
            store.check_schema()
    finally:
        store.close()


def test_a_migrated_schema_passes_the_check(store: Store) -> None:
    store.check_schema()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mysql://root@localhost/mesbridge", "backend 'mysql' is not supported"),
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("not a url", "is not a URL"),
    ],
)
def test_unusable_urls_are_configuration_errors(url: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected):
        Store.connect(url, migrate=False)


def test_a_plain_postgresql_url_uses_psycopg() -> None:
    assert normalise_url("postgresql://u:p@db/mesbridge").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@db/x").drivername == "postgresql+psycopg"


def test_a_sqlite_file_gets_its_directory(tmp_path: Path) -> None:
    store = Store.connect(f"sqlite:///{tmp_path / 'var' / 'deeper' / 'mesbridge.db'}")
    try:
        store.ping()
    finally:
        store.close()
    assert (tmp_path / "var" / "deeper" / "mesbridge.db").is_file()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path: Path) -> None:
    store = Store.connect(f"sqlite:///{tmp_path / 'm.db'}")
    try:
        with store.engine.connect() as connection:
            pragmas = {
                name: connection.exec_driver_sql(f"PRAGMA {name}").scalar_one()
                for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
            }
    finally:
        store.close()
    assert pragmas == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": 2,
        "busy_timeout": 5000,
    }
