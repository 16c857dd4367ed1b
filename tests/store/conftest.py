"""Fixtures for the store tests: one capability suite, run on SQLite and on PostgreSQL.

``database_url`` is parametrised over both backends. SQLite gets a file in the
test's tmp_path; PostgreSQL gets a fresh schema in the ``test`` database, named
after this session (``mbtest_<session>_<n>``) and dropped after the test; the
session sweeps any it left behind. Tests that need no running server (closed
port, URL parsing) do not use ``database_url``.
"""

from __future__ import annotations

import hashlib
import itertools
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from integration.store import InboundRecord, OutboundMessage, Store

SESSION_TOKEN = uuid.uuid4().hex[:10]
_schema_numbers = itertools.count(1)

RecordFactory = Callable[..., InboundRecord]


@pytest.fixture(scope="session")
def pg_admin(postgres_url: str) -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the test database, for creating and dropping schemas."""
    engine = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    yield engine
    with engine.connect() as connection:
        leftovers = connection.execute(
            text("SELECT nspname FROM pg_namespace WHERE nspname LIKE :prefix"),
            {"prefix": f"mbtest_{SESSION_TOKEN}_%"},
        ).scalars()
        for schema in list(leftovers):
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    engine.dispose()


@pytest.fixture
def postgres_schema_url(pg_admin: Engine, postgres_url: str) -> Iterator[str]:
    """A URL whose connections use a schema of their own (via search_path)."""
    schema = f"mbtest_{SESSION_TOKEN}_{next(_schema_numbers)}"
    with pg_admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with pg_admin.connect() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('store') / 'mesbridge.db'}"
    url: str = request.getfixturevalue("postgres_schema_url")
    return url


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.connect(database_url, instance_id="relay-test")
    yield opened
    opened.close()


@pytest.fixture
def open_stores(database_url: str) -> Iterator[Callable[..., Store]]:
    """Open further stores (own engine, own pool) on the same database: other instances."""
    opened: list[Store] = []

    def open_store(**options: Any) -> Store:
        new = Store.connect(database_url, migrate=False, **options)
        opened.append(new)
        return new

    yield open_store
    for each in opened:
        each.close()


def sha256(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def outputs_for(key: str, count: int, *, tag: str = "") -> Sequence[OutboundMessage]:
    return [
        OutboundMessage(
            message_id=f"{key}/out-{n}{tag}",
            destination="amqp" if n % 2 == 0 else "tulip",
            exchange="mesbridge.out" if n % 2 == 0 else None,
            routing_key="pasx.ProductionSchedule" if n % 2 == 0 else "tulip.workorders",
            headers={"x-source-key": key, "x-output": str(n)},
            body=f"<out n='{n}' key='{key}'/>".encode() + b"\x00\xff",
            content_type="application/xml",
        )
        for n in range(count)
    ]


@pytest.fixture
def make_record() -> RecordFactory:
    """An input record; the content hash follows ``body``, the outputs follow the key."""

    def make(
        key: str,
        *,
        body: bytes = b"<IDOC/>",
        outputs: int = 1,
        tag: str = "",
        received_at: datetime | None = None,
    ) -> InboundRecord:
        return InboundRecord(
            idempotency_key=key,
            content_sha256=sha256(body),
            route="sap.LOIPRO",
            contract="sap-idoc/LOIPRO01/1",
            source_message_id=f"amqp-{key}",
            received_at=received_at or datetime(2026, 5, 9, 7, 35, 25, 123456, tzinfo=UTC),
            outputs=outputs_for(key, outputs, tag=tag),
        )

    return make


Counts = Callable[[], dict[str, int]]


@pytest.fixture
def counts(store: Store) -> Counts:
    """Row counts of the store's tables, read straight from the database."""

    def read() -> dict[str, int]:
        with store.engine.connect() as connection:
            return {
                table: int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
                for table in ("inbox", "outbox", "failed_message")
            }

    return read


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A local port that refuses connections: bound (so nobody else gets it), never listening."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        yield holder.getsockname()[1]
