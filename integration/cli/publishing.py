"""Publishing from the command line (``send``, ``failed replay``, ``failed edit``).

The commands publish to the inbound exchange as SAP or the MES would:
persistent, ``mandatory``, confirms awaited per batch of ``BATCH``, with a
progress bar. The topology is declared first (idempotent), so that a message
sent before the service ever ran waits in its durable queue instead of being
unroutable.

Failure modes: the embedded ``memory://`` broker lives inside ``mesbridge run``
and cannot be reached from another process: ``ConfigurationError`` (exit 2).
An unreachable broker raises ``TransientError``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

import click

from adapters.brokers import connect_broker
from contracts.errors import ConfigurationError
from integration.broker import BrokerPublisher, Envelope, PublishResult, Topology
from integration.service import build_topology, process_order_route

__all__ = [
    "BATCH",
    "check_broker_url",
    "inbound_publisher",
    "inbound_topology",
    "publish_with_progress",
]

BATCH = 100


def check_broker_url(url: str) -> None:
    """Refuse a broker another process cannot reach (the embedded one), before any work."""
    if url.startswith("memory://"):
        raise ConfigurationError(
            "the embedded broker lives inside `mesbridge run`; give --broker amqp://… "
            "(or MESBRIDGE_BROKER_URL)"
        )


def inbound_topology(prefix: str) -> Topology:
    """The names under ``prefix`` (``<prefix>.in`` and the queues the CLI declares)."""
    return build_topology((process_order_route(tulip=False, prefix=prefix),), prefix=prefix)


@contextmanager
def inbound_publisher(url: str, topology: Topology) -> Iterator[BrokerPublisher]:
    """A publisher on ``url`` after declaring ``topology``; closed (with the broker) on exit."""
    check_broker_url(url)
    broker = connect_broker(url)
    try:
        broker.declare(topology)
        publisher = broker.publisher()
        try:
            yield publisher
        finally:
            publisher.close()
    finally:
        broker.close()


def publish_with_progress(
    publisher: BrokerPublisher,
    envelopes: Sequence[Envelope],
    *,
    label: str,
    file: TextIO | None = None,
    on_batch: Callable[[int, Sequence[PublishResult]], None] | None = None,
) -> list[PublishResult]:
    """Publish in batches of ``BATCH``, confirms awaited per batch; one result per envelope.

    ``on_batch(start, results)`` runs after each batch is confirmed, before the next
    is published: what it records is never ahead of what the broker has taken.
    """
    results: list[PublishResult] = []
    with click.progressbar(length=len(envelopes), label=label, file=file) as bar:
        for start in range(0, len(envelopes), BATCH):
            chunk = envelopes[start : start + BATCH]
            confirmed = publisher.publish_batch(chunk)
            results.extend(confirmed)
            if on_batch is not None:
                on_batch(start, confirmed)
            bar.update(len(chunk))
    return results
