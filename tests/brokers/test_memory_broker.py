"""The in-process broker beyond the shared capability suite: registry, helpers, fault
injection, never-drop, and many threads at once."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Iterator

import pytest

from adapters.brokers import connect_broker
from adapters.memory_broker import InMemoryBroker, forget_memory_broker, memory_broker
from contracts.errors import TransientError
from integration.broker import Envelope, PublishResult, QueueSpec, Topology

CONFIRMED = PublishResult.CONFIRMED


@pytest.fixture
def broker() -> InMemoryBroker:
    made = InMemoryBroker("unit")
    made.declare(
        Topology(
            queues=(
                QueueSpec(
                    name="work",
                    exchange="mesbridge.in",
                    bindings=("sap.#",),
                    dead_letter_exchange="mesbridge.dlx",
                ),
                QueueSpec(name="no-dlx", exchange="mesbridge.in", bindings=("tulip.#",)),
                QueueSpec(
                    name="dlx-nowhere",
                    exchange="mesbridge.in",
                    bindings=("pasx.#",),
                    dead_letter_exchange="mesbridge.void",
                ),
            )
        )
    )
    return made


@pytest.fixture
def registry_name() -> Iterator[str]:
    name = f"reg-{uuid.uuid4().hex[:8]}"
    yield name
    forget_memory_broker(name)


def test_memory_urls_with_one_name_reach_one_broker(registry_name: str) -> None:
    first = connect_broker(f"memory://{registry_name}")
    assert connect_broker(f"memory://{registry_name}") is first
    assert memory_broker(registry_name) is first
    assert connect_broker(f"memory://{registry_name}-other") is not first
    assert connect_broker("memory://") is memory_broker("default")
    forget_memory_broker(f"{registry_name}-other")


def test_messages_outlive_close_and_forget_starts_afresh(registry_name: str) -> None:
    broker = memory_broker(registry_name)
    broker.declare(Topology(queues=(QueueSpec(name="q", exchange="x", bindings=("#",)),)))
    assert broker.publish("x", "k", b"kept") is CONFIRMED
    broker.close()

    assert memory_broker(registry_name).queue_depth("q") == 1
    forget_memory_broker(registry_name)
    assert memory_broker(registry_name).queue_names() == []


def test_helpers_publish_peek_get_and_count(broker: InMemoryBroker) -> None:
    assert broker.publish("mesbridge.in", "sap.LOIPRO", b"1", message_id="m1") is CONFIRMED
    assert broker.publish("mesbridge.in", "sap.LOIPRO", b"2", headers={"h": "v"}) is CONFIRMED
    assert broker.publish("mesbridge.in", "nobody", b"3") is PublishResult.UNROUTABLE

    peeked = broker.peek("work")
    assert peeked is not None and peeked.message_id == "m1"
    assert broker.queue_depth("work") == 2
    taken = broker.get("work")
    assert taken is not None and taken.body == b"1"
    second = broker.get("work")
    assert second is not None and second.headers == {"h": "v"} and second.message_id
    assert broker.get("work") is None and broker.peek("work") is None
    assert broker.queue_depth("work") == 0
    assert "work" in broker.queue_names()
    with pytest.raises(KeyError, match="no queue 'missing'"):
        broker.queue_depth("missing")


def test_unacked_are_counted_apart_from_ready(broker: InMemoryBroker) -> None:
    for body in (b"a", b"b", b"c"):
        broker.publish("mesbridge.in", "sap.X", body)
    consumer = broker.consumer("work", prefetch=0)  # 0: unlimited, as in AMQP

    got = consumer.fetch(2, 0)
    assert (broker.queue_depth("work"), broker.unacked_count("work")) == (1, 2)
    consumer.ack_through(got[0].delivery_tag)
    assert broker.unacked_count("work") == 1
    consumer.close()
    assert (broker.queue_depth("work"), broker.unacked_count("work")) == (2, 0)


def test_redelivery_counts_like_a_quorum_queue(broker: InMemoryBroker) -> None:
    broker.publish("mesbridge.in", "sap.X", b"a")
    consumer = broker.consumer("work", prefetch=1)
    (first,) = consumer.fetch(1, 0)
    assert "x-delivery-count" not in first.headers
    consumer.reject(first.delivery_tag, requeue=True)
    (second,) = consumer.fetch(1, 0)
    consumer.close()

    assert second.headers["x-delivery-count"] == 1
    third = broker.get("work")
    assert third is not None and third.headers["x-delivery-count"] == 2


@pytest.mark.parametrize("queue", ["no-dlx", "dlx-nowhere"])
def test_a_message_rabbitmq_would_drop_is_kept_in_lost_and_found(
    broker: InMemoryBroker, queue: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = "tulip.done" if queue == "no-dlx" else "pasx.ProductionPerformance"
    broker.publish("mesbridge.in", key, b"precious", message_id="p1")
    consumer = broker.consumer(queue, prefetch=1)
    (delivery,) = consumer.fetch(1, 0)

    with caplog.at_level(logging.WARNING, logger="adapters.memory_broker"):
        consumer.reject(delivery.delivery_tag, requeue=False)

    (lost,) = broker.lost_and_found()
    assert (lost.body, lost.message_id) == (b"precious", "p1")
    assert lost.headers["x-death"][0]["queue"] == queue
    assert "kept in lost_and_found" in caplog.text
    assert broker.queue_depth(queue) == 0 and broker.unacked_count(queue) == 0


def test_dead_lettering_twice_from_one_queue_counts_in_x_death(broker: InMemoryBroker) -> None:
    broker.publish("mesbridge.in", "sap.X", b"a", message_id="a")
    for _ in range(2):
        consumer = broker.consumer("work", prefetch=1)
        (delivery,) = consumer.fetch(1, 1.0)
        consumer.reject(delivery.delivery_tag, requeue=False)
        consumer.close()
        parked = broker.get("mesbridge.parked")
        assert parked is not None
        # Replay: the parked copy goes back with its headers, as an operator would.
        envelope = Envelope(
            exchange="mesbridge.in",
            routing_key="sap.X",
            body=parked.body,
            message_id="a",
            headers=parked.headers,
        )
        assert broker.publisher().publish_batch([envelope]) == [CONFIRMED]

    replayed = broker.get("work")
    assert replayed is not None
    (death,) = replayed.headers["x-death"]
    assert (death["queue"], death["reason"], death["count"]) == ("work", "rejected", 2)


def test_an_outage_fails_everything_until_it_ends(broker: InMemoryBroker) -> None:
    broker.publish("mesbridge.in", "sap.X", b"a")
    consumer = broker.consumer("work", prefetch=1)
    (delivery,) = consumer.fetch(1, 0)

    broker.set_reachable(False)

    for attempt in (
        broker.ping,
        broker.publisher,
        lambda: broker.consumer("work", prefetch=1),
        lambda: broker.declare(Topology()),
        lambda: consumer.fetch(1, 0),
        lambda: consumer.ack_through(delivery.delivery_tag),
    ):
        with pytest.raises(TransientError):
            attempt()
    assert broker.queue_depth("work") == 1  # the unacked delivery went back

    broker.set_reachable(True)
    broker.ping()
    again = broker.consumer("work", prefetch=1).fetch(1, 0)
    assert [(d.body, d.redelivered) for d in again] == [(b"a", True)]


def test_a_waiting_fetch_is_woken_by_a_dropped_connection(broker: InMemoryBroker) -> None:
    consumer = broker.consumer("work", prefetch=1)
    outcome: list[BaseException] = []

    def wait() -> None:
        try:
            consumer.fetch(1, 10.0)
        except TransientError as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    threading.Event().wait(0.05)
    broker.drop_connections()
    waiter.join(2.0)

    assert not waiter.is_alive()
    assert len(outcome) == 1 and "connection was lost" in str(outcome[0])


def test_many_threads_lose_nothing_and_double_nothing(broker: InMemoryBroker) -> None:
    producers, per_producer, consumers = 4, 250, 3
    received: list[bytes] = []
    lock = threading.Lock()
    done = threading.Event()

    def produce(number: int) -> None:
        publisher = broker.publisher()
        for start in range(0, per_producer, 25):
            batch = [
                Envelope(
                    exchange="mesbridge.in",
                    routing_key="sap.X",
                    body=f"{number}-{n}".encode(),
                    message_id=f"{number}-{n}",
                )
                for n in range(start, start + 25)
            ]
            assert publisher.publish_batch(batch) == [CONFIRMED] * 25

    def consume() -> None:
        consumer = broker.consumer("work", prefetch=20)
        while not done.is_set():
            got = consumer.fetch(10, 0.05)
            if got:
                with lock:
                    received.extend(d.body for d in got)
                consumer.ack_through(got[-1].delivery_tag)
        consumer.close()

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(producers)]
    threads += [threading.Thread(target=consume) for _ in range(consumers)]
    for thread in threads:
        thread.start()
    for thread in threads[:producers]:
        thread.join(10)
    deadline = threading.Event()
    while len(received) < producers * per_producer and not deadline.wait(0.02):
        pass
    done.set()
    for thread in threads[producers:]:
        thread.join(10)

    expected = sorted(f"{p}-{n}".encode() for p in range(producers) for n in range(per_producer))
    assert sorted(received) == expected
    assert broker.queue_depth("work") == broker.unacked_count("work") == 0
