"""Retention: processed inbox keys past the window go with their sent outputs; nothing else does.

Written once, run on SQLite and PostgreSQL (``database_url`` is parametrised).
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Connection, text

from integration.audit import canonical_json
from integration.store import FailedMessage, InboundRecord, OutboundMessage, Store
from integration.store.retention import PurgeResult, purge_processed

NOW = datetime(2026, 5, 9, 8, 0, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=400)
OLD = NOW - timedelta(days=500)
RECENT = NOW - timedelta(days=10)


def _record(key: str, outputs: int = 1) -> InboundRecord:
    return InboundRecord(
        idempotency_key=key,
        content_sha256=hashlib.sha256(key.encode()).hexdigest(),
        route="process-order",
        contract="sap-idoc/LOIPRO01/1",
        source_message_id=None,
        received_at=OLD,
        outputs=[
            OutboundMessage(
                message_id=f"{key}/{n}",
                destination="amqp",
                exchange="mesbridge.out",
                routing_key="pasx.ProductionSchedule",
                headers={},
                body=b"<x/>",
                content_type="application/xml",
            )
            for n in range(outputs)
        ],
    )


def _settle(database_url: str, at: datetime, keys: list[str], *, send: bool) -> None:
    store = Store.connect(database_url, migrate=False, clock=lambda: at)
    try:
        store.settle_batch([_record(key, outputs=2) for key in keys])
        if send:
            rows = store.pending_outbox(limit=1000)
            mine = [r.id for r in rows if r.message_id.rsplit("/", 1)[0] in keys]
            store.mark_sent(mine, sent_at=at)
            store.release([r.id for r in rows if r.id not in mine])
    finally:
        store.close()


# Keys in an order where code-point sorting matters: upper case sorts before lower case.
OLD_SENT = ["sap-idoc:ERP:LOIPRO:0002", "sap-idoc:ERP:LOIPRO:0001", "B2MML:bod-1", "b2mml:ä", "x"]
OLD_UNSENT = ["sap-idoc:ERP:LOIPRO:0003"]
RECENT_SENT = ["sap-idoc:ERP:LOIPRO:0009"]


@pytest.fixture
def filled(store: Store, database_url: str) -> Store:
    _settle(database_url, OLD, OLD_SENT, send=True)
    _settle(database_url, OLD, OLD_UNSENT, send=False)
    _settle(database_url, RECENT, RECENT_SENT, send=True)
    store.record_failure(
        FailedMessage(
            body=b"<bad/>",
            headers={},
            route="process-order",
            contract=None,
            error_class="MalformedInput",
            error_text="not XML",
            first_failed_at=OLD,
            last_failed_at=OLD,
            idempotency_key=OLD_SENT[0],
        )
    )
    return store


def _keys(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        return set(connection.execute(text("SELECT idempotency_key FROM inbox")).scalars())


def _count(store: Store, table: str) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def test_a_dry_run_counts_and_changes_nothing(filled: Store) -> None:
    result = purge_processed(filled.engine, before=CUTOFF, dry_run=True)

    assert result.dry_run
    assert (result.inbox_rows, result.outbox_rows) == (5, 10)
    assert (result.kept_unsent, result.kept_unsent_keys) == (1, tuple(OLD_UNSENT))
    assert _count(filled, "inbox") == 7
    assert _count(filled, "outbox") == 14


def test_purge_removes_old_processed_keys_and_their_sent_outputs_only(filled: Store) -> None:
    seen: list[int] = []

    result = purge_processed(filled.engine, before=CUTOFF, chunk_size=2, progress=seen.append)

    assert not result.dry_run
    assert (result.inbox_rows, result.outbox_rows, result.kept_unsent) == (5, 10, 1)
    assert seen == [2, 2, 1]
    assert _keys(filled) == set(OLD_UNSENT + RECENT_SENT)
    assert _count(filled, "outbox") == 4  # the unsent pair and the recent pair
    assert _count(filled, "failed_message") == 1  # failed messages are never purged
    expected = hashlib.sha256(canonical_json(sorted(OLD_SENT)).encode()).hexdigest()
    assert result.keys_sha256 == expected
    again = purge_processed(filled.engine, before=CUTOFF)
    assert (again.inbox_rows, again.keys_sha256) == (0, None)


def test_the_audit_hook_runs_in_the_purge_transaction(filled: Store) -> None:
    def fail(_connection: Connection, result: PurgeResult) -> None:
        assert result.inbox_rows == 5
        raise RuntimeError("audit entry could not be written")

    with pytest.raises(RuntimeError, match="audit entry"):
        purge_processed(filled.engine, before=CUTOFF, on_purged=fail)

    assert _count(filled, "inbox") == 7  # rolled back: nothing purged without its entry
    assert _count(filled, "outbox") == 14


def test_a_naive_cutoff_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        purge_processed(store.engine, before=datetime(2025, 1, 1))
