"""The outbox relay: deliver settled outputs, then mark them sent.

One relay per destination, each in its own thread, with two ways in:

- hand-over (the fast path): the consumer loop settles a batch with
  ``Store.settle_and_claim``, which writes the new outbox rows already claimed
  by this instance, and hands those rows to ``hand_over``. The relay delivers
  them from memory and marks them sent: the outbox stays the durable record,
  but nothing is claimed or read back from the database.
- the backlog: the relay claims pending outbox rows (a lease, so competing
  instances never send the same row at once): rows written without a claim,
  rows another instance claimed and never sent (it died), rows given back. It
  looks there when it has nothing handed over, and at least every
  ``idle_wait_s`` while it has.

A crash between settling and marking means the row is sent again after its
lease: the output keeps its deterministic message id (AMQP ``message_id``;
Tulip record ``id``), so the resend is recognisable downstream, and a Tulip
upsert of the same record has no second effect. Hand-over is bounded
(``max_handed_over`` rows waiting): a consumer loop that finds it full waits,
and gives its rows back to the backlog (``Store.release``) if the relay does
not make room in time.

- AMQP: one ``publish_batch`` per claim, confirms awaited for the batch.
  An unroutable or nacked output stays in the outbox (released) and is tried
  again; it is never dropped.
- Tulip: one upsert per row, paced by the client's per-table rate limiter.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Protocol

from contracts.errors import MesbridgeError, PermanentError, TransientError
from integration.broker import Broker, BrokerPublisher, Envelope, PublishResult
from integration.faults import crash_point
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
        max_handed_over: int = 1000,
    ) -> None:
        self._store = store
        self._sink = sink
        self._metrics = metrics
        self._batch_size = batch_size
        self._idle_wait_s = idle_wait_s
        self._backoff_max_s = backoff_max_s
        self._max_handed_over = max_handed_over
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._handed: deque[OutboxRow] = deque()
        self._room = threading.Condition()
        self._ended = False
        self._next_backlog_at = 0.0
        # Delivered, not yet marked sent (the database failed): marked before anything else.
        self._unmarked: list[int] = []
        self._unmarked_at = datetime.now(UTC)

    @property
    def destination(self) -> str:
        return self._sink.destination

    def wake(self) -> None:
        self._wake.set()

    def hand_over(self, rows: Sequence[OutboxRow], *, timeout_s: float = 5.0) -> bool:
        """Take rows this instance settled and claimed, to deliver from memory.

        Waits while ``max_handed_over`` rows are waiting already. False when there was
        no room within ``timeout_s`` or the relay is stopping: the caller then releases
        the rows to the backlog.
        """
        if not rows:
            return True
        deadline = time.monotonic() + timeout_s
        with self._room:
            while len(self._handed) + len(rows) > max(self._max_handed_over, len(rows)):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._ended:
                    return False
                self._room.wait(min(remaining, 0.1))
            if self._ended:
                return False
            self._handed.extend(rows)
        self._wake.set()
        return True

    def stop(self) -> None:
        """Deliver what is pending (best effort), then return from ``run``."""
        self._stopping.set()
        self._wake.set()

    def run(self) -> None:
        backoff = 0.2
        while True:
            self._wake.clear()
            try:
                self._mark_unmarked()
                sent = self._deliver_handed_over()
                if sent == 0 or time.monotonic() >= self._next_backlog_at:
                    found = self.drain_once()
                    self._next_backlog_at = 0.0 if found else time.monotonic() + self._idle_wait_s
                    sent += found
                backoff = 0.2
            except MesbridgeError as exc:
                log.warning(
                    "%s relay: %s; backing off %.1f s", self._sink.destination, exc, backoff
                )
                # Waiting rows go back to the backlog: whichever relay gets through first
                # sends them, and none waits out a lease in this one's hands.
                self._release_handed_over(end=False)
                if self._stopping.is_set():
                    break
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, self._backoff_max_s)
                continue
            if sent == 0 and not self._handed:
                if self._stopping.is_set():
                    break
                self._wake.wait(self._idle_wait_s)
        self._release_handed_over(end=True)
        if self._unmarked:
            log.warning(
                "%s relay: %d delivered rows are not marked sent; they are sent again after "
                "their lease, with the same message ids",
                self._sink.destination,
                len(self._unmarked),
            )
        self._sink.close()

    def drain_once(self) -> int:
        """Claim pending rows from the backlog and deliver them; how many were delivered."""
        rows = self._store.pending_outbox(
            limit=self._batch_size, destination=self._sink.destination
        )
        return self._deliver(rows)

    def _deliver_handed_over(self) -> int:
        with self._room:
            count = min(len(self._handed), self._batch_size)
            rows = [self._handed.popleft() for _ in range(count)]
            self._room.notify_all()
        return self._deliver(rows)

    def _mark_unmarked(self) -> None:
        """Mark delivered rows sent; kept for the next try if the database fails meanwhile
        (otherwise they would wait out their lease and go out again)."""
        if self._unmarked:
            self._store.mark_sent(self._unmarked, sent_at=self._unmarked_at)
            self._unmarked = []

    def _release_handed_over(self, *, end: bool) -> None:
        """Rows still waiting go back to the backlog (best effort); with ``end``, hand-over
        closes (the relay is ending)."""
        with self._room:
            self._ended = self._ended or end
            rows, self._handed = list(self._handed), deque()
            self._room.notify_all()
        if rows:
            try:
                self._store.release([row.id for row in rows])
            except MesbridgeError as exc:
                log.warning(
                    "%s relay: %d rows keep their claim until the lease ends: %s",
                    self._sink.destination,
                    len(rows),
                    exc,
                )

    def _deliver(self, rows: Sequence[OutboxRow]) -> int:
        if not rows:
            return 0
        try:
            delivered = set(self._sink.deliver(rows))
        except MesbridgeError:
            self._store.release([row.id for row in rows])
            raise
        crash_point("after-publish-before-mark-sent")
        now = datetime.now(UTC)
        if delivered:
            self._unmarked.extend(sorted(delivered))
            self._unmarked_at = now
            self._mark_unmarked()
        # Rows not delivered (unroutable, refused) keep their claim until the lease runs out:
        # that is their back-off, and newer rows are not held up behind them.
        for row in rows:
            route = row.headers.get("x-mesbridge-route")
            if row.id in delivered and route:
                self._metrics.observe_end_to_end(route, (now - row.created_at).total_seconds())
        return len(delivered)
