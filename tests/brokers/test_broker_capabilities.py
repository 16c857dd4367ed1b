"""The broker capability suite: every test runs on the in-process broker and on RabbitMQ.

What the consumer loop and the outbox relay rely on (integration/broker.py): topology,
topic routing, micro-batch fetch, multi-ack, redelivery, reject/dead-letter, publisher
confirms per batch with UNROUTABLE/NACKED per message, properties, threads, and
connection loss turning into TransientError with nothing lost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from contracts.errors import ConfigurationError, TransientError
from integration.broker import Envelope, PublishResult, QueueSpec
from tests.brokers.conftest import Harness, collect

CONFIRMED, UNROUTABLE, NACKED = (
    PublishResult.CONFIRMED,
    PublishResult.UNROUTABLE,
    PublishResult.NACKED,
)


def _publish(harness: Harness, routing_key: str, *bodies: bytes) -> None:
    publisher = harness.broker.publisher()
    try:
        results = publisher.publish_batch([harness.envelope(routing_key, body) for body in bodies])
    finally:
        publisher.close()
    assert results == [CONFIRMED] * len(bodies)


# -- topology ---------------------------------------------------------------------------


def test_declare_twice_is_harmless_and_routes(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    topology = harness.topology(harness.queue("work", "sap.#"))
    harness.broker.declare(topology)
    _publish(harness, "sap.LOIPRO", b"one")
    harness.broker.declare(topology)  # again: no error, nothing lost

    assert harness.depth(f"{harness.prefix}.work", expect=1) == 1
    assert harness.depth(harness.parked) == 0
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=10))
    assert [d.body for d in collect(consumer, 1)] == [b"one"]


def test_redeclaring_a_queue_with_other_dead_letter_settings_is_a_configuration_error(
    harness: Harness,
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    changed = harness.topology(harness.queue("work", "sap.#", dead_letter_routing_key="parked.x"))

    with pytest.raises(ConfigurationError, match=rf"queue '{harness.prefix}\.work'"):
        harness.broker.declare(changed)


def test_a_topology_binding_on_the_default_exchange_is_refused(harness: Harness) -> None:
    wrong = harness.topology(harness.queue("work", "sap.#", exchange=""))

    with pytest.raises(ConfigurationError, match="default exchange"):
        harness.broker.declare(wrong)


# -- routing ----------------------------------------------------------------------------

ROUTING_TABLE = [
    # (binding pattern, routing key, routed?)
    ("sap.*", "sap.LOIPRO", True),
    ("sap.*", "sap.LOIPRO.extra", False),
    ("sap.*", "sap", False),
    ("sap.#", "sap", True),
    ("sap.#", "sap.LOIPRO.extra", True),
    ("#.MBGMCR", "sap.MBGMCR", True),
    ("#.MBGMCR", "MBGMCR", True),
    ("*.ProductionPerformance", "pasx.ProductionPerformance", True),
    ("*.ProductionPerformance", "pasx.OperationsPerformance", False),
    ("tulip.*.done", "tulip.completion.done", True),
    ("tulip.*.done", "tulip.done", False),
    ("a.#.z", "a.z", True),
    ("a.#.z", "a.b.c.z", True),
    ("a.#.z", "a.b.c.y", False),
    ("exact.key", "exact.key", True),
    ("exact.key", "exact.keys", False),
]


def test_topic_routing_follows_amqp_patterns(harness: Harness) -> None:
    # One exchange per row, so each queue sees exactly its row's message or nothing.
    specs = [
        harness.queue(f"r{row}", pattern, exchange=f"{harness.prefix}.x{row}")
        for row, (pattern, _, _) in enumerate(ROUTING_TABLE)
    ]
    harness.broker.declare(harness.topology(*specs))
    envelopes = [
        Envelope(exchange=spec.exchange, routing_key=key, body=b"m", message_id=f"m{row}")
        for row, (spec, (_, key, _)) in enumerate(zip(specs, ROUTING_TABLE, strict=True))
    ]
    publisher = harness.broker.publisher()
    try:
        results = publisher.publish_batch(envelopes)
    finally:
        publisher.close()

    expected = [CONFIRMED if routed else UNROUTABLE for _, _, routed in ROUTING_TABLE]
    assert results == expected
    # A confirm means the message is in every queue it routes to: depths are final.
    for row, (pattern, key, routed) in enumerate(ROUTING_TABLE):
        assert harness.depth(specs[row].name) == int(routed), f"{pattern!r} vs {key!r}"


# -- fetch ------------------------------------------------------------------------------


def test_fetch_returns_at_most_max_messages_in_arrival_order(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    bodies = [f"{n:02}".encode() for n in range(10)]
    _publish(harness, "sap.LOIPRO", *bodies)
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=50))

    first = collect(consumer, 4)
    rest = collect(consumer, 6)

    assert len(first) == 4
    assert [d.body for d in first + rest] == bodies
    assert consumer.fetch(10, 0.05) == []


def test_fetch_waits_at_most_timeout_when_the_queue_is_empty(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=10))

    started = time.monotonic()
    assert consumer.fetch(10, 0.3) == []
    elapsed = time.monotonic() - started

    assert 0.25 <= elapsed < 1.5


def test_fetch_returns_early_once_it_has_some(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=100))
    _publish(harness, "sap.LOIPRO", b"a", b"b", b"c")

    started = time.monotonic()
    first = consumer.fetch(100, 10.0)
    elapsed = time.monotonic() - started

    assert first, "fetch returned nothing although messages were waiting"
    assert elapsed < 2.0  # far below the 10 s it was allowed to wait for 100
    assert [d.body for d in first + collect(consumer, 3 - len(first))] == [b"a", b"b", b"c"]


def test_a_waiting_fetch_wakes_up_when_a_message_arrives(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=10))
    timer = threading.Timer(0.2, _publish, args=(harness, "sap.LOIPRO", b"late"))
    timer.start()
    try:
        started = time.monotonic()
        got = consumer.fetch(10, 10.0)
        elapsed = time.monotonic() - started
    finally:
        timer.join()

    assert [d.body for d in got] == [b"late"]
    assert 0.15 <= elapsed < 5.0


def test_prefetch_bounds_the_unacknowledged_deliveries(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    _publish(harness, "sap.LOIPRO", *[f"{n}".encode() for n in range(5)])
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=2))

    first = collect(consumer, 5, within_s=0.3)
    assert [d.body for d in first] == [b"0", b"1"]

    consumer.ack_through(first[-1].delivery_tag)
    second = collect(consumer, 2)
    assert [d.body for d in second] == [b"2", b"3"]


# -- settling ---------------------------------------------------------------------------


def test_ack_through_acknowledges_exactly_up_to_the_tag(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    queue = f"{harness.prefix}.work"
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    _publish(harness, "sap.LOIPRO", b"1", b"2", b"3", b"4", b"5")
    consumer = harness.broker.consumer(queue, prefetch=10)
    deliveries = collect(consumer, 5)
    assert [d.redelivered for d in deliveries] == [False] * 5

    consumer.ack_through(deliveries[2].delivery_tag)
    consumer.close()

    again = closing(harness.broker.consumer(queue, prefetch=10))
    back = collect(again, 2)
    assert [d.body for d in back] == [b"4", b"5"]
    assert all(d.redelivered for d in back)
    assert again.fetch(10, 0.1) == []


def test_unacknowledged_deliveries_come_back_redelivered_after_close(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    queue = f"{harness.prefix}.work"
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    _publish(harness, "sap.LOIPRO", b"a", b"b")
    consumer = harness.broker.consumer(queue, prefetch=10)
    assert [d.body for d in collect(consumer, 2)] == [b"a", b"b"]
    assert harness.depth(queue) == 0
    consumer.close()

    assert harness.depth(queue, expect=2) == 2
    again = closing(harness.broker.consumer(queue, prefetch=10))
    back = collect(again, 2)
    assert [(d.body, d.redelivered) for d in back] == [(b"a", True), (b"b", True)]
    again.ack_through(back[-1].delivery_tag)


def test_settling_a_tag_that_is_not_outstanding_is_refused_before_the_broker_sees_it(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    _publish(harness, "sap.LOIPRO", b"a", b"b")
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=10))
    first, second = collect(consumer, 2)
    consumer.ack_through(first.delivery_tag)

    with pytest.raises(ValueError, match=f"delivery tag {first.delivery_tag} .*not outstanding"):
        consumer.ack_through(first.delivery_tag)
    with pytest.raises(ValueError, match="delivery tag 999"):
        consumer.reject(999, requeue=True)

    consumer.ack_through(second.delivery_tag)  # the consumer is still usable
    assert consumer.fetch(1, 0.05) == []


def test_reject_with_requeue_delivers_it_again_behind_the_others(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    # Quorum queues (and the in-process broker) requeue a rejected message at the back.
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    _publish(harness, "sap.LOIPRO", b"a", b"b")
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=1))

    (first,) = collect(consumer, 1)
    consumer.reject(first.delivery_tag, requeue=True)
    (second,) = collect(consumer, 1)
    consumer.ack_through(second.delivery_tag)
    (again,) = collect(consumer, 1)

    assert (first.body, second.body, again.body) == (b"a", b"b", b"a")
    assert (second.redelivered, again.redelivered) == (False, True)
    assert again.delivery_tag not in (first.delivery_tag, second.delivery_tag)
    consumer.ack_through(again.delivery_tag)
    assert consumer.fetch(1, 0.05) == []


def test_reject_without_requeue_dead_letters_to_the_parking_lot(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    queue = f"{harness.prefix}.work"
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    publisher = closing(harness.broker.publisher())
    envelope = harness.envelope("sap.LOIPRO", b"poison", headers={"x-route": "loipro"})
    assert publisher.publish_batch([envelope]) == [CONFIRMED]
    consumer = closing(harness.broker.consumer(queue, prefetch=10))

    (delivery,) = collect(consumer, 1)
    consumer.reject(delivery.delivery_tag, requeue=False)

    parked_consumer = closing(harness.broker.consumer(harness.parked, prefetch=10))
    (parked,) = collect(parked_consumer, 1)
    assert parked.body == b"poison"
    assert parked.message_id == envelope.message_id
    assert parked.exchange == harness.dlx
    assert parked.routing_key == "sap.LOIPRO"
    assert parked.headers["x-route"] == "loipro"
    death = parked.headers["x-death"][0]
    assert (death["reason"], death["queue"], death["count"]) == ("rejected", queue, 1)
    assert parked.headers["x-first-death-queue"] == queue
    assert harness.depth(queue) == 0


def test_dead_letter_routing_key_replaces_the_original(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    spec = harness.queue("work", "sap.#", dead_letter_routing_key="parked.loipro")
    harness.broker.declare(harness.topology(spec))
    _publish(harness, "sap.LOIPRO", b"x")
    consumer = closing(harness.broker.consumer(spec.name, prefetch=1))
    (delivery,) = collect(consumer, 1)
    consumer.reject(delivery.delivery_tag, requeue=False)

    (parked,) = collect(closing(harness.broker.consumer(harness.parked, prefetch=1)), 1)
    assert parked.routing_key == "parked.loipro"


def test_the_parking_lot_takes_direct_publishes_by_queue_name(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology())
    publisher = closing(harness.broker.publisher())
    direct = Envelope(exchange="", routing_key=harness.parked, body=b"p1", message_id="p1")
    via_dlx = Envelope(exchange=harness.dlx, routing_key="any.key", body=b"p2", message_id="p2")

    assert publisher.publish_batch([direct, via_dlx]) == [CONFIRMED, CONFIRMED]
    got = collect(closing(harness.broker.consumer(harness.parked, prefetch=10)), 2)
    assert [d.body for d in got] == [b"p1", b"p2"]


# -- message TTL: the retry delay queues ------------------------------------------------


def _delay_queue(harness: Harness, target: str, *, ttl_ms: int) -> QueueSpec:
    """A delay queue as integration/retry.py declares it: no bindings, TTL, back to target."""
    return QueueSpec(
        name=f"{target}.retry",
        exchange="",
        bindings=(),
        dead_letter_exchange="",
        dead_letter_routing_key=target,
        message_ttl_ms=ttl_ms,
    )


def test_a_delay_queue_returns_an_expired_message_to_its_target_queue_only(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    work = harness.queue("work", "sap.#")
    other = harness.queue("other", "sap.#")  # bound like work: must not get a copy
    delay = _delay_queue(harness, work.name, ttl_ms=300)
    harness.broker.declare(harness.topology(work, other, delay))
    publisher = closing(harness.broker.publisher())
    envelope = Envelope(
        exchange="",
        routing_key=delay.name,
        body=b"later",
        message_id="m-later",
        headers={"x-mesbridge-attempts": 1},
    )
    consumer = closing(harness.broker.consumer(work.name, prefetch=10))

    started = time.monotonic()
    assert publisher.publish_batch([envelope]) == [CONFIRMED]
    (back,) = collect(consumer, 1)
    waited = time.monotonic() - started

    assert waited >= 0.25, f"came back after {waited:.3f} s, before its TTL of 0.3 s"
    assert (back.body, back.message_id) == (b"later", "m-later")
    assert (back.exchange, back.routing_key) == ("", work.name)
    assert back.headers["x-mesbridge-attempts"] == 1
    death = back.headers["x-death"][0]
    assert (death["reason"], death["queue"]) == ("expired", delay.name)
    assert harness.depth(delay.name) == 0
    assert harness.depth(other.name) == 0
    assert harness.depth(harness.parked) == 0


def test_a_message_expiration_below_the_queue_ttl_wins(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    work = harness.queue("work", "sap.#")
    delay = _delay_queue(harness, work.name, ttl_ms=60_000)
    harness.broker.declare(harness.topology(work, delay))
    publisher = closing(harness.broker.publisher())
    envelope = Envelope(
        exchange="", routing_key=delay.name, body=b"x", message_id="m1", expiration_ms=200
    )
    consumer = closing(harness.broker.consumer(work.name, prefetch=10))

    assert publisher.publish_batch([envelope]) == [CONFIRMED]

    (back,) = collect(consumer, 1, within_s=10)
    assert back.headers["x-death"][0]["original-expiration"] == "200"


def test_a_message_expires_only_at_the_head_of_its_queue(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    # Why one delay queue per stage: a later-expiring message holds back those behind it.
    work = harness.queue("work", "sap.#")
    delay = _delay_queue(harness, work.name, ttl_ms=60_000)
    harness.broker.declare(harness.topology(work, delay))
    publisher = closing(harness.broker.publisher())
    slow = Envelope(
        exchange="", routing_key=delay.name, body=b"slow", message_id="s", expiration_ms=800
    )
    fast = Envelope(
        exchange="", routing_key=delay.name, body=b"fast", message_id="f", expiration_ms=50
    )
    consumer = closing(harness.broker.consumer(work.name, prefetch=10))

    started = time.monotonic()
    assert publisher.publish_batch([slow, fast]) == [CONFIRMED, CONFIRMED]
    first = collect(consumer, 1, within_s=10)
    waited = time.monotonic() - started
    rest = collect(consumer, 1, within_s=10)

    assert [d.body for d in first + rest] == [b"slow", b"fast"]
    assert waited >= 0.7, f"the first came back after {waited:.3f} s"


def test_redeclaring_a_queue_with_another_ttl_is_a_configuration_error(harness: Harness) -> None:
    work = harness.queue("work", "sap.#")
    harness.broker.declare(harness.topology(work, _delay_queue(harness, work.name, ttl_ms=500)))
    changed = harness.topology(work, _delay_queue(harness, work.name, ttl_ms=900))

    with pytest.raises(ConfigurationError, match=rf"queue '{harness.prefix}\.work\.retry'"):
        harness.broker.declare(changed)


def test_dead_lettering_to_the_default_exchange_needs_a_routing_key(harness: Harness) -> None:
    spec = QueueSpec(
        name=f"{harness.prefix}.delay", exchange="", bindings=(), dead_letter_exchange=""
    )

    with pytest.raises(ConfigurationError, match="without a dead-letter routing key"):
        harness.broker.declare(harness.topology(spec))


# -- publishing -------------------------------------------------------------------------


def test_publish_batch_confirms_every_message(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    publisher = closing(harness.broker.publisher())
    envelopes = [
        harness.envelope("sap.LOIPRO", f"{n:03}".encode() * 100, message_id=f"m{n}")
        for n in range(150)
    ]

    results = publisher.publish_batch(envelopes)
    assert results == [CONFIRMED] * 150
    assert publisher.publish_batch([]) == []

    assert harness.depth(f"{harness.prefix}.work", expect=150) == 150
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=200))
    assert [d.body for d in collect(consumer, 150)] == [e.body for e in envelopes]


def test_only_the_unroutable_messages_of_a_mixed_batch_are_unroutable(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    publisher = closing(harness.broker.publisher())
    envelopes = [
        harness.envelope("sap.LOIPRO", b"ok-1"),
        harness.envelope("nobody.binds.this", b"lost-1"),
        harness.envelope("sap.MBGMCR", b"ok-2"),
        # Same message id as the first, routed nowhere: told apart from it.
        harness.envelope("nobody.either", b"lost-2", message_id="id-ok-1"),
        harness.envelope("sap.MATMAS", b"ok-3"),
    ]

    results = publisher.publish_batch(envelopes)

    assert results == [CONFIRMED, UNROUTABLE, CONFIRMED, UNROUTABLE, CONFIRMED]
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=10))
    assert [d.body for d in collect(consumer, 3)] == [b"ok-1", b"ok-2", b"ok-3"]
    # The publisher is still usable after returns.
    assert publisher.publish_batch([harness.envelope("sap.X", b"ok-4")]) == [CONFIRMED]


def test_a_full_queue_nacks_only_the_messages_routed_to_it(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    harness.full_queue("tulip.#")
    publisher = closing(harness.broker.publisher())

    results = publisher.publish_batch(
        [
            harness.envelope("sap.LOIPRO", b"a"),
            harness.envelope("tulip.done", b"b"),
            harness.envelope("sap.LOIPRO", b"c"),
        ]
    )

    assert results == [CONFIRMED, NACKED, CONFIRMED]


def test_message_properties_round_trip(harness: Harness, closing: Callable[[Any], Any]) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    headers = {
        "x-contract": "sap-idoc/LOIPRO01/1",
        "x-attempt": 3,
        "x-big": 2**40,
        "x-negative": -7,
        "x-final": True,
        "x-none": None,
        "x-list": ["a", 1, False],
        "x-table": {"plant": "1000", "nested": {"level": 2}},
        "x-umlaut": "Körber Ä µ",
        "x-when": datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC),
    }
    body = bytes(range(256)) * 3  # not UTF-8: bytes must come back unchanged
    envelope = Envelope(
        exchange=harness.inbound,
        routing_key="sap.LOIPRO",
        body=body,
        message_id="LOIPRO:Q01CLNT100:0000000000012345",
        content_type="application/xml; charset=utf-8",
        headers=headers,
    )
    before = int(time.time())
    assert closing(harness.broker.publisher()).publish_batch([envelope]) == [CONFIRMED]

    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=1))
    (delivery,) = collect(consumer, 1)

    assert delivery.body == body
    assert delivery.message_id == envelope.message_id
    assert delivery.content_type == envelope.content_type
    assert (delivery.exchange, delivery.routing_key) == (harness.inbound, "sap.LOIPRO")
    assert {key: delivery.headers[key] for key in headers} == headers
    assert delivery.timestamp is not None and before - 1 <= delivery.timestamp <= time.time() + 1


@pytest.mark.parametrize(
    "value",
    [
        1.5,
        Decimal("1.5"),
        b"raw",
        {1, 2},
        2**64,
        datetime(2026, 3, 1, 12, 30, 5),
        datetime(2026, 3, 1, 12, 30, 5, 500, tzinfo=UTC),
    ],
    ids=["float", "decimal", "bytes", "set", "int-over-64-bit", "naive-time", "sub-second"],
)
def test_a_header_that_amqp_would_change_is_refused_before_sending(
    harness: Harness, closing: Callable[[Any], Any], value: Any
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    publisher = closing(harness.broker.publisher())
    good = harness.envelope("sap.LOIPRO", b"good")
    bad = harness.envelope("sap.LOIPRO", b"bad", headers={"x-qty": {"value": value}})

    with pytest.raises(TypeError, match=r"message 'id-bad': header headers\['x-qty'\]\['value'\]"):
        publisher.publish_batch([good, bad])

    assert harness.depth(f"{harness.prefix}.work") == 0  # nothing of the batch was sent
    assert publisher.publish_batch([good]) == [CONFIRMED]


def test_publishing_to_a_missing_exchange_is_transient_and_a_new_publisher_works(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    publisher = closing(harness.broker.publisher())
    missing = Envelope(
        exchange=f"{harness.prefix}.nope", routing_key="x", body=b"x", message_id="x"
    )

    with pytest.raises(TransientError, match=rf"{harness.prefix}\.nope"):
        publisher.publish_batch([missing])
    with pytest.raises(TransientError):
        publisher.publish_batch([harness.envelope("sap.LOIPRO", b"after")])

    fresh = closing(harness.broker.publisher())
    assert fresh.publish_batch([harness.envelope("sap.LOIPRO", b"after")]) == [CONFIRMED]


def test_consuming_a_missing_queue_is_transient(harness: Harness) -> None:
    harness.broker.declare(harness.topology())

    with pytest.raises(TransientError, match=rf"{harness.prefix}\.nothing"):
        harness.broker.consumer(f"{harness.prefix}.nothing", prefetch=1)


# -- threads, competing consumers, connection loss -----------------------------------------


def test_a_consumer_and_a_publisher_on_two_threads(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    total, batch = 600, 50
    errors: list[BaseException] = []

    def produce() -> None:
        publisher = harness.broker.publisher()
        try:
            for start in range(0, total, batch):
                envelopes = [
                    harness.envelope("sap.LOIPRO", f"{n:04}".encode())
                    for n in range(start, start + batch)
                ]
                assert publisher.publish_batch(envelopes) == [CONFIRMED] * batch
        except BaseException as exc:
            errors.append(exc)
        finally:
            publisher.close()

    producer = threading.Thread(target=produce)
    consumer = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=100))
    producer.start()
    received: list[bytes] = []
    deadline = time.monotonic() + 15
    while len(received) < total and time.monotonic() < deadline and not errors:
        got = consumer.fetch(50, 0.2)
        if got:
            consumer.ack_through(got[-1].delivery_tag)
            received += [d.body for d in got]
    producer.join(10)

    assert not errors
    assert received == [f"{n:04}".encode() for n in range(total)]  # all, once, in order


def test_competing_consumers_share_a_queue_without_duplicates(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    _publish(harness, "sap.LOIPRO", *[f"{n:02}".encode() for n in range(40)])
    first = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=5))
    second = closing(harness.broker.consumer(f"{harness.prefix}.work", prefetch=5))

    seen: list[bytes] = []
    deadline = time.monotonic() + 10
    while len(seen) < 40 and time.monotonic() < deadline:
        for consumer in (first, second):
            got = consumer.fetch(5, 0.05)
            if got:
                consumer.ack_through(got[-1].delivery_tag)
                seen += [d.body for d in got]

    assert sorted(seen) == [f"{n:02}".encode() for n in range(40)]


def test_connection_loss_is_transient_and_a_new_consumer_gets_everything_back(
    harness: Harness, closing: Callable[[Any], Any]
) -> None:
    queue = f"{harness.prefix}.work"
    harness.broker.declare(harness.topology(harness.queue("work", "sap.#")))
    _publish(harness, "sap.LOIPRO", b"1", b"2", b"3", b"4")
    linked = harness.linked_broker()
    consumer = closing(linked.consumer(queue, prefetch=10))
    publisher = closing(linked.publisher())
    got = collect(consumer, 4)

    harness.sever()

    with pytest.raises(TransientError):
        consumer.fetch(10, 2.0)
    with pytest.raises(TransientError):
        consumer.ack_through(got[-1].delivery_tag)  # too late: the broker requeued them
    with pytest.raises(TransientError):
        publisher.publish_batch([harness.envelope("sap.LOIPRO", b"5")])

    again = closing(harness.broker.consumer(queue, prefetch=10))
    back = collect(again, 4)
    assert [(d.body, d.redelivered) for d in back] == [(b, True) for b in (b"1", b"2", b"3", b"4")]
    fresh = closing(harness.broker.publisher())
    assert fresh.publish_batch([harness.envelope("sap.LOIPRO", b"5")]) == [CONFIRMED]


def test_an_unreachable_broker_is_transient(harness: Harness) -> None:
    broker = harness.unreachable_broker()

    with pytest.raises(TransientError) as ping_error:
        broker.ping()
    with pytest.raises(TransientError):
        broker.publisher()
    with pytest.raises(TransientError):
        broker.consumer(f"{harness.prefix}.work", prefetch=1)
    assert "secret-pw" not in str(ping_error.value)
