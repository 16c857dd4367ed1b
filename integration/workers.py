"""Run the pipeline step of a micro-batch in worker processes, so the service uses every core.

Guarding, validating and transforming a process order is CPU-bound Python
(about a millisecond for a 9 KB order), while settling, acknowledging and
relaying are I/O. The consumer loop keeps the I/O; the pure step
``Pipeline.process`` runs here, in a pool of processes started before any
thread of the service (``forkserver``, so no thread state is copied). Each
worker builds its own contract registry and translator from the same settings.

Results come back in delivery order; a worker's exception (including a
``TransientError``) is raised in the consumer loop as if it happened there. A
worker process that dies breaks the whole pool (``BrokenProcessPool``): the pool
is replaced by a new one and the error is raised, so the consumer loop returns
its batch to the queue and tries again after backing off.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from contracts.errors import RetryLater
from integration.bootstrap import Components
from integration.broker import Delivery
from integration.pipeline import Pipeline, PipelineResult, RouteSpec
from integration.settings import Settings
from integration.store import FailedMessage, InboundRecord

__all__ = ["InlinePipelines", "PipelinePool", "worker_count"]

log = logging.getLogger("mesbridge.workers")

# Set in each worker process by _initialise; the pool's tasks look their route up here.
_pipelines: dict[str, Pipeline] = {}

_Outcome = tuple[InboundRecord | None, FailedMessage | None, str | None, RetryLater | None]


def worker_count(setting: int) -> int:
    """-1: one worker per CPU, none on a single CPU; 0: run in the consumer thread."""
    if setting >= 0:
        return setting
    cpus = os.cpu_count() or 1
    return cpus if cpus > 1 else 0


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
    # drains the batch in hand and then closes the pool, so workers must not die first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _pipelines.update(_build(settings, routes, exchange))


def _process(route: str, deliveries: Sequence[Delivery]) -> list[_Outcome]:
    # Only what the main process lacks travels back: not the delivery it already holds.
    pipeline = _pipelines[route]
    return [
        (result.record, result.failure, result.contract, result.retry)
        for result in map(pipeline.process, deliveries)
    ]


class InlinePipelines:
    """The pipeline step in the calling thread (one CPU, tests, the embedded demo)."""

    def __init__(self, settings: Settings, routes: Sequence[RouteSpec], exchange: str) -> None:
        self._pipelines = _build(settings, routes, exchange)

    def process(self, route: str, deliveries: Sequence[Delivery]) -> list[PipelineResult]:
        return [self._pipelines[route].process(delivery) for delivery in deliveries]

    def close(self) -> None:
        """Nothing to release."""


class PipelinePool:
    """The pipeline step in ``workers`` processes; a batch is split into one chunk per worker."""

    def __init__(
        self, settings: Settings, routes: Sequence[RouteSpec], exchange: str, *, workers: int
    ) -> None:
        self._workers = workers
        self._initargs = (settings, tuple(routes), exchange)
        self._lock = threading.Lock()
        self._executor = self._new_executor()
        # Start every worker now, so start-up problems surface before consuming.
        for future in [self._executor.submit(_process, routes[0].name, []) for _ in range(workers)]:
            future.result()

    def process(self, route: str, deliveries: Sequence[Delivery]) -> list[PipelineResult]:
        size = max(1, -(-len(deliveries) // self._workers))
        chunks = [deliveries[i : i + size] for i in range(0, len(deliveries), size)]
        executor = self._executor
        try:
            futures = [executor.submit(_process, route, chunk) for chunk in chunks]
            done = [future.result() for future in futures]
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the pool is unusable. Replace it, and let
            # the consumer loop log this and return its batch to the queue.
            self._replace(executor)
            raise
        results: list[PipelineResult] = []
        for chunk, chunk_outcomes in zip(chunks, done, strict=True):
            outcomes = zip(chunk, chunk_outcomes, strict=True)
            for delivery, (record, failure, contract, retry) in outcomes:
                results.append(
                    PipelineResult(
                        delivery=delivery,
                        route=route,
                        record=record,
                        failure=failure,
                        contract=contract,
                        retry=retry,
                    )
                )
        return results

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self._workers,
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=_initialise,
            initargs=self._initargs,
        )

    def _replace(self, broken: ProcessPoolExecutor) -> None:
        with self._lock:  # several consumer loops see the same broken pool: replace it once
            if self._executor is broken:
                log.error("a pipeline worker process died; starting %d new ones", self._workers)
                self._executor = self._new_executor()
        broken.shutdown(wait=False, cancel_futures=True)
