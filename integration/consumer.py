"""The consumer loop of one route: fetch a micro-batch, process, settle, park, acknowledge.

Batches overlap: while the pipeline step works on one batch (in worker
processes), the loop fetches the next and hands it over too, then settles and
acknowledges the first. Batches are settled and acknowledged strictly in the
order they were fetched, so one loop settles a queue's messages in the order
the broker delivered them, and the outputs go out in that order (``run``).

Per batch (up to ``batch_size`` deliveries or ``batch_wait_s`` of waiting):
deliveries whose exact bytes took effect before are duplicates at once (one
inbox lookup by content hash); every other delivery goes through the pipeline;
the records are settled in ONE
database transaction (inbox + outbox, deduplicated by the database); permanent
failures and idempotency conflicts are written to the failed-message store and
copied to the parking-lot queue; only then is the whole batch acknowledged with
one multiple-ack. A crash anywhere before the ack means redelivery, and the
inbox turns the redelivered inputs into duplicates: no second effect.

A message the pipeline answers with ``RetryLater`` (it cannot take effect yet)
is copied to the route's delay queue for its attempt (``integration/retry.py``),
with its attempt count, first-seen time and last error in headers; the copy is
confirmed by the broker before the batch is acknowledged, so the messages behind
it flow on and the message itself comes back after the delay. When the attempt
was the last one (``RetryPolicy.max_attempts``) or the message is older than
``max_age``, it is parked instead (error class ``RetryLater``, "gave up after N
attempts over T: <last error>").

A transient error (database or broker away) must not park anything: the loop
drops its consumer (unacknowledged deliveries go back to the queue), backs off
exponentially with jitter, reconnects and resumes. So does any unexpected
exception (a bug, a worker process that died), logged with its traceback and
counted in ``mesbridge_consumer_errors_total``: the thread never dies silently.
After ``FAILING_AFTER`` failures in a row :meth:`ConsumerLoop.health` raises,
which ``/readyz`` shows for the route until a batch goes through again.
"""

from __future__ import annotations

import hashlib
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from contracts.errors import IdempotencyConflict, RetryLater, TransientError
from integration.broker import (
    Broker,
    BrokerConsumer,
    BrokerPublisher,
    Delivery,
    Envelope,
    PublishResult,
)
from integration.faults import crash_point
from integration.metrics import Metrics, Outcome
from integration.pipeline import PendingResults, PipelineResult, RouteSpec, failed_message
from integration.replay import REPLAY_HEADER
from integration.retry import (
    RetryPolicy,
    RetryState,
    describe_age,
    retry_envelope,
    retry_headers,
    returned,
)
from integration.store import FailedMessage, OutboxRow, SettleOutcome, Store

__all__ = ["FAILING_AFTER", "BatchProcessor", "BatchSettings", "ConsumerLoop"]

log = logging.getLogger("mesbridge.consumer")

_VALIDATION_ERRORS = frozenset({"ContractViolation", "UnknownContract"})
# How long a fetch on a queue that was empty last time may wait (also bounds how long
# ``stop()`` takes to be noticed by an idle loop).
_IDLE_FETCH_S = 0.1
# Failures in a row after which the loop reports itself as failing (``health``).
FAILING_AFTER = 3


class BatchProcessor(Protocol):
    """The pipeline step for a batch: in this thread, or in worker processes."""

    def submit(self, route: str, deliveries: Sequence[Delivery]) -> PendingResults:
        """Start the step (or defer it) and return at once."""
        ...


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchSettings:
    batch_size: int = 100
    batch_wait_s: float = 0.005
    prefetch: int = 300
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0

    @property
    def in_flight(self) -> int:
        """Batches one loop has in the pipeline step at once: as many as prefetch allows.

        While the loop settles the oldest, the workers have the others. With two, make
        bench kept the machine busy 1.74-1.79 of its 2 CPUs, with three 1.92-1.93: the
        workers ran out of work while the loop waited on the database and the broker.
        """
        return max(1, self.prefetch // self.batch_size)


@dataclass(frozen=True, slots=True)
class _Batch:
    """A fetched batch whose pipeline step has been started."""

    deliveries: list[Delivery]
    results: PendingResults


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
        on_settled: Callable[[Sequence[OutboxRow]], None] = lambda _claimed: None,
        claim: Collection[str] = (),
        retry: RetryPolicy | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        rng: random.Random | None = None,
    ) -> None:
        self._route = route
        self._processor = processor
        self._broker = broker
        self._store = store
        self._metrics = metrics
        self._parked_queue = parked_queue
        self._settings = settings
        self._on_settled = on_settled
        # Destinations whose new outbox rows this loop claims and hands to ``on_settled``.
        self._claim = frozenset(claim)
        self._retry = retry or RetryPolicy()
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not secrecy
        self._stopping = threading.Event()
        self._idle = threading.Event()
        self._database_failed = False
        # Failures in a row (reset by a batch that went through or an empty fetch).
        self._failures = 0
        self._failing_since = datetime.now(UTC)
        self._failing = ""

    @property
    def route(self) -> RouteSpec:
        return self._route

    def health(self) -> None:
        """Raise ``RuntimeError`` while the loop keeps failing (for ``/readyz``)."""
        if self._failures >= FAILING_AFTER:
            raise RuntimeError(self._failing)

    def stop(self) -> None:
        """Settle the batches in hand, then return from ``run``."""
        self._stopping.set()

    def run(self) -> None:
        """Fetch, start and settle batches until ``stop()``; then settle those in hand.

        Up to ``in_flight`` batches are in the pipeline step at once; the oldest is settled
        and acknowledged first. A failure drops the consumer: every unacknowledged delivery,
        of every batch in hand, goes back to the queue in its place, and the loop starts
        again after the back-off.
        """
        route = self._route
        backoff = self._settings.backoff_initial_s
        consumer: BrokerConsumer | None = None
        publisher: BrokerPublisher | None = None
        in_hand: deque[_Batch] = deque()
        busy = False
        while not self._stopping.is_set():
            try:
                if consumer is None or publisher is None:
                    consumer = self._broker.consumer(route.queue, prefetch=self._settings.prefetch)
                    publisher = self._broker.publisher()
                    self._metrics.set_connection("broker", True)
                if len(in_hand) < self._settings.in_flight:
                    deliveries = consumer.fetch(
                        self._settings.batch_size, self._fetch_wait(busy, in_hand)
                    )
                    busy = bool(deliveries)
                    if deliveries:
                        in_hand.append(self._start(deliveries))
                        if len(in_hand) < self._settings.in_flight:
                            continue
                    elif not in_hand:
                        self._failures = 0
                        continue
                self._settle(in_hand.popleft(), consumer, publisher)
                self._failures = 0
                backoff = self._settings.backoff_initial_s
            except Exception as exc:
                in_hand.clear()  # unacknowledged: back to the queue when the consumer closes
                if isinstance(exc, TransientError):
                    if not self._database_failed:
                        self._metrics.set_connection("broker", False)
                    log.warning("route %s: %s; backing off %.1f s", route.name, exc, backoff)
                else:
                    # A bug or a dead worker process: the batches in hand go back to the queue
                    # (the connection is dropped below) and are tried again after the back-off.
                    log.exception(
                        "route %s: unexpected error; the unacknowledged batches return to the "
                        "queue, backing off %.1f s",
                        route.name,
                        backoff,
                    )
                    self._metrics.consumer_error(route.name)
                self._database_failed = False
                self._note_failure(exc)
                _close_quietly(consumer, publisher)
                consumer = publisher = None
                self._stopping.wait(backoff * random.uniform(0.8, 1.2))  # noqa: S311 - jitter
                backoff = min(backoff * 2, self._settings.backoff_max_s)
        self._settle_in_hand(in_hand, consumer, publisher)
        _close_quietly(consumer, publisher)

    def _fetch_wait(self, busy: bool, in_hand: Collection[_Batch]) -> float:
        if in_hand:
            # Only what is there now: a batch in hand waits to be settled.
            return 0.0
        # fetch returns as soon as deliveries arrive: waiting longer on an idle queue
        # costs no latency, and saves a wake-up every batch_wait_s per loop.
        if busy:
            return self._settings.batch_wait_s
        return max(self._settings.batch_wait_s, _IDLE_FETCH_S)

    def _settle_in_hand(
        self,
        in_hand: deque[_Batch],
        consumer: BrokerConsumer | None,
        publisher: BrokerPublisher | None,
    ) -> None:
        """On stop: settle the batches already in the pipeline step, oldest first."""
        if consumer is None or publisher is None:
            return
        try:
            while in_hand:
                self._settle(in_hand.popleft(), consumer, publisher)
        except Exception:
            log.exception(
                "route %s: settling the batches in hand on stop failed; their unacknowledged "
                "deliveries return to the queue",
                self._route.name,
            )

    def _start(self, deliveries: Sequence[Delivery]) -> _Batch:
        self._metrics.received(self._route.name, len(deliveries))
        # Back from a delay queue: as first published (exchange, routing key), same tag.
        as_published = [returned(delivery, self._route.queue) for delivery in deliveries]
        return _Batch(as_published, self._submit(as_published))

    def _settle(self, batch: _Batch, consumer: BrokerConsumer, publisher: BrokerPublisher) -> None:
        route = self._route.name
        deliveries = batch.deliveries
        results = batch.results()
        crash_point("mid-batch")
        started = time.perf_counter()
        records = [result.record for result in results if result.record is not None]
        try:
            outcomes, claimed = self._store.settle_and_claim(records, claim=self._claim)
            self._metrics.set_connection("database", True)
        except TransientError:
            self._metrics.set_connection("database", False)
            self._database_failed = True
            raise
        if records:
            # At once: rows claimed by this instance and not handed over would wait out
            # their lease if anything below fails.
            self._on_settled(claimed)
            self._hand_over_uncertain()
        retries, gave_up = self._plan_retries(results)
        # Confirmed before the ack below: a crash in between retries a message twice (the
        # inbox makes the second a duplicate), never not at all.
        self._send_retries(publisher, retries)
        failures = [result.failure for result in results if result.failure is not None]
        failures += gave_up
        failures += self._conflicts(results, outcomes)
        for failure in failures:
            self._store.record_failure(failure)
        self._park(publisher, failures)
        crash_point("after-commit-before-ack")
        consumer.ack_through(deliveries[-1].delivery_tag)
        self._count(results, outcomes, retried=len(retries))
        self._metrics.batch_settled(len(deliveries), time.perf_counter() - started)
        # Measured where the step ran (a worker process): a batch's time in the loop also
        # holds its wait behind the batches fetched before it.
        for result in results:
            if result.processing_s is not None:
                self._metrics.observe_processing(route, result.processing_s)

    def _submit(self, deliveries: Sequence[Delivery]) -> PendingResults:
        """The pipeline step for each delivery, but for those whose exact bytes took effect
        before, or came earlier in this batch: DESIGN §1 deduplicates before validating and
        transforming.

        Redeliveries after a crash or a lost connection, and SAP sending an IDoc again, come
        as the same bytes; each would otherwise cost the whole step (about a millisecond
        for a realistic order) to be found a duplicate when settled. A replay is always
        processed: settling it resolves its failed message. Repeats that are not
        byte-identical are found when settled.
        """
        route = self._route.name
        hashes = {
            index: hashlib.sha256(delivery.body).hexdigest()
            for index, delivery in enumerate(deliveries)
            if REPLAY_HEADER not in delivery.headers
        }
        try:
            settled = self._store.settled_contents(hashes.values()) if hashes else {}
        except TransientError:
            self._metrics.set_connection("database", False)
            self._database_failed = True
            raise
        known = {index: settled[h] for index, h in hashes.items() if h in settled}
        first_with: dict[str, int] = {}
        copy_of: dict[int, int] = {}  # a later identical delivery in this batch -> the first
        for index, content in hashes.items():
            if index in known:
                continue
            if content in first_with:
                copy_of[index] = first_with[content]
            else:
                first_with[content] = index
        fresh = [d for i, d in enumerate(deliveries) if i not in known and i not in copy_of]
        pending: PendingResults = self._processor.submit(route, fresh) if fresh else lambda: []

        def results() -> list[PipelineResult]:
            processed = iter(pending())
            done: list[PipelineResult] = []
            for index, delivery in enumerate(deliveries):
                if index in known:
                    done.append(
                        PipelineResult(delivery=delivery, route=route, duplicate_of=known[index])
                    )
                elif index in copy_of:
                    done.append(self._copy(done[copy_of[index]], delivery))
                else:
                    done.append(next(processed))
            return done

        return results

    def _copy(self, first: PipelineResult, delivery: Delivery) -> PipelineResult:
        """The result of a byte-identical copy of ``first``, delivered later in the batch.

        The step gives the same bytes the same record: settling it after ``first`` makes it
        the duplicate or conflict that settling it alone would. A copy of a message that
        failed or must be retried goes through the step itself, so that its failed message
        or retry copy is its own (message id, headers, redelivery flag).
        """
        if first.record is not None and first.failure is None and first.retry is None:
            return replace(first, delivery=delivery, processing_s=None)
        [result] = self._processor.submit(self._route.name, [delivery])()
        return result

    def _hand_over_uncertain(self) -> None:
        """The database answers again: rows of an earlier settle whose COMMIT outcome was
        lost with the connection are taken back and handed over, not left to their lease."""
        try:
            rows = self._store.reclaim_uncertain()
        except TransientError as exc:
            log.warning("route %s: %s; trying again after the next batch", self._route.name, exc)
            return
        if rows:
            log.info(
                "route %s: %d outbox rows of a settle interrupted during COMMIT taken back",
                self._route.name,
                len(rows),
            )
            self._on_settled(rows)

    def _note_failure(self, exc: Exception) -> None:
        self._failures += 1
        if self._failures == 1:
            self._failing_since = self._clock()
        first_line = (str(exc).splitlines() or [""])[0][:200]
        self._failing = (
            f"route {self._route.name}: {self._failures} failures in a row since "
            f"{self._failing_since:%Y-%m-%dT%H:%M:%SZ}; last {type(exc).__name__}: {first_line}"
        )

    def _plan_retries(
        self, results: Sequence[PipelineResult]
    ) -> tuple[list[Envelope], list[FailedMessage]]:
        """Each ``RetryLater``: a copy for its delay queue, or parked when out of attempts/age."""
        now = self._clock()
        retries: list[Envelope] = []
        gave_up: list[FailedMessage] = []
        for result in results:
            error = result.retry
            if error is None:
                continue
            state = RetryState.of(result.delivery)
            attempt = state.attempts + 1
            first_seen = state.first_seen or now
            age_ms = max(0, round((now - first_seen).total_seconds() * 1000))
            if self._retry.gives_up(attempt, age_ms):
                gave_up.append(
                    self._give_up(
                        result,
                        error,
                        attempt=attempt,
                        first_seen=first_seen,
                        now=now,
                        age_ms=age_ms,
                    )
                )
                continue
            retries.append(
                retry_envelope(
                    result.delivery,
                    route_queue=self._route.queue,
                    policy=self._retry,
                    attempts=attempt,
                    first_seen=first_seen,
                    error=error,
                    rng=self._rng,
                )
            )
        return retries, gave_up

    def _give_up(
        self,
        result: PipelineResult,
        error: RetryLater,
        *,
        attempt: int,
        first_seen: datetime,
        now: datetime,
        age_ms: int,
    ) -> FailedMessage:
        cause = (error.summary.splitlines() or [""])[0][:200]
        plural = "s" if attempt != 1 else ""
        final = RetryLater(
            f"gave up after {attempt} attempt{plural} over {describe_age(age_ms)}: {cause}",
            message_ref=error.message_ref,
            findings=error.findings,
        )
        headers = retry_headers(
            result.delivery, attempts=attempt, first_seen=first_seen, error=error
        )
        return failed_message(
            replace(result.delivery, headers=headers),
            final,
            route=self._route.name,
            contract=result.contract,
            attempts=attempt,
            first_failed_at=first_seen,
            last_failed_at=now,
        )

    def _send_retries(self, publisher: BrokerPublisher, envelopes: Sequence[Envelope]) -> None:
        """Publish the copies with confirms; any not taken keeps the batch unacknowledged."""
        if not envelopes:
            return
        results = publisher.publish_batch(envelopes)
        refused = [
            (envelope, result)
            for envelope, result in zip(envelopes, results, strict=True)
            if result is not PublishResult.CONFIRMED
        ]
        if not refused:
            return
        envelope, result = refused[0]
        missing = (
            f"; delay queue {envelope.routing_key!r} does not exist (restart the service to "
            "declare its topology)"
            if result is PublishResult.UNROUTABLE
            else ""
        )
        raise TransientError(
            f"route {self._route.name}: {len(refused)} of {len(envelopes)} retry copies were "
            f"not taken by the broker (first: {result.value}){missing}; the batch goes back "
            "to the queue"
        )

    def _conflicts(
        self, results: Sequence[PipelineResult], outcomes: Sequence[SettleOutcome]
    ) -> list[FailedMessage]:
        with_records = [result for result in results if result.record is not None]
        conflicts: list[FailedMessage] = []
        for result, outcome in zip(with_records, outcomes, strict=True):
            if outcome not in (SettleOutcome.CONFLICT, SettleOutcome.REPEATED_OUTPUT):
                continue
            assert result.record is not None
            record = result.record
            if outcome is SettleOutcome.CONFLICT:
                reason = (
                    f"idempotency key {record.idempotency_key} was settled before with other "
                    f"content; this message (sha256 {record.content_sha256}) is parked for review"
                )
            else:
                orders = ", ".join(
                    dict.fromkeys(n for o in record.outputs for n in _orders(o.headers))
                )
                reason = (
                    f"an output of this message (order {orders or 'unknown'}) was made before: "
                    "it repeats an IDoc that took effect already (sent again alone or in "
                    "another packet) or holds one IDoc twice; parked for review so that it "
                    f"takes effect once (idempotency key {record.idempotency_key})"
                )
            error = IdempotencyConflict(reason, message_ref=f"route {record.route}")
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
                    replay_of=record.replay_of,
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

    def _count(
        self,
        results: Sequence[PipelineResult],
        outcomes: Sequence[SettleOutcome],
        *,
        retried: int,
    ) -> None:
        route = self._route.name
        ok = sum(1 for outcome in outcomes if outcome is SettleOutcome.ACCEPTED)
        duplicate = sum(1 for outcome in outcomes if outcome is SettleOutcome.DUPLICATE)
        duplicate += sum(1 for result in results if result.duplicate_of is not None)
        # Failures, conflicts, and retries that gave up.
        parked = len(results) - ok - duplicate - retried
        counts = (
            (Outcome.OK, ok),
            (Outcome.DUPLICATE, duplicate),
            (Outcome.RETRIED, retried),
            (Outcome.PARKED, parked),
        )
        for outcome, count in counts:
            if count:
                self._metrics.processed(route, outcome, count)
        if retried:
            self._metrics.retried(route, retried)
        for result in results:
            if result.failure is not None and result.failure.error_class in _VALIDATION_ERRORS:
                self._metrics.validation_failed(result.contract or "unknown")


def _orders(headers: Mapping[str, str]) -> list[str]:
    return [n for n in headers.get("x-mesbridge-orders", "").split(",") if n]


def _close_quietly(*parts: BrokerConsumer | BrokerPublisher | None) -> None:
    for part in parts:
        if part is None:
            continue
        try:
            part.close()
        except Exception:
            log.debug("closing %r failed", part, exc_info=True)
