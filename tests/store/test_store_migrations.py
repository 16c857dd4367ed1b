"""Migrations: up, down to base, up again; models equal the migrated schema; concurrent starts.

Written once, run on SQLite and PostgreSQL (``database_url`` is parametrised).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, Engine, Integer, MetaData, inspect

from integration.store import Store, current_revision, downgrade, head_revision, upgrade
from integration.store.engine import create_store_engine
from integration.store.migrate import main
from integration.store.models import metadata

STORE_TABLES = {
    "inbox",
    "outbox",
    "failed_message",
    "failed_message_revision",
    "audit_entry",
    "order_context",
}


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    made = create_store_engine(database_url)
    yield made
    made.dispose()


def schema_differences(engine: Engine, target: MetaData) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, target))


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def test_upgrade_downgrade_upgrade(engine: Engine) -> None:
    assert current_revision(engine) is None
    assert head_revision() == "0005"

    upgrade(engine)
    assert current_revision(engine) == "0005"
    assert tables(engine) >= STORE_TABLES
    assert schema_differences(engine, metadata) == []

    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert tables(engine) <= {"alembic_version"}

    upgrade(engine)
    upgrade(engine)  # already at head: nothing to do
    assert current_revision(engine) == "0005"
    assert schema_differences(engine, metadata) == []


def test_the_model_comparison_would_see_a_difference(engine: Engine) -> None:
    # Guards the test above against comparing nothing: a changed model must show up.
    upgrade(engine)
    changed = MetaData(naming_convention=metadata.naming_convention)
    for table in metadata.sorted_tables:
        table.to_metadata(changed)
    changed.tables["outbox"].append_column(Column("priority", Integer(), nullable=True))

    differences = schema_differences(engine, changed)

    assert [d[0] for d in differences if isinstance(d, tuple)] == ["add_column"]


def test_a_downgraded_database_works_again_after_upgrade(database_url: str, engine: Engine) -> None:
    upgrade(engine)
    downgrade(engine, "base")
    store = Store.connect(database_url)
    try:
        store.check_schema()
        store.ping()
        assert store.outbox_backlog() == 0
    finally:
        store.close()


def test_instances_starting_together_migrate_once(database_url: str, engine: Engine) -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def start_instance() -> None:
        try:
            start.wait()
            Store.connect(database_url).close()
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=start_instance) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    assert current_revision(engine) == "0005"
    assert schema_differences(engine, metadata) == []


def test_operator_commands(database_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--url", database_url, "current"]) == 0
    assert "current: none (empty database)" in capsys.readouterr().out

    assert main(["--url", database_url, "upgrade"]) == 0
    assert "is at revision 0005" in capsys.readouterr().out

    assert main(["--url", database_url, "current"]) == 0
    shown = capsys.readouterr().out
    assert "current: 0005" in shown
    assert "head:    0005" in shown

    assert main(["--url", database_url, "downgrade", "base"]) == 0
    assert "is at revision none" in capsys.readouterr().out


def test_an_unknown_revision_is_a_configuration_error(
    database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", database_url, "upgrade", "9999"]) == 1
    assert "9999" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://postgres@db.invalid:5432/offline", "TIMESTAMP WITH TIME ZONE"),
        ("sqlite:///{tmp}/offline.db", "DATETIME"),
    ],
    ids=["postgresql", "sqlite"],
)
def test_upgrade_sql_prints_the_ddl_and_touches_nothing(
    url: str, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = url.format(tmp=tmp_path)

    assert main(["--url", url, "upgrade", "--sql"]) == 0

    ddl = capsys.readouterr().out
    for needed in ("CREATE TABLE inbox", "CREATE TABLE outbox", "CREATE TABLE failed_message"):
        assert needed in ddl
    assert "CREATE INDEX ix_outbox_pending ON outbox (created_at, id) WHERE sent_at IS NULL" in ddl
    assert expected in ddl
    assert not (tmp_path / "offline.db").exists()


def test_an_unreachable_database_fails_the_upgrade_as_transient(
    closed_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"postgresql://postgres@127.0.0.1:{closed_port}/test?connect_timeout=2"
    assert main(["--url", url, "upgrade"]) == 1
    assert "unavailable while upgrading the schema" in capsys.readouterr().err
