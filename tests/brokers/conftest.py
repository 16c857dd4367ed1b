"""The ``harness`` fixture: one broker capability suite, run on the in-process broker and RabbitMQ.

Every test builds its own topology with uuid-named exchanges and queues
(``harness.topology(...)``); on RabbitMQ they are deleted afterwards. The harness
also knows how to break each backend the same way: ``sever()`` cuts the connections
of ``linked_broker()`` (a TCP proxy in front of RabbitMQ; ``drop_connections()`` in
memory), ``unreachable_broker()`` cannot connect, ``full_queue()`` makes a queue
whose publishes are NACKED.
"""

from __future__ import annotations

import contextlib
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pika
import pytest

from adapters.amqp import RabbitBroker
from adapters.memory_broker import InMemoryBroker
from integration.broker import (
    BrokerConsumer,
    Delivery,
    Envelope,
    QueueSpec,
    Topology,
)
from tests.brokers.tcp_proxy import TcpProxy


@dataclass
class Harness:
    kind: str
    broker: InMemoryBroker | RabbitBroker
    url: str = ""
    prefix: str = field(default_factory=lambda: f"mbt-{uuid.uuid4().hex[:10]}")
    queues: list[str] = field(default_factory=list)
    exchanges: list[str] = field(default_factory=list)
    _proxy: TcpProxy | None = None
    _extra: list[Any] = field(default_factory=list)

    # -- names and topologies ------------------------------------------------------

    @property
    def inbound(self) -> str:
        return f"{self.prefix}.in"

    @property
    def dlx(self) -> str:
        return f"{self.prefix}.dlx"

    @property
    def parked(self) -> str:
        return f"{self.prefix}.parked"

    def queue(
        self,
        suffix: str,
        *bindings: str,
        exchange: str | None = None,
        dead_letter: bool = True,
        dead_letter_routing_key: str | None = None,
    ) -> QueueSpec:
        return QueueSpec(
            name=f"{self.prefix}.{suffix}",
            exchange=self.inbound if exchange is None else exchange,
            bindings=bindings,
            dead_letter_exchange=self.dlx if dead_letter else None,
            dead_letter_routing_key=dead_letter_routing_key,
        )

    def topology(self, *queues: QueueSpec) -> Topology:
        topology = Topology(
            inbound_exchange=self.inbound,
            outbound_exchange=f"{self.prefix}.out",
            dead_letter_exchange=self.dlx,
            parked_queue=self.parked,
            queues=queues,
        )
        self.exchanges += [topology.inbound_exchange, topology.outbound_exchange, self.dlx]
        self.exchanges += [spec.exchange for spec in queues if spec.exchange]
        self.queues += [self.parked, *(spec.name for spec in queues)]
        return topology

    def envelope(self, routing_key: str, body: bytes, **extra: Any) -> Envelope:
        extra.setdefault("message_id", f"id-{body.decode('latin-1')}")
        return Envelope(exchange=self.inbound, routing_key=routing_key, body=body, **extra)

    # -- observing ------------------------------------------------------------------

    def depth(self, queue: str, *, expect: int | None = None, within_s: float = 5.0) -> int:
        """Ready messages in ``queue``; with ``expect``, wait (RabbitMQ settles asynchronously)."""
        deadline = time.monotonic() + within_s
        while True:
            depth = self.broker.queue_depth(queue)
            if expect is None or depth == expect or time.monotonic() > deadline:
                return depth
            time.sleep(0.02)

    # -- breaking things -------------------------------------------------------------

    def linked_broker(self) -> InMemoryBroker | RabbitBroker:
        """A broker whose consumers and publishers ``sever()`` disconnects."""
        if isinstance(self.broker, InMemoryBroker):
            return self.broker
        if self._proxy is None:
            parts = urlsplit(self.url)
            self._proxy = TcpProxy(parts.hostname or "127.0.0.1", parts.port or 5672)
        parts = urlsplit(self.url)
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = (
            f"{userinfo}@127.0.0.1:{self._proxy.port}"
            if userinfo
            else f"127.0.0.1:{self._proxy.port}"
        )
        return RabbitBroker(urlunsplit(parts._replace(netloc=netloc)), heartbeat_s=10)

    def sever(self) -> None:
        if isinstance(self.broker, InMemoryBroker):
            self.broker.drop_connections()
        else:
            assert self._proxy is not None, "make the consumer with linked_broker() first"
            self._proxy.cut()

    def unreachable_broker(self) -> InMemoryBroker | RabbitBroker:
        if isinstance(self.broker, InMemoryBroker):
            broker = InMemoryBroker("unreachable")
            broker.set_reachable(False)
            return broker
        return RabbitBroker(
            f"amqp://guest:secret-pw@127.0.0.1:{_closed_port()}/", connect_timeout_s=2
        )

    def full_queue(self, binding: str) -> str:
        """A queue bound to the inbound exchange that refuses (NACKs) every publish."""
        name = f"{self.prefix}.full"
        if isinstance(self.broker, InMemoryBroker):
            self.broker.declare(self.topology(self.queue("full", binding)))
            self.broker.limit_queue(name, 0)
            return name
        with self.channel() as channel:
            channel.queue_declare(
                name, durable=True, arguments={"x-max-length": 0, "x-overflow": "reject-publish"}
            )
            channel.queue_bind(name, self.inbound, routing_key=binding)
        self.queues.append(name)
        return name

    @contextlib.contextmanager
    def channel(self) -> Iterator[Any]:
        """A raw pika channel on the real broker, for what the adapter does not offer."""
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        try:
            yield connection.channel()
        finally:
            if connection.is_open:
                connection.close()

    def cleanup(self) -> None:
        try:
            if self._proxy is not None:
                self._proxy.close()
        finally:
            if isinstance(self.broker, RabbitBroker):
                self._delete_everything()

    def _delete_everything(self) -> None:
        # Each deletion on its own channel: one refusal must not leave the rest behind.
        connection = pika.BlockingConnection(pika.URLParameters(self.url))
        failures: list[str] = []
        try:
            for kind, name in [("queue", q) for q in dict.fromkeys(self.queues)] + [
                ("exchange", e) for e in dict.fromkeys(self.exchanges)
            ]:
                channel = connection.channel()
                try:
                    if kind == "queue":
                        channel.queue_delete(name)
                    else:
                        channel.exchange_delete(name)
                    channel.close()
                except pika.exceptions.ChannelClosedByBroker as exc:
                    failures.append(f"{kind} {name}: {exc}")
        finally:
            connection.close()
        assert not failures, f"test cleanup left broker objects behind: {failures}"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "memory":
        made = Harness(kind="memory", broker=InMemoryBroker(f"test-{uuid.uuid4().hex[:8]}"))
    else:
        url: str = request.getfixturevalue("amqp_url")
        made = Harness(kind="rabbitmq", broker=RabbitBroker(url), url=url)
    try:
        yield made
    finally:
        made.cleanup()


@pytest.fixture
def closing() -> Iterator[Callable[[Any], Any]]:
    """Register consumers/publishers to close at the end of the test, even when it fails."""
    opened: list[Any] = []

    def register(thing: Any) -> Any:
        opened.append(thing)
        return thing

    yield register
    for thing in reversed(opened):
        thing.close()


def collect(
    consumer: BrokerConsumer, count: int, *, within_s: float = 5.0, batch: int = 100
) -> list[Delivery]:
    """Fetch until ``count`` deliveries arrived or ``within_s`` passed (RabbitMQ pushes
    asynchronously, so one fetch may return part of what is there)."""
    deadline = time.monotonic() + within_s
    got: list[Delivery] = []
    while len(got) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        got += consumer.fetch(min(batch, count - len(got)), min(remaining, 0.5))
    return got


@pytest.fixture
def rabbit(amqp_url: str) -> Iterator[Harness]:
    """The harness on RabbitMQ only, for what only a real broker can show."""
    made = Harness(kind="rabbitmq", broker=RabbitBroker(amqp_url), url=amqp_url)
    try:
        yield made
    finally:
        made.cleanup()
