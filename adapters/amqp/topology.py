"""Declaring mesbridge's exchanges and queues on RabbitMQ (DESIGN §5), idempotently.

What is declared (names come from ``Topology``):

- durable topic exchanges: inbound, outbound, the dead-letter exchange, and any
  other exchange a ``QueueSpec`` names (as its exchange or dead-letter exchange);
- the parking-lot queue, bound to the dead-letter exchange with ``#``: whatever a
  queue dead-letters (rejected without requeue, delivery limit, expiry) is parked
  there instead of being dropped. The service may also publish parked copies to it
  directly (default exchange, routing key = the queue's name) or through the
  dead-letter exchange with any routing key;
- each ``QueueSpec`` as a durable **quorum** queue with its dead-letter settings and
  ``x-dead-letter-strategy: at-least-once`` (with ``x-overflow: reject-publish``, which
  at-least-once requires): a dead-lettered message leaves the queue only once the
  dead-letter target has confirmed it. The parking-lot queue is a quorum queue too.
  A spec with ``message_ttl_ms`` gets ``x-message-ttl`` (quorum queues support it, and
  per-message ``expiration``, from RabbitMQ 3.10): the retry delay queues, which
  dead-letter through the default exchange (``dead_letter_exchange=""``) straight back
  to their route's queue, never through the dead-letter exchange (that would park).

When the broker refuses a quorum queue (an old broker, quorum feature flag off, or
the queue already exists as a classic queue), the queue is declared as a classic
durable queue with the same dead-letter exchange and routing key, a warning is
logged and the :class:`TopologyReport` says so. Declaring again with the same
topology changes nothing; bindings are only ever added.

Failure modes: ``ConfigurationError`` when the topology is inconsistent (duplicate
queue names, bindings on the default exchange, dead-lettering to the default exchange
without a routing key, a TTL outside 0..2^32-1 ms) or when the broker refuses a
declaration (an exchange or queue exists with other settings, no permission),
naming the exchange or queue and quoting the broker; ``TransientError`` when the
connection is lost (see ``adapters/amqp/errors.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pika import exceptions as pika_errors

from contracts.errors import ConfigurationError
from integration.broker import QueueSpec, Topology

from .errors import describe

__all__ = [
    "PARKED_BINDING",
    "DeclaredQueue",
    "TopologyReport",
    "check_topology",
    "declare_topology",
    "queue_arguments",
    "topology_exchanges",
    "topology_queues",
]

log = logging.getLogger(__name__)

PARKED_BINDING = "#"
_MAX_TTL_MS = 2**32 - 1  # x-message-ttl is an unsigned 32-bit number of milliseconds


@dataclass(frozen=True, slots=True, kw_only=True)
class DeclaredQueue:
    name: str
    queue_type: str  # "quorum" or "classic"
    why_classic: str | None = None  # the broker's refusal of the quorum declaration


@dataclass(frozen=True, slots=True, kw_only=True)
class TopologyReport:
    exchanges: tuple[str, ...]
    queues: tuple[DeclaredQueue, ...]

    def queue_type(self, name: str) -> str:
        return next(queue.queue_type for queue in self.queues if queue.name == name)


def check_topology(topology: Topology) -> None:
    """Refuse a topology that no broker could declare as meant (``ConfigurationError``)."""
    for role, name in (
        ("inbound exchange", topology.inbound_exchange),
        ("outbound exchange", topology.outbound_exchange),
        ("dead-letter exchange", topology.dead_letter_exchange),
        ("parking-lot queue", topology.parked_queue),
    ):
        if not name:
            raise ConfigurationError(f"topology: the {role} has no name")
    seen: set[str] = set()
    for spec in topology_queues(topology):
        if spec.name in seen or not spec.name:
            raise ConfigurationError(
                f"topology: queue name {spec.name!r} is empty or used twice; "
                "every queue needs its own name"
            )
        seen.add(spec.name)
        if not spec.exchange and spec.bindings:
            raise ConfigurationError(
                f"topology: queue {spec.name!r} binds {list(spec.bindings)} on the default "
                "exchange ''; name a topic exchange (the default exchange routes by queue name)"
            )
        if spec.dead_letter_exchange == "" and not spec.dead_letter_routing_key:
            raise ConfigurationError(
                f"topology: queue {spec.name!r} dead-letters to the default exchange '' "
                "without a dead-letter routing key; give the target queue's name"
            )
        if spec.message_ttl_ms is not None and not 0 <= spec.message_ttl_ms <= _MAX_TTL_MS:
            raise ConfigurationError(
                f"topology: queue {spec.name!r} has message TTL {spec.message_ttl_ms} ms; "
                f"RabbitMQ accepts 0 to {_MAX_TTL_MS} ms"
            )


def topology_exchanges(topology: Topology) -> tuple[str, ...]:
    """Every exchange the topology needs, in declaration order, each once."""
    names = [topology.inbound_exchange, topology.outbound_exchange, topology.dead_letter_exchange]
    for spec in topology.queues:
        names += [spec.exchange, spec.dead_letter_exchange or ""]
    return tuple(dict.fromkeys(name for name in names if name))


def topology_queues(topology: Topology) -> tuple[QueueSpec, ...]:
    """The parking-lot queue (bound to the dead-letter exchange with ``#``), then the specs."""
    parked = QueueSpec(
        name=topology.parked_queue,
        exchange=topology.dead_letter_exchange,
        bindings=(PARKED_BINDING,),
    )
    return (parked, *topology.queues)


def queue_arguments(spec: QueueSpec, *, quorum: bool) -> dict[str, Any]:
    arguments: dict[str, Any] = {"x-queue-type": "quorum"} if quorum else {}
    if spec.message_ttl_ms is not None:
        arguments["x-message-ttl"] = spec.message_ttl_ms
    if spec.dead_letter_exchange is not None:  # "" is the default exchange
        arguments["x-dead-letter-exchange"] = spec.dead_letter_exchange
        if quorum:
            arguments["x-dead-letter-strategy"] = "at-least-once"
            arguments["x-overflow"] = "reject-publish"
    if spec.dead_letter_routing_key:
        arguments["x-dead-letter-routing-key"] = spec.dead_letter_routing_key
    return arguments


# Opens a fresh channel: a refused declaration closes the channel it was made on.
ChannelOpener = Callable[[], Any]


def declare_topology(open_channel: ChannelOpener, topology: Topology) -> TopologyReport:
    """Declare ``topology`` with pika blocking channels from ``open_channel``."""
    check_topology(topology)
    channel = open_channel()
    exchanges = topology_exchanges(topology)
    for exchange in exchanges:
        try:
            channel.exchange_declare(exchange, exchange_type="topic", durable=True)
        except pika_errors.ChannelClosedByBroker as exc:
            raise ConfigurationError(
                f"exchange {exchange!r} cannot be declared as a durable topic exchange: "
                f"the broker said {describe(exc)}"
            ) from exc
    declared: list[DeclaredQueue] = []
    for spec in topology_queues(topology):
        channel, outcome = _declare_queue(open_channel, channel, spec)
        declared.append(outcome)
        for pattern in spec.bindings:
            try:
                channel.queue_bind(spec.name, spec.exchange, routing_key=pattern)
            except pika_errors.ChannelClosedByBroker as exc:
                raise ConfigurationError(
                    f"queue {spec.name!r} cannot be bound to exchange {spec.exchange!r} "
                    f"with {pattern!r}: the broker said {describe(exc)}"
                ) from exc
    channel.close()
    return TopologyReport(exchanges=exchanges, queues=tuple(declared))


def _declare_queue(
    open_channel: ChannelOpener, channel: Any, spec: QueueSpec
) -> tuple[Any, DeclaredQueue]:
    try:
        channel.queue_declare(spec.name, durable=True, arguments=queue_arguments(spec, quorum=True))
    except pika_errors.ChannelClosedByBroker as refusal:
        channel = open_channel()
        try:
            channel.queue_declare(
                spec.name, durable=True, arguments=queue_arguments(spec, quorum=False)
            )
        except pika_errors.ChannelClosedByBroker as exc:
            raise ConfigurationError(
                f"queue {spec.name!r} cannot be declared: as a quorum queue the broker said "
                f"{describe(refusal)}; as a classic queue it said {describe(exc)}"
            ) from exc
        log.warning(
            "queue %r is a classic durable queue, not a quorum queue: the broker refused "
            "quorum (%s); dead-lettering from it is at-most-once",
            spec.name,
            describe(refusal),
        )
        return channel, DeclaredQueue(
            name=spec.name, queue_type="classic", why_classic=describe(refusal)
        )
    return channel, DeclaredQueue(name=spec.name, queue_type="quorum")
