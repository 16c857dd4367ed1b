"""The relay's hand-over path: rows settled and claimed by this instance go out from memory.

With the in-process broker and a SQLite store: handed-over rows are published and
marked sent without being claimed or read back from the outbox; hand-over is
bounded; rows left when the relay ends go back to the backlog; a database that fails
while marking rows sent does not make them go out twice.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from adapters.memory_broker import InMemoryBroker
from contracts.errors import TransientError
from integration.broker import QueueSpec, Topology
from integration.metrics import Metrics
from integration.relay import AmqpSink, OutboxRelay
from integration.store import InboundRecord, OutboundMessage, OutboxRow, Store

EXCHANGE = "relaytest.out"
QUEUE = "relaytest.to-pasx"


class _WatchedStore(Store):
    """A store that records what ``pending_outbox`` handed out and can fail ``mark_sent``."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.claimed_from_backlog: list[int] = []
        self.mark_failures = 0
        self.marks = 0

    def pending_outbox(self, *, limit: int, destination: str | None = None) -> list[OutboxRow]:
        rows = super().pending_outbox(limit=limit, destination=destination)
        self.claimed_from_backlog += [row.id for row in rows]
        return rows

    def mark_sent(self, outbox_ids: Sequence[int], *, sent_at: datetime) -> None:
        self.marks += 1
        if self.mark_failures:
            self.mark_failures -= 1
            raise TransientError("database away while marking rows sent (test)")
        super().mark_sent(outbox_ids, sent_at=sent_at)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[_WatchedStore]:
    plain = Store.connect(f"sqlite:///{tmp_path / 'db.sqlite'}", instance_id="me")
    watched = _WatchedStore(plain.engine, instance_id="me")
    yield watched
    watched.close()


@pytest.fixture
def broker() -> InMemoryBroker:
    memory = InMemoryBroker(f"relay-{uuid.uuid4().hex[:8]}")
    memory.declare(
        Topology(
            outbound_exchange=EXCHANGE,
            queues=(QueueSpec(name=QUEUE, exchange=EXCHANGE, bindings=("pasx.#",)),),
        )
    )
    return memory


def _relay(store: Store, broker: InMemoryBroker, **options: object) -> OutboxRelay:
    metrics = Metrics(CollectorRegistry(), routes=["process-order"], contracts=[], version="t")
    return OutboxRelay(
        store=store,
        sink=AmqpSink(broker, metrics),
        metrics=metrics,
        idle_wait_s=0.02,
        backoff_max_s=0.05,
        **options,  # type: ignore[arg-type]
    )


def _record(key: str) -> InboundRecord:
    return InboundRecord(
        idempotency_key=key,
        content_sha256="0" * 64,
        route="process-order",
        contract="sap-idoc/LOIPRO01/1",
        source_message_id=None,
        received_at=datetime.now(UTC),
        outputs=[
            OutboundMessage(
                message_id=f"{key}/schedule",
                destination="amqp",
                exchange=EXCHANGE,
                routing_key="pasx.ProductionSchedule",
                headers={"x-mesbridge-route": "process-order"},
                body=f"<schedule key='{key}'/>".encode(),
                content_type="application/xml",
            )
        ],
    )


def _settle(store: Store, keys: Sequence[str]) -> list[OutboxRow]:
    _, claimed = store.settle_and_claim([_record(key) for key in keys], claim={"amqp"})
    return claimed


def _drain(broker: InMemoryBroker) -> list[str]:
    ids: list[str] = []
    while (delivery := broker.get(QUEUE)) is not None:
        ids.append(delivery.message_id or "")
    return ids


def _run(relay: OutboxRelay) -> threading.Thread:
    thread = threading.Thread(target=relay.run, daemon=True)
    thread.start()
    return thread


def _wait_for(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.01)
    raise AssertionError("not reached in time")


def test_handed_over_rows_go_out_from_memory(store: _WatchedStore, broker: InMemoryBroker) -> None:
    relay = _relay(store, broker)
    thread = _run(relay)
    try:
        claimed = _settle(store, [f"k{n}" for n in range(20)])
        assert relay.hand_over(claimed)
        _wait_for(lambda: store.outbox_backlog() == 0)
    finally:
        relay.stop()
        thread.join(5)
    assert sorted(_drain(broker)) == sorted(f"k{n}/schedule" for n in range(20))
    assert not set(store.claimed_from_backlog) & {row.id for row in claimed}


def test_hand_over_is_bounded(store: _WatchedStore, broker: InMemoryBroker) -> None:
    relay = _relay(store, broker, max_handed_over=2)
    first, second, third = (_settle(store, [key]) for key in ("a", "b", "c"))
    assert relay.hand_over(first) and relay.hand_over(second)
    assert not relay.hand_over(third, timeout_s=0.05), "full: the caller releases these"
    store.release([row.id for row in third])
    thread = _run(relay)
    try:
        _wait_for(lambda: store.outbox_backlog() == 0)
    finally:
        relay.stop()
        thread.join(5)
    assert sorted(_drain(broker)) == ["a/schedule", "b/schedule", "c/schedule"]


def test_rows_left_at_the_end_return_to_the_backlog(
    store: _WatchedStore, broker: InMemoryBroker, tmp_path: Path
) -> None:
    relay = _relay(store, broker)
    broker.set_reachable(False)  # nothing can be delivered
    thread = _run(relay)
    claimed = _settle(store, ["k1", "k2"])
    assert relay.hand_over(claimed)
    relay.stop()
    thread.join(5)
    assert not thread.is_alive()
    assert not relay.hand_over(_settle(store, ["k3"]), timeout_s=0.01), "the relay has ended"
    other = Store.connect(f"sqlite:///{tmp_path / 'db.sqlite'}", migrate=False, instance_id="x")
    try:
        assert {row.message_id for row in other.pending_outbox(limit=10)} == {
            "k1/schedule",
            "k2/schedule",
        }
    finally:
        other.close()


def test_a_failed_mark_is_retried_not_resent(store: _WatchedStore, broker: InMemoryBroker) -> None:
    store.mark_failures = 2
    relay = _relay(store, broker)
    thread = _run(relay)
    try:
        assert relay.hand_over(_settle(store, ["k1", "k2", "k3"]))
        _wait_for(lambda: store.outbox_backlog() == 0)
    finally:
        relay.stop()
        thread.join(5)
    assert store.marks >= 3
    assert sorted(_drain(broker)) == ["k1/schedule", "k2/schedule", "k3/schedule"]
