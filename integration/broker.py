"""What the runtime needs from a message broker, as small protocols; adapters implement them.

Two implementations ship: RabbitMQ (``adapters/amqp``, for ``amqp://`` URLs)
and an in-process broker (``adapters/memory_broker``, for ``memory://``, the
embedded default and the test double). Only the consumer loop and the outbox
relay talk to these; nothing else touches a channel.

Semantics every implementation keeps:

- ``fetch`` returns deliveries in arrival order; nothing is removed from the
  queue until it is acknowledged; unacknowledged deliveries come back
  (``redelivered``) when the consumer closes or its connection is lost.
- ``ack_through(tag)`` acknowledges every delivery up to and including ``tag``
  (AMQP ``multiple=True``): one acknowledgement per micro-batch.
- ``publish_batch`` publishes persistent messages with ``mandatory`` routing and
  waits for the broker's confirms of the whole batch; each message gets a
  ``PublishResult``. An unroutable message is ``UNROUTABLE``, never silently
  dropped. Connection problems raise ``TransientError``.
- A queue with ``message_ttl_ms`` (or a message with ``expiration_ms``: the lower of
  the two counts) dead-letters a message that waited that long, with reason
  ``expired``, to its dead-letter exchange; ``dead_letter_exchange=""`` is the default
  exchange, which routes by ``dead_letter_routing_key`` = a queue's name. As on
  RabbitMQ, a message expires only when it reaches the head of its queue.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

__all__ = [
    "Broker",
    "BrokerConsumer",
    "BrokerPublisher",
    "Delivery",
    "Envelope",
    "PublishResult",
    "QueueSpec",
    "Topology",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Delivery:
    """One message received from a queue."""

    body: bytes
    exchange: str
    routing_key: str
    delivery_tag: int
    redelivered: bool = False
    message_id: str | None = None
    content_type: str | None = None
    headers: Mapping[str, Any] = field(default_factory=dict)
    timestamp: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Envelope:
    """One message to publish: persistent, mandatory, with a deterministic message id."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str
    content_type: str = "application/octet-stream"
    headers: Mapping[str, Any] = field(default_factory=dict)
    # AMQP per-message TTL: the message is dead-lettered after waiting this long in a queue.
    expiration_ms: int | None = None


class PublishResult(Enum):
    CONFIRMED = "confirmed"
    UNROUTABLE = "unroutable"  # returned by the broker: no queue is bound for it
    NACKED = "nacked"  # the broker refused to take responsibility for it


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueSpec:
    """A durable queue bound to an exchange by routing-key patterns."""

    name: str
    exchange: str
    bindings: tuple[str, ...]
    # None: no dead-lettering; "": the default exchange (dead_letter_routing_key = a queue).
    dead_letter_exchange: str | None = None
    dead_letter_routing_key: str | None = None
    # x-message-ttl: a message that waited this long is dead-lettered (retry delay queues).
    message_ttl_ms: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Topology:
    """Exchanges and queues the service declares (DESIGN §5); names are configurable."""

    inbound_exchange: str = "mesbridge.in"
    outbound_exchange: str = "mesbridge.out"
    dead_letter_exchange: str = "mesbridge.dlx"
    parked_queue: str = "mesbridge.parked"
    queues: tuple[QueueSpec, ...] = ()


class BrokerConsumer(Protocol):
    def fetch(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        """Up to ``max_messages``; waits at most ``timeout_s`` (returns early when it has some)."""
        ...

    def ack_through(self, delivery_tag: int) -> None: ...

    def reject(self, delivery_tag: int, *, requeue: bool) -> None: ...

    def close(self) -> None: ...


class BrokerPublisher(Protocol):
    def publish_batch(
        self, envelopes: Sequence[Envelope], *, timeout_s: float = 30.0
    ) -> list[PublishResult]: ...

    def close(self) -> None: ...


class Broker(Protocol):
    """A connection factory for one broker; thread-safe to call from several threads."""

    def declare(self, topology: Topology) -> None: ...

    def consumer(self, queue: str, *, prefetch: int) -> BrokerConsumer: ...

    def publisher(self) -> BrokerPublisher: ...

    def ping(self) -> None:
        """Raise ``TransientError`` when the broker cannot be reached."""
        ...

    def close(self) -> None: ...
