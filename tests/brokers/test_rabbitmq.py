"""What only the real broker can show: quorum queues, the classic fallback, credentials,
a consumer cancelled by the broker, confirms that never come."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pika
import pytest
from pika import exceptions as pika_errors

from adapters.amqp import RabbitBroker
from adapters.amqp.topology import queue_arguments
from contracts.errors import ConfigurationError, TransientError
from integration.broker import PublishResult
from tests.brokers.conftest import Harness, collect
from tests.brokers.tcp_proxy import TcpProxy

pytestmark = pytest.mark.rabbitmq


def _redeclare_refusal(harness: Harness, queue: str, arguments: dict[str, Any]) -> str:
    """The broker's answer to declaring ``queue`` again with ``arguments`` ('' if accepted)."""
    with harness.channel() as channel:
        try:
            channel.queue_declare(queue, durable=True, arguments=arguments)
        except pika_errors.ChannelClosedByBroker as exc:
            return f"{exc.reply_code} {exc.reply_text}"
    return ""


def _fetch_for(consumer: Any, *, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        consumer.fetch(1, 0.2)


def test_queues_are_really_quorum_queues_with_at_least_once_dead_lettering(rabbit: Harness) -> None:
    spec = rabbit.queue("work", "sap.#")
    assert isinstance(rabbit.broker, RabbitBroker)
    report = rabbit.broker.declare_topology(rabbit.topology(spec))

    assert report.queue_type(spec.name) == "quorum"
    assert report.queue_type(rabbit.parked) == "quorum"
    quorum_args = queue_arguments(spec, quorum=True)
    # The broker compares arguments on a redeclare: a different one proves what it holds.
    as_classic = _redeclare_refusal(rabbit, spec.name, {**quorum_args, "x-queue-type": "classic"})
    assert "inequivalent arg 'x-queue-type'" in as_classic and "'quorum'" in as_classic
    at_most_once = {**quorum_args, "x-dead-letter-strategy": "at-most-once"}
    assert "x-dead-letter-strategy" in _redeclare_refusal(rabbit, spec.name, at_most_once)
    assert _redeclare_refusal(rabbit, spec.name, quorum_args) == ""


def test_a_queue_that_exists_as_classic_is_kept_and_reported(
    rabbit: Harness, caplog: pytest.LogCaptureFixture, closing: Callable[[Any], Any]
) -> None:
    spec = rabbit.queue("legacy", "sap.#")
    topology = rabbit.topology(spec)
    with rabbit.channel() as channel:
        channel.queue_declare(
            spec.name, durable=True, arguments=queue_arguments(spec, quorum=False)
        )
    assert isinstance(rabbit.broker, RabbitBroker)

    with caplog.at_level(logging.WARNING, logger="adapters.amqp.topology"):
        report = rabbit.broker.declare_topology(topology)
        again = rabbit.broker.declare_topology(topology)

    assert report.queue_type(spec.name) == again.queue_type(spec.name) == "classic"
    why = next(queue.why_classic for queue in report.queues if queue.name == spec.name)
    assert why is not None and "inequivalent arg" in why  # it exists with other arguments
    assert f"queue {spec.name!r} is a classic durable queue" in caplog.text
    # It still works, dead-lettering included.
    publisher = closing(rabbit.broker.publisher())
    assert publisher.publish_batch([rabbit.envelope("sap.LOIPRO", b"x")]) == [
        PublishResult.CONFIRMED
    ]
    consumer = closing(rabbit.broker.consumer(spec.name, prefetch=1))
    (delivery,) = collect(consumer, 1)
    consumer.reject(delivery.delivery_tag, requeue=False)
    assert rabbit.depth(rabbit.parked, expect=1) == 1


def test_a_conflicting_existing_queue_is_a_configuration_error_quoting_both_refusals(
    rabbit: Harness,
) -> None:
    spec = rabbit.queue("conflict", "sap.#")
    topology = rabbit.topology(spec)
    with rabbit.channel() as channel:
        channel.queue_declare(spec.name, durable=True, arguments={"x-max-length": 5})

    with pytest.raises(ConfigurationError) as raised:
        rabbit.broker.declare(topology)

    text = str(raised.value)
    assert f"queue {spec.name!r} cannot be declared" in text
    assert "as a quorum queue" in text and "as a classic queue" in text


@pytest.mark.parametrize(
    ("userinfo", "path", "expected"),
    [
        ("guest:wrong-secret", "/", "check the user, password and virtual host"),
        ("guest:guest", "/no-such-vhost", "vhost no-such-vhost not found"),
    ],
    ids=["wrong-password", "unknown-vhost"],
)
def test_bad_credentials_are_a_configuration_error_without_the_password(
    amqp_url: str, userinfo: str, path: str, expected: str
) -> None:
    parts = urlsplit(amqp_url)
    broker = RabbitBroker(f"amqp://{userinfo}@{parts.hostname}:{parts.port or 5672}{path}")

    with pytest.raises(ConfigurationError, match=expected) as raised:
        broker.ping()

    assert "wrong-secret" not in str(raised.value)
    assert "wrong-secret" not in repr(broker)


def test_deleting_the_queue_cancels_the_consumer_with_a_transient_error(
    rabbit: Harness, closing: Callable[[Any], Any]
) -> None:
    spec = rabbit.queue("doomed", "sap.#")
    rabbit.broker.declare(rabbit.topology(spec))
    consumer = closing(rabbit.broker.consumer(spec.name, prefetch=10))
    assert consumer.fetch(1, 0.05) == []

    with rabbit.channel() as channel:
        channel.queue_delete(spec.name)

    with pytest.raises(TransientError, match="cancelled the consumer"):
        _fetch_for(consumer, seconds=5)
    with pytest.raises(TransientError):
        consumer.fetch(1, 0.01)  # dead from then on


def test_confirms_that_never_come_time_out_as_transient(
    rabbit: Harness, closing: Callable[[Any], Any]
) -> None:
    rabbit.broker.declare(rabbit.topology(rabbit.queue("work", "sap.#")))
    parts = urlsplit(rabbit.url)
    proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
    try:
        broker = RabbitBroker(f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
        publisher = closing(broker.publisher())
        proxy.stall()

        started = time.monotonic()
        with pytest.raises(TransientError, match=r"1 of 1 messages not confirmed within 0\.5 s"):
            publisher.publish_batch([rabbit.envelope("sap.LOIPRO", b"x")], timeout_s=0.5)
        assert time.monotonic() - started < 2.0
        with pytest.raises(TransientError):
            publisher.publish_batch([rabbit.envelope("sap.LOIPRO", b"y")])
    finally:
        proxy.close()


def test_consumer_and_publisher_connections_are_named(rabbit: Harness) -> None:
    assert isinstance(rabbit.broker, RabbitBroker)
    parameters = rabbit.broker._parameters("consumer q")  # what RabbitMQ shows per connection
    assert parameters.client_properties == {"connection_name": "mesbridge consumer q"}
    assert isinstance(parameters, pika.URLParameters)
    rabbit.broker.ping()
