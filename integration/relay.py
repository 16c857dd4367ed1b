"""The outbox relay: deliver settled outputs, then mark them sent.

One relay per destination, each in its own thread. It claims pending outbox
rows (a lease, so competing instances never send the same row at once),
delivers them, and marks the delivered ones sent. A crash between delivery and
marking means the row is sent again after its lease: the output keeps its
deterministic message id (AMQP ``message_id``; Tulip record ``id``), so the
resend is recognisable downstream, and a Tulip upsert of the same record has
no second effect.

- AMQP: one ``publish_batch`` per claim, confirms awaited for the batch.
  An unroutable or nacked output stays in the outbox (released) and is tried
  again; it is never dropped.
- Tulip: one upsert per row, paced by the client's per-table rate limiter.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from contracts.errors import MesbridgeError, PermanentError, TransientError
from integration.broker import Broker, BrokerPublisher, Envelope, PublishResult
from integration.metrics import Metrics
from integration.store import OutboxRow, Store

__all__ = ["AmqpSink", "OutboxRelay", "Sink", "TulipSink"]

log = logging.getLogger("mesbridge.relay")


class Sink(Protocol):
    destination: str

    def deliver(self, rows: Sequence[OutboxRow]) -> list[int]:
        """Deliver what it can; return the ids of the rows delivered."""
        ...

    def close(self) -> None: ...


class AmqpSink:
    destination = "amqp"

    def __init__(self, broker: Broker, metrics: Metrics) -> None:
        self._broker = broker
        self._metrics = metrics
        self._publisher: BrokerPublisher | None = None

    def deliver(self, rows: Sequence[OutboxRow]) -> list[int]:
        if self._publisher is None:
            self._publisher = self._broker.publisher()
        envelopes = [
            Envelope(
                exchange=row.exchange or "",
                routing_key=row.routing_key,
                body=row.body,
                message_id=row.message_id,
                content_type=row.content_type,
                headers=dict(row.headers),
            )
            for row in rows
        ]
        try:
            results = self._publisher.publish_batch(envelopes)
        except TransientError:
            self.close()
            raise
        delivered: list[int] = []
        for row, result in zip(rows, results, strict=True):
            self._metrics.published(self.destination, result.value)
            if result is PublishResult.CONFIRMED:
                delivered.append(row.id)
            else:
                log.error(
                    "output %s to %s/%s was %s; it stays in the outbox and is tried again",
                    row.message_id,
                    row.exchange,
                    row.routing_key,
                    result.value,
                )
        return delivered

    def close(self) -> None:
        if self._publisher is not None:
            publisher, self._publisher = self._publisher, None
            try:
                publisher.close()
            except Exception:
                log.debug("closing publisher failed", exc_info=True)


class _TulipWriter(Protocol):
    def upsert_record(self, record: dict[str, object]) -> object: ...

    def close(self) -> None: ...


class TulipSink:
    destination = "tulip"

    def __init__(self, client: _TulipWriter, metrics: Metrics) -> None:
        self._client = client
        self._metrics = metrics

    def deliver(self, rows: Sequence[OutboxRow]) -> list[int]:
        delivered: list[int] = []
        for row in rows:
            payload = json.loads(row.body)
            records = payload if isinstance(payload, list) else [payload]
            try:
                for record in records:
                    self._client.upsert_record(record)
            except PermanentError as exc:
                # Tulip refused the record: keep it in the outbox, visible, and say why.
                self._metrics.published(self.destination, "failed")
                log.error("Tulip refused output %s: %s", row.message_id, exc)
                continue
            self._metrics.published(self.destination, "confirmed")
            delivered.append(row.id)
        return delivered

    def close(self) -> None:
        self._client.close()


class OutboxRelay:
    """Runs one sink's delivery loop in the calling thread until ``stop()``."""

    def __init__(
        self,
        *,
        store: Store,
        sink: Sink,
        metrics: Metrics,
        batch_size: int = 200,
        idle_wait_s: float = 0.2,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._store = store
        self._sink = sink
        self._metrics = metrics
        self._batch_size = batch_size
        self._idle_wait_s = idle_wait_s
        self._backoff_max_s = backoff_max_s
        self._wake = threading.Event()
        self._stopping = threading.Event()

    @property
    def destination(self) -> str:
        return self._sink.destination

    def wake(self) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Deliver what is pending (best effort), then return from ``run``."""
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        backoff = 0.2
        while True:
            self._wake.clear()
            try:
                sent = self.drain_once()
                backoff = 0.2
            except MesbridgeError as exc:
                log.warning(
                    "%s relay: %s; backing off %.1f s", self._sink.destination, exc, backoff
                )
                if self._stopping.is_set():
                    break
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            if sent == 0:
                if self._stopping.is_set():
                    break
                self._wake.wait(self._idle_wait_s)
        self._sink.close()

    def drain_once(self) -> int:
        rows = self._store.pending_outbox(
            limit=self._batch_size, destination=self._sink.destination
        )
        if not rows:
            return 0
        try:
            delivered = set(self._sink.deliver(rows))
        except MesbridgeError:
            self._store.release([row.id for row in rows])
            raise
        now = datetime.now(UTC)
        if delivered:
            self._store.mark_sent(sorted(delivered), sent_at=now)
        # Rows not delivered (unroutable, refused) keep their claim until the lease runs out:
        # that is their back-off, and newer rows are not held up behind them.
        for row in rows:
            route = row.headers.get("x-mesbridge-route")
            if row.id in delivered and route:
                self._metrics.observe_end_to_end(route, (now - row.created_at).total_seconds())
        return len(delivered)
