"""A settle whose COMMIT answer is lost: its claimed rows are taken back, never doubled.

When the connection breaks during COMMIT, ``settle_and_claim`` raises without
knowing whether the batch took effect. The consumer loop does not acknowledge,
so the inputs come again and settle as duplicates; the rows the first attempt
may have written sit claimed by this instance. ``reclaim_uncertain`` takes
exactly those back (by the unique lease the attempt wrote) so they are
delivered now instead of after the lease. Run on SQLite and PostgreSQL, with a
COMMIT that really reaches the database and an error in place of its answer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Connection

from integration.store import SettleOutcome, Store
from tests.store.conftest import RecordFactory


class CommitAnswerLost(Exception):
    """The database committed; the client never heard."""


@contextmanager
def commit_answer_lost(store: Store, *, reaches_database: bool) -> Iterator[None]:
    def on_commit(connection: Connection) -> None:
        if reaches_database:
            connection.connection.dbapi_connection.commit()  # type: ignore[union-attr]
        raise CommitAnswerLost

    event.listen(store.engine, "commit", on_commit)
    try:
        yield
    finally:
        event.remove(store.engine, "commit", on_commit)


def test_rows_of_a_committed_settle_are_taken_back_once(
    store: Store, make_record: RecordFactory
) -> None:
    records = [make_record(f"k{n}", outputs=2) for n in range(3)]
    with commit_answer_lost(store, reaches_database=True), pytest.raises(CommitAnswerLost):
        store.settle_and_claim(records, claim={"amqp"})
    # The commit went through: the rows exist, claimed by this instance, offered to no one.
    assert [r.destination for r in store.pending_outbox(limit=100)] == ["tulip"] * 3
    # The unacknowledged inputs come again: duplicates, nothing new to claim.
    outcomes, claimed = store.settle_and_claim(records, claim={"amqp"})
    assert outcomes == [SettleOutcome.DUPLICATE] * 3
    assert claimed == []
    taken_back = store.reclaim_uncertain()
    assert sorted(row.message_id for row in taken_back) == sorted(
        output.message_id
        for record in records
        for output in record.outputs
        if output.destination == "amqp"
    )
    assert all(row.claimed_by == store.instance_id for row in taken_back)
    assert all(row.claimed_until and row.claimed_until > datetime.now(UTC) for row in taken_back)
    assert store.reclaim_uncertain() == []


def test_a_settle_that_did_not_commit_leaves_nothing_to_take_back(
    store: Store, make_record: RecordFactory
) -> None:
    records = [make_record("k1", outputs=2)]
    with commit_answer_lost(store, reaches_database=False), pytest.raises(CommitAnswerLost):
        store.settle_and_claim(records, claim={"amqp"})
    assert store.reclaim_uncertain() == []
    outcomes, claimed = store.settle_and_claim(records, claim={"amqp"})
    assert outcomes == [SettleOutcome.ACCEPTED]
    assert len(claimed) == 1


def test_rows_a_relay_claimed_after_the_lease_are_left_to_it(
    store: Store, open_stores: Callable[..., Store], make_record: RecordFactory
) -> None:
    del store  # the migrated database; this instance runs on a clock of its own
    now = [datetime(2026, 11, 25, 8, 0, tzinfo=UTC)]
    store = open_stores(instance_id="relay-test", clock=lambda: now[0])
    records = [make_record("k1", outputs=1)]  # one AMQP output
    with commit_answer_lost(store, reaches_database=True), pytest.raises(CommitAnswerLost):
        store.settle_and_claim(records, claim={"amqp"})
    now[0] += timedelta(minutes=5)  # the lease ran out; the backlog relay sends the row
    (row,) = store.pending_outbox(limit=10, destination="amqp")
    assert store.reclaim_uncertain() == [], "the relay holds it under a lease of its own"
    store.mark_sent([row.id], sent_at=now[0])
    assert store.outbox_backlog() == 0
