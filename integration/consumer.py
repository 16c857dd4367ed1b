"""The consumer loop of one route: fetch a micro-batch, process, settle, park, acknowledge.

Per batch (up to ``batch_size`` deliveries or ``batch_wait_s`` of waiting):
every delivery goes through the pipeline; the records are settled in ONE
database transaction (inbox + outbox, deduplicated by the database); permanent
failures and idempotency conflicts are written to the failed-message store and
copied to the parking-lot queue; only then is the whole batch acknowledged with
one multiple-ack. A crash anywhere before the ack means redelivery, and the
inbox turns the redelivered inputs into duplicates: no second effect.

A transient error (database or broker away) must not park anything: the loop
drops its consumer (unacknowledged deliveries go back to the queue), backs off
exponentially with jitter, reconnects and resumes.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from contracts.errors import IdempotencyConflict, TransientError
from integration.broker import (
    Broker,
    BrokerConsumer,
    BrokerPublisher,
    Delivery,
    Envelope,
    PublishResult,
)
from integration.metrics import Metrics, Outcome
from integration.pipeline import PipelineResult, RouteSpec
from integration.store import FailedMessage, SettleOutcome, Store

__all__ = ["BatchSettings", "ConsumerLoop"]

log = logging.getLogger("mesbridge.consumer")

_VALIDATION_ERRORS = frozenset({"ContractViolation", "UnknownContract"})


class BatchProcessor(Protocol):
    """The pipeline step for a batch: in this thread, or in worker processes."""

    def process(self, route: str, deliveries: Sequence[Delivery]) -> list[PipelineResult]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSettings:
    batch_size: int = 100
    batch_wait_s: float = 0.005
    prefetch: int = 200
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0


class ConsumerLoop:
    """Runs one route's consumption in the calling thread until ``stop()``."""

    def __init__(
        self,
        *,
        route: RouteSpec,
        processor: BatchProcessor,
        broker: Broker,
        store: Store,
        metrics: Metrics,
        parked_queue: str,
        settings: BatchSettings,
        on_settled: Callable[[], None] = lambda: None,
    ) -> None:
        self._route = route
        self._processor = processor
        self._broker = broker
        self._store = store
        self._metrics = metrics
        self._parked_queue = parked_queue
        self._settings = settings
        self._on_settled = on_settled
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._database_failed = False

    def stop(self) -> None:
        """Finish the batch in hand, then return from ``run``."""
        self._stopping.set()

    def run(self) -> None:
        route = self._route
        backoff = self._settings.backoff_initial_s
        consumer: BrokerConsumer | None = None
        publisher: BrokerPublisher | None = None
        while not self._stopping.is_set():
            try:
                if consumer is None or publisher is None:
                    consumer = self._broker.consumer(route.queue, prefetch=self._settings.prefetch)
                    publisher = self._broker.publisher()
                    self._metrics.set_connection("broker", True)
                deliveries = consumer.fetch(self._settings.batch_size, self._settings.batch_wait_s)
                if not deliveries:
                    continue
                self._handle(deliveries, consumer, publisher)
                backoff = self._settings.backoff_initial_s
            except TransientError as exc:
                if not self._database_failed:
                    self._metrics.set_connection("broker", False)
                self._database_failed = False
                log.warning("route %s: %s; backing off %.1f s", route.name, exc, backoff)
                _close_quietly(consumer, publisher)
                consumer = publisher = None
                self._stopping.wait(backoff * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
                backoff = min(backoff * 2, self._settings.backoff_max_s)
        _close_quietly(consumer, publisher)

    def _handle(
        self,
        deliveries: Sequence[Delivery],
        consumer: BrokerConsumer,
        publisher: BrokerPublisher,
    ) -> None:
        route = self._route.name
        started = time.perf_counter()
        self._metrics.received(route, len(deliveries))
        results = self._processor.process(route, deliveries)
        processed_s = time.perf_counter() - started
        records = [result.record for result in results if result.record is not None]
        try:
            outcomes = self._store.settle_batch(records)
            self._metrics.set_connection("database", True)
        except TransientError:
            self._metrics.set_connection("database", False)
            self._database_failed = True
            raise
        failures = [result.failure for result in results if result.failure is not None]
        failures += self._conflicts(results, outcomes)
        for failure in failures:
            self._store.record_failure(failure)
        self._park(publisher, failures)
        consumer.ack_through(deliveries[-1].delivery_tag)
        self._count(results, outcomes)
        self._metrics.batch_settled(len(deliveries), time.perf_counter() - started)
        # The pipeline step runs a batch at a time (in worker processes): each message is
        # observed with its share of the batch's time, so the histogram counts messages.
        for _ in results:
            self._metrics.observe_processing(route, processed_s / len(results))
        if records:
            self._on_settled()

    def _conflicts(
        self, results: Sequence[PipelineResult], outcomes: Sequence[SettleOutcome]
    ) -> list[FailedMessage]:
        with_records = [result for result in results if result.record is not None]
        conflicts: list[FailedMessage] = []
        for result, outcome in zip(with_records, outcomes, strict=True):
            if outcome is not SettleOutcome.CONFLICT:
                continue
            assert result.record is not None
            record = result.record
            error = IdempotencyConflict(
                f"idempotency key {record.idempotency_key} was settled before with other "
                f"content; this message (sha256 {record.content_sha256}) is parked for review",
                message_ref=f"route {record.route}",
            )
            conflicts.append(
                FailedMessage.from_error(
                    error,
                    body=result.delivery.body,
                    headers={"routing_key": result.delivery.routing_key},
                    route=record.route,
                    contract=record.contract,
                    attempts=1,
                    first_failed_at=record.received_at,
                    last_failed_at=record.received_at,
                    idempotency_key=record.idempotency_key,
                )
            )
        return conflicts

    def _park(self, publisher: BrokerPublisher, failures: Sequence[FailedMessage]) -> None:
        """Copy each parked message, original bytes and the reason, to the parking-lot queue."""
        if not failures:
            return
        envelopes = [
            Envelope(
                exchange="",
                routing_key=self._parked_queue,
                body=failure.body,
                message_id=f"parked:{failure.route}:{failure.first_failed_at.isoformat()}:{i}",
                content_type=failure.headers.get("content_type", "application/octet-stream"),
                headers={
                    **failure.headers,
                    "x-mesbridge-route": failure.route,
                    "x-mesbridge-error-class": failure.error_class,
                    "x-mesbridge-error": failure.error_text[:4000],
                    "x-mesbridge-parked-at": datetime.now(UTC).isoformat(),
                },
            )
            for i, failure in enumerate(failures)
        ]
        results = publisher.publish_batch(envelopes)
        if any(result is not PublishResult.CONFIRMED for result in results):
            # The failure rows are stored; the queue copy is a convenience. Say so loudly.
            log.error("parking-lot copy not confirmed for %d message(s)", len(envelopes))

    def _count(self, results: Sequence[PipelineResult], outcomes: Sequence[SettleOutcome]) -> None:
        route = self._route.name
        ok = sum(1 for outcome in outcomes if outcome is SettleOutcome.ACCEPTED)
        duplicate = sum(1 for outcome in outcomes if outcome is SettleOutcome.DUPLICATE)
        parked = len(results) - ok - duplicate
        for outcome, count in ((Outcome.OK, ok), (Outcome.DUPLICATE, duplicate)):
            if count:
                self._metrics.processed(route, outcome, count)
        if parked:
            self._metrics.processed(route, Outcome.PARKED, parked)
        for result in results:
            if result.failure is not None and result.failure.error_class in _VALIDATION_ERRORS:
                self._metrics.validation_failed(result.contract or "unknown")


def _close_quietly(*parts: BrokerConsumer | BrokerPublisher | None) -> None:
    for part in parts:
        if part is None:
            continue
        try:
            part.close()
        except Exception:
            log.debug("closing %r failed", part, exc_info=True)
