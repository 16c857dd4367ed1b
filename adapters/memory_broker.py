"""The in-process broker (``memory://name``): the embedded default and the test double.

Keeps RabbitMQ's semantics that mesbridge relies on, in one process and in memory
(like kombu's ``memory://`` transport and dramatiq's ``StubBroker``):

- topic exchanges with AMQP matching (``*`` one word, ``#`` zero or more), the
  default exchange ``''`` (routing key = queue name), the topology declared as
  ``adapters/amqp/topology.py`` does (parking-lot queue bound to the dead-letter
  exchange with ``#``), the same checks and the same ``ConfigurationError`` when a
  queue is redeclared with other dead-letter settings;
- consumers with a prefetch limit, per-consumer delivery tags from 1, ``fetch`` in
  arrival order, ``ack_through`` (multiple ack), ``reject`` with requeue
  (``redelivered=True``, at the back of the queue, as a RabbitMQ 3.10 quorum queue
  does) or without (dead-lettered with RabbitMQ's ``x-death`` headers); closing a
  consumer (or losing it) requeues what it had not acknowledged ahead of the rest,
  in order, as a quorum queue does; ``x-delivery-count`` from the second delivery on;
- ``publish_batch`` with immediate confirms: ``UNROUTABLE`` when no queue is bound,
  ``NACKED`` when a queue limited by :meth:`InMemoryBroker.limit_queue` is full;
  publishing to an exchange that does not exist raises ``TransientError``;
- message TTL: a queue's ``message_ttl_ms`` and a message's ``expiration_ms`` (the
  lower counts), expired only at the head of the queue, as RabbitMQ does, and
  dead-lettered with reason ``expired`` (``x-death`` with ``original-expiration``),
  also through the default exchange ``''`` to the queue named by the dead-letter
  routing key (the retry delay queues). Expiry is checked whenever the broker is
  used: every ``fetch`` that waits wakes up when the next message is due, so a
  consumer of the target queue gets it on time.

Where RabbitMQ would drop a message (rejected without requeue from a queue with no
dead-letter exchange, or dead-lettered to an exchange that routes it nowhere), this
broker keeps it in :meth:`InMemoryBroker.lost_and_found` and logs a warning: never a
silent drop. Messages live as long as the process ("durable" within it): a
``memory://name`` URL reaches the same broker from anywhere in the process
(:func:`memory_broker`), and ``close()`` keeps the messages, as a RabbitMQ broker
keeps its queues when a client disconnects.

Fault injection for tests: :meth:`InMemoryBroker.drop_connections` (network
failure: every open consumer and publisher raises ``TransientError``, unacked
deliveries come back redelivered), :meth:`InMemoryBroker.set_reachable` (an outage:
``ping``, ``consumer``, ``publisher`` and ``declare`` raise ``TransientError``).

Thread-safe: one lock and condition per broker; ``fetch`` waits on it.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from adapters.amqp.fields import check_envelope, plain_headers
from adapters.amqp.settle import Outstanding
from adapters.amqp.topic import topic_matches
from adapters.amqp.topology import check_topology, topology_exchanges, topology_queues
from contracts.errors import ConfigurationError, TransientError
from integration.broker import Delivery, Envelope, PublishResult, QueueSpec, Topology

__all__ = [
    "InMemoryBroker",
    "InMemoryConsumer",
    "InMemoryPublisher",
    "forget_memory_broker",
    "memory_broker",
]

log = logging.getLogger(__name__)

_MAX_PREFETCH = 65535


@dataclass(slots=True, kw_only=True)
class _Message:
    seq: int  # arrival order in its queue: requeued messages go back in this order
    body: bytes
    exchange: str
    routing_key: str
    message_id: str | None
    content_type: str | None
    headers: dict[str, Any]
    timestamp: int | None
    redelivered: bool = False
    delivery_count: int = 0  # earlier deliveries that were not acknowledged
    expiration_ms: int | None = None  # the per-message TTL it was published with
    expires_at: float | None = None  # time.monotonic() deadline in the queue it is in

    def delivery(self, tag: int) -> Delivery:
        headers = plain_headers(self.headers)
        if self.delivery_count:
            headers["x-delivery-count"] = self.delivery_count
        return Delivery(
            body=self.body,
            exchange=self.exchange,
            routing_key=self.routing_key,
            delivery_tag=tag,
            redelivered=self.redelivered,
            message_id=self.message_id,
            content_type=self.content_type,
            headers=headers,
            timestamp=self.timestamp,
        )


@dataclass(slots=True, kw_only=True)
class _Queue:
    spec: QueueSpec
    ready: list[_Message] = field(default_factory=list)  # kept sorted by seq
    unacked: int = 0
    max_length: int | None = None


class InMemoryBroker:
    """A broker in this process; see the module docstring."""

    def __init__(self, name: str = "default") -> None:
        self.name = name
        self._cond = threading.Condition()
        self._exchanges: dict[str, list[tuple[str, str]]] = {}  # exchange → (pattern, queue)
        self._queues: dict[str, _Queue] = {}
        self._seq = itertools.count(1)
        self._get_tags = itertools.count(1)
        self._connections: set[InMemoryConsumer | InMemoryPublisher] = set()
        self._reachable = True
        self._lost: list[Delivery] = []

    def __repr__(self) -> str:
        return f"<InMemoryBroker memory://{self.name}>"

    # -- Broker protocol -------------------------------------------------------------

    def declare(self, topology: Topology) -> None:
        check_topology(topology)
        with self._cond:
            self._raise_if_unreachable()
            for exchange in topology_exchanges(topology):
                self._exchanges.setdefault(exchange, [])
            for spec in topology_queues(topology):
                self._declare_queue(spec)

    def consumer(self, queue: str, *, prefetch: int) -> InMemoryConsumer:
        if not 0 <= prefetch <= _MAX_PREFETCH:
            raise ValueError(f"prefetch must be 0 (unlimited) to {_MAX_PREFETCH}, not {prefetch}")
        with self._cond:
            self._raise_if_unreachable()
            if queue not in self._queues:
                raise TransientError(
                    f"memory://{self.name}: queue {queue!r} does not exist; declare the topology"
                )
            consumer = InMemoryConsumer(self, queue, prefetch)
            self._connections.add(consumer)
            return consumer

    def publisher(self) -> InMemoryPublisher:
        with self._cond:
            self._raise_if_unreachable()
            publisher = InMemoryPublisher(self)
            self._connections.add(publisher)
            return publisher

    def ping(self) -> None:
        with self._cond:
            self._raise_if_unreachable()

    def close(self) -> None:
        """Nothing to release: queues and messages stay, as on a real broker."""

    # -- helpers for tests and the demo ----------------------------------------------

    def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str | None = None,
        content_type: str = "application/octet-stream",
        headers: Mapping[str, Any] | None = None,
    ) -> PublishResult:
        """Publish one message (a random message id unless given); its confirm outcome."""
        envelope = Envelope(
            exchange=exchange,
            routing_key=routing_key,
            body=body,
            message_id=message_id or uuid.uuid4().hex,
            content_type=content_type,
            headers=dict(headers or {}),
        )
        check_envelope(envelope)
        with self._cond:
            return self._route_envelope(envelope)

    def queue_depth(self, queue: str) -> int:
        """Messages ready in ``queue``, not counting unacknowledged ones (RabbitMQ's
        ``messages_ready``, what a passive declare reports)."""
        with self._cond:
            self._expire_due()
            return len(self._queue(queue).ready)

    def unacked_count(self, queue: str) -> int:
        with self._cond:
            return self._queue(queue).unacked

    def queue_names(self) -> list[str]:
        with self._cond:
            return sorted(self._queues)

    def get(self, queue: str) -> Delivery | None:
        """Take the next ready message, already acknowledged (``basic.get`` with no-ack)."""
        with self._cond:
            self._expire_due()
            ready = self._queue(queue).ready
            return ready.pop(0).delivery(next(self._get_tags)) if ready else None

    def peek(self, queue: str) -> Delivery | None:
        """The next ready message, left in the queue (its delivery tag means nothing)."""
        with self._cond:
            self._expire_due()
            ready = self._queue(queue).ready
            return ready[0].delivery(0) if ready else None

    def lost_and_found(self) -> list[Delivery]:
        """Messages RabbitMQ would have dropped (see the module docstring), oldest first."""
        with self._cond:
            self._expire_due()
            return list(self._lost)

    def limit_queue(self, queue: str, max_length: int | None) -> None:
        """Like ``x-max-length`` with ``x-overflow: reject-publish``: publishes routed to a
        queue holding ``max_length`` ready messages are ``NACKED`` (other queues they route
        to still get them)."""
        with self._cond:
            self._queue(queue).max_length = max_length

    def drop_connections(self) -> None:
        """Simulate a network failure: every open consumer and publisher is dead."""
        with self._cond:
            for connection in list(self._connections):
                connection._lose(
                    TransientError(f"memory://{self.name}: the connection was lost (simulated)")
                )
            self._cond.notify_all()

    def set_reachable(self, reachable: bool) -> None:
        """Simulate an outage (``False``: existing connections drop, new ones fail) or its end.

        The helpers (``publish``, ``get``, ``queue_depth``, …) keep working: they are the
        test's back door, not a client of the broker."""
        with self._cond:
            self._reachable = reachable
        if not reachable:
            self.drop_connections()

    # -- internals (called with the lock held) ---------------------------------------

    def _raise_if_unreachable(self) -> None:
        if not self._reachable:
            raise TransientError(f"memory://{self.name} is unreachable (simulated outage)")

    def _queue(self, name: str) -> _Queue:
        try:
            return self._queues[name]
        except KeyError:
            raise KeyError(f"memory://{self.name} has no queue {name!r}") from None

    def _declare_queue(self, spec: QueueSpec) -> None:
        existing = self._queues.get(spec.name)
        if existing is None:
            self._queues[spec.name] = _Queue(spec=spec)
        else:
            before = _queue_arguments(existing.spec)
            wanted = _queue_arguments(spec)
            if before != wanted:
                raise ConfigurationError(
                    f"queue {spec.name!r} cannot be declared: it exists with dead-letter "
                    f"exchange/routing key/message TTL {before}, the topology asks for {wanted}"
                )
        bindings = self._exchanges[spec.exchange] if spec.exchange else []
        for pattern in spec.bindings:
            if (pattern, spec.name) not in bindings:
                bindings.append((pattern, spec.name))

    def _routes(self, exchange: str, routing_key: str) -> list[str]:
        if exchange == "":
            return [routing_key] if routing_key in self._queues else []
        matched = (
            queue
            for pattern, queue in self._exchanges[exchange]
            if topic_matches(pattern, routing_key)
        )
        return list(dict.fromkeys(matched))

    def _route_envelope(self, envelope: Envelope) -> PublishResult:
        if envelope.exchange and envelope.exchange not in self._exchanges:
            raise TransientError(
                f"memory://{self.name}: publishing message {envelope.message_id!r} failed: "
                f"404 NOT_FOUND - no exchange {envelope.exchange!r}; declare the topology"
            )
        message = _Message(
            seq=0,
            body=envelope.body,
            exchange=envelope.exchange,
            routing_key=envelope.routing_key,
            message_id=envelope.message_id,
            content_type=envelope.content_type,
            headers=plain_headers(envelope.headers),
            timestamp=int(time.time()),
            expiration_ms=envelope.expiration_ms,
        )
        queues = self._routes(envelope.exchange, envelope.routing_key)
        if not queues:
            return PublishResult.UNROUTABLE
        refused = self._enqueue(message, queues)
        return PublishResult.NACKED if refused else PublishResult.CONFIRMED

    def _enqueue(self, message: _Message, queues: Iterable[str]) -> bool:
        """Put a copy in each queue; True when a full queue refused it."""
        refused = False
        for name in queues:
            queue = self._queues[name]
            # Like RabbitMQ, only ready messages count towards the limit.
            if queue.max_length is not None and len(queue.ready) >= queue.max_length:
                refused = True
                continue
            copy = replace(
                message,
                seq=next(self._seq),
                headers=plain_headers(message.headers),
                expires_at=_deadline(queue.spec.message_ttl_ms, message.expiration_ms),
            )
            queue.ready.append(copy)
        self._cond.notify_all()
        return refused

    def _requeue(self, queue_name: str, messages: Iterable[_Message], *, at_back: bool) -> None:
        queue = self._queues[queue_name]
        for message in messages:
            message.redelivered = True
            message.delivery_count += 1
            queue.unacked -= 1
            if at_back:
                message.seq = next(self._seq)
                queue.ready.append(message)
            else:
                bisect.insort(queue.ready, message, key=lambda held: held.seq)
        self._cond.notify_all()

    def _dead_letter(self, queue_name: str, message: _Message, *, reason: str) -> None:
        """Dead-letter ``message``, already taken out of ``queue_name`` (ready or unacked)."""
        spec = self._queues[queue_name].spec
        headers = _with_death(message, queue_name, reason)
        dead = replace(
            message,
            exchange=spec.dead_letter_exchange or "",
            routing_key=spec.dead_letter_routing_key or message.routing_key,
            headers=headers,
            redelivered=False,
            delivery_count=0,
            # RabbitMQ drops the expiration (kept in x-death), so it cannot expire again.
            expiration_ms=None,
        )
        targets: list[str] = []
        if spec.dead_letter_exchange == "" or spec.dead_letter_exchange in self._exchanges:
            targets = self._routes(dead.exchange, dead.routing_key)
        if not targets:
            log.warning(
                "memory://%s: message %r %s from queue %r has no dead-letter route "
                "(exchange %r); kept in lost_and_found, RabbitMQ would drop it",
                self.name,
                message.message_id,
                reason,
                queue_name,
                spec.dead_letter_exchange,
            )
            self._lost.append(dead.delivery(0))
            return
        self._enqueue(dead, targets)

    def _expire_due(self) -> None:
        """Dead-letter every message whose TTL ran out at the head of its queue."""
        now = time.monotonic()
        for name, queue in self._queues.items():
            ready = queue.ready
            # Bounded by what is there now: a queue dead-lettering into itself cannot spin.
            for _ in range(len(ready)):
                head = ready[0] if ready else None
                if head is None or head.expires_at is None or head.expires_at > now:
                    break
                self._dead_letter(name, ready.pop(0), reason="expired")

    def _next_expiry(self) -> float | None:
        """When the earliest head of a queue expires (``time.monotonic()``), if any does."""
        heads = [
            queue.ready[0].expires_at
            for queue in self._queues.values()
            if queue.ready and queue.ready[0].expires_at is not None
        ]
        return min(heads, default=None)

    def _take(self, queue_name: str, count: int) -> list[_Message]:
        queue = self._queues[queue_name]
        taken, queue.ready = queue.ready[:count], queue.ready[count:]
        queue.unacked += len(taken)
        return taken

    def _disconnect(self, connection: InMemoryConsumer | InMemoryPublisher) -> None:
        self._connections.discard(connection)


def _with_death(message: _Message, queue: str, reason: str) -> dict[str, Any]:
    """RabbitMQ's dead-letter headers: ``x-death`` (most recent first) and ``x-first-death-*``."""
    headers = plain_headers(message.headers)
    deaths: list[dict[str, Any]] = list(headers.get("x-death") or [])
    for index, earlier in enumerate(deaths):
        if earlier.get("queue") == queue and earlier.get("reason") == reason:
            deaths.pop(index)
            count = int(earlier.get("count", 0)) + 1
            death = {**earlier, "count": count, "time": _now()}
            break
    else:
        death = {
            "count": 1,
            "reason": reason,
            "queue": queue,
            "time": _now(),
            "exchange": message.exchange,
            "routing-keys": [message.routing_key],
        }
        if message.expiration_ms is not None:
            death["original-expiration"] = str(message.expiration_ms)
    headers["x-death"] = [death, *deaths]
    headers.setdefault("x-first-death-exchange", message.exchange)
    headers.setdefault("x-first-death-queue", queue)
    headers.setdefault("x-first-death-reason", reason)
    return headers


def _queue_arguments(spec: QueueSpec) -> tuple[str | None, str | None, int | None]:
    """What RabbitMQ compares when a queue is declared again (a difference is a 406)."""
    return (spec.dead_letter_exchange, spec.dead_letter_routing_key, spec.message_ttl_ms)


def _deadline(queue_ttl_ms: int | None, message_ttl_ms: int | None) -> float | None:
    """When a message put in a queue now expires: the lower of the two TTLs counts."""
    ttls = [ttl for ttl in (queue_ttl_ms, message_ttl_ms) if ttl is not None]
    return time.monotonic() + min(ttls) / 1000 if ttls else None


class InMemoryConsumer:
    """Consumes one queue of an :class:`InMemoryBroker` (``BrokerConsumer``)."""

    def __init__(self, broker: InMemoryBroker, queue: str, prefetch: int) -> None:
        self._broker = broker
        self._queue = queue
        self._prefetch = prefetch
        self._tags = itertools.count(1)
        self._unacked: dict[int, _Message] = {}
        self._outstanding = Outstanding(queue)
        self._dead: TransientError | None = None

    def __repr__(self) -> str:
        return f"<InMemoryConsumer memory://{self._broker.name} queue={self._queue!r}>"

    def fetch(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._broker._cond:
            while True:
                self._raise_if_dead()
                self._broker._expire_due()
                room = max_messages
                if self._prefetch:
                    room = min(room, self._prefetch - len(self._unacked))
                if room > 0 and self._broker._queues[self._queue].ready:
                    break
                now = time.monotonic()
                remaining = deadline - now
                if remaining <= 0:
                    return []
                # Wake up for the next expiry too: it may dead-letter into this queue.
                due = self._broker._next_expiry()
                self._broker._cond.wait(remaining if due is None else min(remaining, due - now))
            batch: list[Delivery] = []
            for message in self._broker._take(self._queue, room):
                tag = next(self._tags)
                self._unacked[tag] = message
                batch.append(message.delivery(tag))
            self._outstanding.handed_out(delivery.delivery_tag for delivery in batch)
            return batch

    def ack_through(self, delivery_tag: int) -> None:
        with self._broker._cond:
            self._raise_if_dead()
            for tag in self._outstanding.settle_through(delivery_tag):
                del self._unacked[tag]
                self._broker._queues[self._queue].unacked -= 1
            self._broker._cond.notify_all()

    def reject(self, delivery_tag: int, *, requeue: bool) -> None:
        with self._broker._cond:
            self._raise_if_dead()
            self._outstanding.settle_one(delivery_tag)
            message = self._unacked.pop(delivery_tag)
            if requeue:
                # A quorum queue puts a rejected message at the back of the queue.
                self._broker._requeue(self._queue, [message], at_back=True)
            else:
                self._broker._queues[self._queue].unacked -= 1
                self._broker._dead_letter(self._queue, message, reason="rejected")

    def close(self) -> None:
        """Requeue what was not acknowledged (``redelivered=True``)."""
        with self._broker._cond:
            if self._dead is None:
                self._lose(TransientError(f"the consumer of queue {self._queue!r} is closed"))

    def _lose(self, error: TransientError) -> None:
        # Called with the broker's lock held.
        self._dead = error
        # A quorum queue returns a gone consumer's deliveries ahead of the rest, in order.
        unacked = [self._unacked[tag] for tag in sorted(self._unacked)]
        self._broker._requeue(self._queue, unacked, at_back=False)
        self._unacked.clear()
        self._broker._disconnect(self)

    def _raise_if_dead(self) -> None:
        if self._dead is not None:
            raise self._dead


class InMemoryPublisher:
    """Publishes to an :class:`InMemoryBroker` (``BrokerPublisher``); confirms are immediate."""

    def __init__(self, broker: InMemoryBroker) -> None:
        self._broker = broker
        self._dead: TransientError | None = None

    def __repr__(self) -> str:
        return f"<InMemoryPublisher memory://{self._broker.name}>"

    def publish_batch(
        self, envelopes: Sequence[Envelope], *, timeout_s: float = 30.0
    ) -> list[PublishResult]:
        for envelope in envelopes:
            check_envelope(envelope)
        with self._broker._cond:
            if self._dead is not None:
                raise self._dead
            results: list[PublishResult] = []
            for envelope in envelopes:
                try:
                    results.append(self._broker._route_envelope(envelope))
                except TransientError as exc:
                    # RabbitMQ closes the channel here: this publisher is done, like there.
                    self._lose(exc)
                    raise
            return results

    def close(self) -> None:
        with self._broker._cond:
            if self._dead is None:
                self._lose(TransientError("the publisher is closed"))

    def _lose(self, error: TransientError) -> None:
        self._dead = error
        self._broker._disconnect(self)


_registry: dict[str, InMemoryBroker] = {}
_registry_lock = threading.Lock()


def memory_broker(name: str = "default") -> InMemoryBroker:
    """The process-wide broker called ``name`` (``memory://name``), made on first use."""
    with _registry_lock:
        broker = _registry.get(name)
        if broker is None:
            broker = _registry[name] = InMemoryBroker(name)
        return broker


def forget_memory_broker(name: str) -> None:
    """Drop ``name`` from the registry; the next ``memory://name`` gets a fresh broker."""
    with _registry_lock:
        _registry.pop(name, None)


def _now() -> datetime:
    # An AMQP timestamp holds whole seconds, as RabbitMQ's x-death time does.
    return datetime.now(UTC).replace(microsecond=0)
