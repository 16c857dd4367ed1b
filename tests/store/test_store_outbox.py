"""Outbox capability: oldest first, claims and leases, mark_sent, release, competing relays.

Written once, run on SQLite and PostgreSQL (``database_url`` is parametrised).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from integration.store import InboundRecord, Store
from integration.store.models import outbox

RecordFactory = Callable[..., InboundRecord]
T0 = datetime(2026, 5, 9, 8, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def relay(open_stores: Callable[..., Store], clock: Clock, store: Store) -> Store:
    # ``store`` has migrated the database; this instance shares its clock with the test.
    return open_stores(instance_id="relay-a", clock=clock, claim_lease=timedelta(seconds=30))


def settle_at(
    relay: Store, clock: Clock, make_record: RecordFactory, keys: list[str], outputs: int = 1
) -> None:
    for key in keys:
        relay.settle_batch([make_record(key, outputs=outputs)])
        clock.advance(seconds=1)


def test_pending_rows_come_oldest_first_up_to_the_limit(
    relay: Store, clock: Clock, make_record: RecordFactory
) -> None:
    # Keys sort the other way round from their arrival: order must follow time, not key.
    settle_at(relay, clock, make_record, ["k5", "k4", "k3", "k2", "k1"])

    first = relay.pending_outbox(limit=2)
    rest = relay.pending_outbox(limit=10)

    assert [r.message_id for r in first] == ["k5/out-0", "k4/out-0"]
    assert [r.message_id for r in rest] == ["k3/out-0", "k2/out-0", "k1/out-0"]
    assert [r.created_at for r in first + rest] == [T0 + timedelta(seconds=n) for n in range(5)]
    assert {r.claimed_by for r in first + rest} == {"relay-a"}
    # Every claim's lease is unique (Store.reclaim_uncertain tells settles apart by it):
    # on a clock that stands still, the second claim's lease is a microsecond later.
    lease = clock.now + timedelta(seconds=30)
    assert {r.claimed_until for r in first} == {lease}
    assert {r.claimed_until for r in rest} == {lease + timedelta(microseconds=1)}
    assert relay.pending_outbox(limit=10) == []
    assert relay.outbox_backlog() == 5  # claimed is not sent


def test_destination_filter(relay: Store, clock: Clock, make_record: RecordFactory) -> None:
    settle_at(relay, clock, make_record, ["k1", "k2"], outputs=2)

    tulip = relay.pending_outbox(limit=10, destination="tulip")
    amqp = relay.pending_outbox(limit=10, destination="amqp")

    assert [r.message_id for r in tulip] == ["k1/out-1", "k2/out-1"]
    assert [r.message_id for r in amqp] == ["k1/out-0", "k2/out-0"]
    assert relay.pending_outbox(limit=10, destination="sap") == []


def test_mark_sent_takes_rows_out_for_good(
    relay: Store, clock: Clock, make_record: RecordFactory
) -> None:
    settle_at(relay, clock, make_record, ["k1", "k2", "k3"])
    claimed = relay.pending_outbox(limit=2)

    relay.mark_sent([r.id for r in claimed], sent_at=clock.now)
    relay.mark_sent([r.id for r in claimed], sent_at=clock.now + timedelta(hours=1))  # repeat

    assert relay.outbox_backlog() == 1
    clock.advance(minutes=10)  # long past every lease
    assert [r.message_id for r in relay.pending_outbox(limit=10)] == ["k3/out-0"]
    sent_at = _sent_at(relay)
    assert sent_at == {
        claimed[0].id: T0 + timedelta(seconds=3),
        claimed[1].id: T0 + timedelta(seconds=3),
    }


def _sent_at(store: Store) -> dict[int, datetime]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(outbox.c.id, outbox.c.sent_at).where(outbox.c.sent_at.is_not(None))
        )
        return dict(rows.all())


def test_a_lapsed_lease_hands_the_rows_to_another_relay(
    relay: Store,
    clock: Clock,
    make_record: RecordFactory,
    open_stores: Callable[..., Store],
) -> None:
    other = open_stores(instance_id="relay-b", clock=clock, claim_lease=timedelta(seconds=30))
    settle_at(relay, clock, make_record, ["k1", "k2"])
    taken = relay.pending_outbox(limit=10)  # relay-a then dies without mark_sent

    clock.advance(seconds=29)
    assert other.pending_outbox(limit=10) == []
    clock.advance(seconds=1)
    retaken = other.pending_outbox(limit=10)

    assert [r.id for r in retaken] == [r.id for r in taken]
    assert {r.claimed_by for r in retaken} == {"relay-b"}


def test_release_gives_rows_back_at_once(
    relay: Store, clock: Clock, make_record: RecordFactory
) -> None:
    settle_at(relay, clock, make_record, ["k1", "k2"])
    taken = relay.pending_outbox(limit=10)

    relay.release([taken[0].id])

    again = relay.pending_outbox(limit=10)
    assert [r.id for r in again] == [taken[0].id]


def test_limit_must_be_positive(relay: Store) -> None:
    with pytest.raises(ValueError, match="limit"):
        relay.pending_outbox(limit=0)


def test_mark_sent_refuses_a_naive_time(relay: Store) -> None:
    with pytest.raises(ValueError, match="time zone"):
        relay.mark_sent([1], sent_at=datetime(2026, 5, 9, 8, 0))


def test_competing_relays_never_get_the_same_row(
    store: Store, make_record: RecordFactory, open_stores: Callable[..., Store]
) -> None:
    records = [make_record(f"k{n:04d}", outputs=3) for n in range(150)]
    for at in range(0, len(records), 50):
        store.settle_batch(records[at : at + 50])
    relays = [open_stores(instance_id=f"relay-{n}") for n in range(4)]
    start = threading.Barrier(len(relays))
    taken: list[list[int]] = [[] for _ in relays]
    errors: list[BaseException] = []

    def drain(index: int) -> None:
        try:
            start.wait()
            while rows := relays[index].pending_outbox(limit=7):
                taken[index].extend(r.id for r in rows)
                relays[index].mark_sent([r.id for r in rows], sent_at=datetime.now(UTC))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=drain, args=(n,)) for n in range(len(relays))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    every = [row_id for ids in taken for row_id in ids]
    assert len(every) == 450
    assert [row_id for row_id, n in Counter(every).items() if n > 1] == []
    assert store.outbox_backlog() == 0
    assert sum(1 for ids in taken if ids) >= 2, "only one relay ever got work: no competition"
