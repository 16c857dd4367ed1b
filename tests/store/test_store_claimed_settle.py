"""``settle_and_claim``: new outbox rows written already claimed, handed back as they are stored.

Run on SQLite and PostgreSQL (where the batch goes as one ``unnest`` statement): the
rows handed back must be exactly what a relay would read from the database, the
claim must keep other instances off them, and order contexts must be upserted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from integration.store import OrderContextRow, OutboxRow, SettleOutcome, Store
from integration.store.engine import create_store_engine
from integration.store.order_contexts import OrderContexts
from tests.store.conftest import RecordFactory
from transforms.order_context import ComponentContext, OrderContext


def _context(order_number: str, plant: str) -> OrderContext:
    return OrderContext(
        order_number=order_number,
        plant=plant,
        material="000000000000200001",
        receipt_storage_location="0001",
        components=(
            ComponentContext(
                material="000000000000300010",
                phase="0010",
                plant=plant,
                storage_location=None,
                reservation="0000765432",
                reservation_item="0001",
            ),
        ),
    )


def _row(order_number: str, plant: str) -> OrderContextRow:
    return OrderContextRow.of(_context(order_number, plant))


def test_claimed_rows_are_the_stored_rows(
    store: Store, open_stores: Callable[..., Store], make_record: RecordFactory
) -> None:
    records = [make_record(f"k{n}", outputs=2) for n in range(5)]
    outcomes, claimed = store.settle_and_claim(records, claim={"amqp"})
    assert outcomes == [SettleOutcome.ACCEPTED] * 5
    # outputs_for alternates amqp and tulip: only the amqp rows are claimed and handed back.
    assert [row.destination for row in claimed] == ["amqp"] * 5
    assert all(row.claimed_by == store.instance_id for row in claimed)
    other = open_stores(instance_id="other")
    pending = other.pending_outbox(limit=100)
    assert {row.destination for row in pending} == {"tulip"}, "claimed rows are not offered"
    store.release([row.id for row in claimed])
    stored = {row.id: row for row in other.pending_outbox(limit=100, destination="amqp")}
    assert sorted(stored) == sorted(row.id for row in claimed)
    for row in claimed:
        again = stored[row.id]
        assert dataclasses.replace(row, claimed_by=None, claimed_until=None) == dataclasses.replace(
            again, claimed_by=None, claimed_until=None
        )


def test_outputs_are_stored_and_handed_back_in_arrival_order_not_key_order(
    store: Store, open_stores: Callable[..., Store], make_record: RecordFactory
) -> None:
    # The relays deliver in this order: a process order released and then changed must
    # reach the MES in that order, whatever its idempotency keys sort like.
    keys = ["k9", "k2", "k7", "k1", "k5"]
    _, claimed = store.settle_and_claim([make_record(k, outputs=2) for k in keys], claim={"amqp"})
    assert [row.message_id for row in claimed] == [f"{k}/out-0" for k in keys]
    assert [row.id for row in claimed] == sorted(row.id for row in claimed)
    # Not handed over (given back to the backlog): a relay claims them in the same order.
    store.release([row.id for row in claimed])
    backlog = open_stores(instance_id="other").pending_outbox(limit=100, destination="amqp")
    assert [row.message_id for row in backlog] == [f"{k}/out-0" for k in keys]


def test_claimed_rows_are_leased_and_marked_by_id(store: Store, make_record: RecordFactory) -> None:
    before = datetime.now(UTC)
    _, claimed = store.settle_and_claim([make_record("k1", outputs=1)], claim={"amqp"})
    (row,) = claimed
    assert isinstance(row, OutboxRow)
    assert row.claimed_until is not None and row.claimed_until > before + timedelta(seconds=30)
    store.mark_sent([row.id], sent_at=datetime.now(UTC))
    assert store.outbox_backlog() == 0


def test_repeats_claim_nothing(store: Store, make_record: RecordFactory) -> None:
    store.settle_and_claim([make_record("k1", outputs=2)], claim={"amqp"})
    outcomes, claimed = store.settle_and_claim(
        [make_record("k1", outputs=2), make_record("k1", body=b"other", outputs=2)],
        claim={"amqp"},
    )
    assert outcomes == [SettleOutcome.DUPLICATE, SettleOutcome.CONFLICT]
    assert claimed == []


def test_order_contexts_are_upserted_last_one_wins(
    store: Store, database_url: str, make_record: RecordFactory
) -> None:
    first = dataclasses.replace(make_record("k1"), order_contexts=(_row("1000234", "1100"),))
    store.settle_and_claim([first], claim=())
    second = dataclasses.replace(
        make_record("k2"),
        order_contexts=(_row("1000234", "1200"), _row("1000235", "1100")),
    )
    third = dataclasses.replace(make_record("k3"), order_contexts=(_row("1000235", "1300"),))
    store.settle_and_claim([second, third], claim=())
    engine = create_store_engine(database_url)
    try:
        contexts = OrderContexts(engine)
        assert contexts.lookup("1000234") == _context("1000234", "1200")
        assert contexts.lookup("1000235") == _context("1000235", "1300")
        assert contexts.lookup("1000236") is None
    finally:
        engine.dispose()


def test_a_new_key_whose_output_was_made_before_is_a_repeated_output(
    store: Store, make_record: RecordFactory
) -> None:
    packet = make_record("k1", outputs=2)
    store.settle_and_claim([packet], claim={"amqp"})
    again = dataclasses.replace(make_record("k2"), outputs=packet.outputs[1:])
    twice = dataclasses.replace(make_record("k3"), outputs=[*packet.outputs[:1]] * 2)
    fresh = make_record("k4")
    outcomes, claimed = store.settle_and_claim(
        [again, make_record("k2", body=b"other"), fresh, twice], claim={"amqp"}
    )
    assert outcomes == [
        SettleOutcome.REPEATED_OUTPUT,
        SettleOutcome.REPEATED_OUTPUT,
        SettleOutcome.ACCEPTED,
        SettleOutcome.REPEATED_OUTPUT,
    ]
    assert [row.message_id for row in claimed] == [o.message_id for o in fresh.outputs]
    # The repeated keys took no effect: they can be replayed once the review is done.
    outcomes, _ = store.settle_and_claim([make_record("k2")], claim={"amqp"})
    assert outcomes == [SettleOutcome.ACCEPTED]
