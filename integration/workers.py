"""Run the pipeline step of a micro-batch in worker processes, so the service uses every core.

Guarding, validating and transforming a process order is CPU-bound Python
(about a millisecond for a 9 KB order), while settling, acknowledging and
relaying are I/O. The consumer loop keeps the I/O; the pure step
``Pipeline.process`` runs here, in a pool of processes started before any
thread of the service (``forkserver``, so no thread state is copied). Each
worker builds its own contract registry and translator from the same settings.

``submit`` hands a batch to the workers and returns at once, so a consumer loop
can settle earlier batches while the workers process this one; the results
come back in delivery order when asked for. A worker's exception (including a
``TransientError``) is raised in the consumer loop as if it happened there.

A worker process that dies (a crash in native code, the out-of-memory killer, a
``kill``) breaks the whole pool (``BrokenProcessPool``). The pool is replaced, and
the batch is processed again one message at a time in a separate, single-worker
pool, so that a message that kills the process working on it is found instead of
returning the whole batch to the queue forever. A message that kills a fresh
worker twice gets a ``ProcessingFailure`` result (parked; the others take effect);
a death that does not repeat (the worker was killed from outside) costs only
the time to process the batch again.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import UTC, datetime

from contracts.errors import ProcessingFailure, RetryLater
from integration.bootstrap import LOG_FORMAT, Components
from integration.broker import Delivery
from integration.cpus import usable_cpus
from integration.faults import arm_message_crash_from, crash_on_message
from integration.pipeline import (
    PendingResults,
    Pipeline,
    PipelineResult,
    RouteSpec,
    describe_delivery,
    parked_result,
)
from integration.settings import Settings
from integration.store import FailedMessage, InboundRecord

__all__ = ["InlinePipelines", "PipelinePool", "worker_count"]

log = logging.getLogger("mesbridge.workers")

# Set in each worker process by _initialise; the pool's tasks look their route up here.
_pipelines: dict[str, Pipeline] = {}

_Outcome = tuple[
    InboundRecord | None, FailedMessage | None, str | None, RetryLater | None, float | None
]

# A worker whose main process is gone exits with this status: not 0, nobody asked it to.
_ORPHANED_EXIT_STATUS = 75

# A message that kills a fresh worker process this many times in a row is parked.
_DEATHS_TO_PARK = 2


def worker_count(setting: int, *, cpus: Callable[[], int] = usable_cpus) -> int:
    """-1: one worker per CPU this process may use (at least one); 0: the consumer thread.

    One worker even on a single CPU: a message that crashes the process working on it
    (native code, the out-of-memory killer) then costs a worker, is found and parked,
    where in the consumer thread it would end the service on every redelivery.
    """
    if setting >= 0:
        return setting
    return max(1, cpus())


def _build(settings: Settings, routes: Sequence[RouteSpec], exchange: str) -> dict[str, Pipeline]:
    components = Components(settings)
    components.registry.check()
    translator = components.translator(with_order_contexts=True)
    return {
        route.name: Pipeline(
            route, translator, limits=components.limits, outbound_exchange=exchange
        )
        for route in routes
    }


def _initialise(settings: Settings, routes: Sequence[RouteSpec], exchange: str) -> None:
    # Ctrl-C and a supervisor's SIGTERM reach the whole process group: the main process
    # settles the batches in hand and then closes the pool, so workers must not die first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _exit_with_main_process()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    arm_message_crash_from(os.environ)  # a test facility: integration/faults.py
    _pipelines.update(_build(settings, routes, exchange))


def _exit_with_main_process() -> None:
    """End this worker when the main process is gone, however it went.

    A pool's workers wait on a queue whose write end they hold themselves, so they never
    see the main process die: after a ``kill -9`` or a crash of the main process they
    would wait forever, each holding its memory. The parent's sentinel is a pipe whose
    other end only the main process holds; it reads end-of-file when that process is gone.
    """
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(_ORPHANED_EXIT_STATUS)

    threading.Thread(target=watch, name="exit-with-main-process", daemon=True).start()


def _process(route: str, deliveries: Sequence[Delivery]) -> list[_Outcome]:
    # Only what the main process lacks travels back: not the delivery it already holds.
    for delivery in deliveries:
        crash_on_message(delivery.body)
    return [
        (result.record, result.failure, result.contract, result.retry, result.processing_s)
        for result in _pipelines[route].process_many(deliveries)
    ]


def _result(route: str, delivery: Delivery, outcome: _Outcome) -> PipelineResult:
    record, failure, contract, retry, processing_s = outcome
    return PipelineResult(
        delivery=delivery,
        route=route,
        record=record,
        failure=failure,
        contract=contract,
        retry=retry,
        processing_s=processing_s,
    )


class InlinePipelines:
    """The pipeline step in the calling thread (one CPU, tests, the embedded demo)."""

    def __init__(self, settings: Settings, routes: Sequence[RouteSpec], exchange: str) -> None:
        self._pipelines = _build(settings, routes, exchange)

    def submit(self, route: str, deliveries: Sequence[Delivery]) -> PendingResults:
        """Deferred: the batch is processed in this thread when its results are asked for."""
        return lambda: self._pipelines[route].process_many(deliveries)

    def close(self) -> None:
        """Nothing to release."""


class PipelinePool:
    """The pipeline step in ``workers`` processes; a batch is split into one chunk per worker."""

    def __init__(
        self,
        settings: Settings,
        routes: Sequence[RouteSpec],
        exchange: str,
        *,
        workers: int,
        on_worker_death: Callable[[str], None] = lambda _route: None,
    ) -> None:
        self._workers = workers
        self._on_worker_death = on_worker_death
        self._initargs = (settings, tuple(routes), exchange)
        self._lock = threading.Lock()
        self._executor = self._new_executor()
        # Start every worker now, so start-up problems surface before consuming.
        for future in [self._executor.submit(_process, routes[0].name, []) for _ in range(workers)]:
            future.result()

    def submit(self, route: str, deliveries: Sequence[Delivery]) -> PendingResults:
        """Hand the batch to the workers now; the returned callable waits for its results."""
        size = max(1, -(-len(deliveries) // self._workers))
        chunks = [deliveries[i : i + size] for i in range(0, len(deliveries), size)]
        executor = self._executor
        futures: list[Future[list[_Outcome]]] | None
        try:
            futures = [executor.submit(_process, route, chunk) for chunk in chunks]
        except BrokenProcessPool:
            futures = None  # a worker died on an earlier batch: found out below

        def results() -> list[PipelineResult]:
            done: list[list[_Outcome]] | None = None
            if futures is not None:
                with contextlib.suppress(BrokenProcessPool):
                    done = [future.result() for future in futures]
            if done is None:
                # A worker died: the pool is unusable. Replace it (and count the death,
                # once however many batches it broke), then find out whether one of these
                # messages is what kills it.
                if self._replace(executor):
                    self._on_worker_death(route)
                return self._isolate(route, deliveries)
            return [
                _result(route, delivery, outcome)
                for chunk, chunk_outcomes in zip(chunks, done, strict=True)
                for delivery, outcome in zip(chunk, chunk_outcomes, strict=True)
            ]

        return results

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _isolate(self, route: str, deliveries: Sequence[Delivery]) -> list[PipelineResult]:
        """Each delivery alone, in a single-worker pool of this call's own: another consumer
        loop's crash in the shared pool can then never be blamed on one of these."""
        log.error(
            "a pipeline worker process died on a batch of %d; processing it again one "
            "message at a time to find a message that kills it",
            len(deliveries),
        )
        alone = self._new_executor(workers=1)
        results: list[PipelineResult] = []
        try:
            for delivery in deliveries:
                result: PipelineResult | None = None
                for _attempt in range(_DEATHS_TO_PARK):
                    try:
                        [outcome] = alone.submit(_process, route, [delivery]).result()
                    except BrokenProcessPool:
                        self._on_worker_death(route)
                        alone.shutdown(wait=False, cancel_futures=True)
                        alone = self._new_executor(workers=1)
                        continue
                    result = _result(route, delivery, outcome)
                    break
                results.append(self._killer(route, delivery) if result is None else result)
        finally:
            alone.shutdown(wait=True, cancel_futures=True)
        return results

    @staticmethod
    def _killer(route: str, delivery: Delivery) -> PipelineResult:
        message_ref = describe_delivery(delivery)
        log.error(
            "%s: the pipeline worker process died on this message %d times, each time in a "
            "fresh process; parking it",
            message_ref,
            _DEATHS_TO_PARK,
        )
        error = ProcessingFailure(
            f"the pipeline worker process died while processing this message, "
            f"{_DEATHS_TO_PARK} times in a fresh process (a crash in native code, or the "
            "out-of-memory killer); parked so that the messages behind it flow. The service "
            "log has what the worker wrote before it died. Replay the message once the cause "
            "is fixed",
            message_ref=message_ref,
        )
        return parked_result(delivery, error, route=route, contract=None, now=datetime.now(UTC))

    def _new_executor(self, workers: int | None = None) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=workers or self._workers,
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=_initialise,
            initargs=self._initargs,
        )

    def _replace(self, broken: ProcessPoolExecutor) -> bool:
        """Replace ``broken`` unless that is done already; True if this call replaced it.

        Every batch in it fails (several in flight, from one or more consumer loops):
        the pool is replaced, and the death counted, once.
        """
        with self._lock:
            replaced = self._executor is broken
            if replaced:
                log.error("a pipeline worker process died; starting %d new ones", self._workers)
                self._executor = self._new_executor()
                _kill_survivors(broken)
        broken.shutdown(wait=False, cancel_futures=True)
        return replaced


def _kill_survivors(broken: ProcessPoolExecutor) -> None:
    """SIGKILL the workers of a broken pool that are still alive.

    The pool's manager thread ends them with SIGTERM, which pipeline workers ignore (a
    supervisor's SIGTERM to the whole group must not end them before the main process
    has drained), and then waits for them. A survivor that was sending a large result
    back when its sibling died blocks on the pipe nobody reads any more: the manager
    thread waits forever, and so does the interpreter's exit, which joins it. Their work
    is lost with the pool either way; the batch is processed again (``_isolate``).
    ``_processes`` is the executor's own map of its workers (Python 3.14 adds
    ``kill_workers()`` for this).
    """
    processes = getattr(broken, "_processes", None) or {}
    for process in list(processes.values()):
        if process.is_alive():
            process.kill()
