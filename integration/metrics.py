"""Prometheus metrics of the service: every series, its labels and its closed label sets.

All names start with ``mesbridge_`` (the reference for operators is
``docs/operations.md``). Label values come only from closed sets: the routes and
contracts the service was configured with, and the enums below. They never come
from error text or message content, so the number of series is fixed at start-up
and a burst of odd messages cannot flood Prometheus.

:class:`Metrics` registers into the ``CollectorRegistry`` it is given, never into
prometheus_client's global default, so tests and several instances in one process
do not clash. Every label combination is created at start-up, so each series is
exported at 0 from the first scrape (``rate()`` and ``increase()`` alerts work
before the first event). Connection series exist only for the components the
installation has (``components``), so an unused Tulip never shows as "down".

Failure modes: a label value outside its closed set, a negative count, or a
negative or non-finite duration is a programming error and raises ``ValueError``
naming the value and what is allowed; nothing is recorded then. Registering two
``Metrics`` on one registry raises prometheus_client's ``ValueError`` (duplicated
time series).
"""

from __future__ import annotations

import math
import platform
from collections.abc import Iterable
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info

from integration.store.records import Destination

__all__ = [
    "BATCH_SETTLE_BUCKETS",
    "BATCH_SIZE_BUCKETS",
    "END_TO_END_BUCKETS",
    "PROCESSING_BUCKETS",
    "UNKNOWN_CONTRACT",
    "Component",
    "Destination",
    "IngestResult",
    "Metrics",
    "Outcome",
    "PublishResult",
]

UNKNOWN_CONTRACT = "unknown"

# One message's work is ~100 µs (parse 60 µs + lxml validation 25 µs, DESIGN §3);
# the low buckets resolve that, the high ones catch a slow transform or lock wait.
PROCESSING_BUCKETS = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
    0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
)  # fmt: skip
# Receive to output confirmed includes micro-batching (a few ms) and publisher
# confirms; tens of seconds means a downstream system is backing off.
END_TO_END_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
    0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip
BATCH_SIZE_BUCKETS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0)
# One DB transaction plus one multi-ack per batch: ~1 ms when healthy.
BATCH_SETTLE_BUCKETS = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class Outcome(StrEnum):
    """How the pipeline settled one input message."""

    OK = "ok"
    DUPLICATE = "duplicate"
    RETRIED = "retried"
    PARKED = "parked"


class PublishResult(StrEnum):
    """What became of one output publish attempt."""

    CONFIRMED = "confirmed"
    UNROUTABLE = "unroutable"
    NACKED = "nacked"
    FAILED = "failed"


class IngestResult(StrEnum):
    """How the HTTP ingest answered one posted event (docs/tulip-events.md)."""

    ACCEPTED = "accepted"  # 202: durably on the inbound exchange
    UNAUTHORIZED = "unauthorized"  # 401
    TOO_LARGE = "too_large"  # 413
    UNSUPPORTED = "unsupported"  # 415: not application/json
    MALFORMED = "malformed"  # 400: not well-formed, hostile
    INVALID = "invalid"  # 422: unknown contract, contract violation, mapping gap
    UNAVAILABLE = "unavailable"  # 503: broker unreachable, nacked, unroutable, timed out


class Component(StrEnum):
    """An outside dependency whose connection state is exported."""

    BROKER = "broker"
    DATABASE = "database"
    TULIP = "tulip"


class Metrics:
    """The service's metrics, registered into ``registry`` with every series at 0."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        routes: Iterable[str],
        contracts: Iterable[str],
        version: str,
        components: Iterable[str] = tuple(Component),
    ) -> None:
        """``components``: the dependencies this installation has (a site without Tulip
        leaves ``tulip`` out, so no connection series says "down" for nothing)."""
        self._components = frozenset(
            _member(Component, component, "component")
            for component in _checked_names(components, "component")
        )
        self._routes = frozenset(_checked_names(routes, "route"))
        self._contracts = {
            key: _split_contract(key) for key in _checked_names(contracts, "contract")
        }
        self._contracts[UNKNOWN_CONTRACT] = (UNKNOWN_CONTRACT, UNKNOWN_CONTRACT)

        self._received = Counter(
            "mesbridge_messages_received",
            "Input messages taken from the broker, by route.",
            ["route"],
            registry=registry,
        )
        self._processed = Counter(
            "mesbridge_messages_processed",
            "Input messages settled, by route and outcome (ok, duplicate, retried, parked).",
            ["route", "outcome"],
            registry=registry,
        )
        self._validation_failures = Counter(
            "mesbridge_validation_failures",
            "Messages that failed contract validation, by contract (family/type) and version.",
            ["contract", "version"],
            registry=registry,
        )
        self._processing = Histogram(
            "mesbridge_processing_seconds",
            "Work on one message inside a batch (guard to validated outputs), in seconds.",
            ["route"],
            buckets=PROCESSING_BUCKETS,
            registry=registry,
        )
        self._end_to_end = Histogram(
            "mesbridge_end_to_end_seconds",
            "From receiving an input to its outputs being confirmed, in seconds.",
            ["route"],
            buckets=END_TO_END_BUCKETS,
            registry=registry,
        )
        self._outbox_backlog = Gauge(
            "mesbridge_outbox_backlog",
            "Outputs written to the outbox and not yet confirmed as published.",
            registry=registry,
        )
        self._parked = Gauge(
            "mesbridge_parked_messages",
            "Messages in the failed-message store awaiting an analyst (replay or discard).",
            registry=registry,
        )
        self._retries = Counter(
            "mesbridge_retries",
            "Messages sent to a delay queue for another attempt, by route.",
            ["route"],
            registry=registry,
        )
        self._consumer_errors = Counter(
            "mesbridge_consumer_errors",
            "Unexpected errors (bugs) that made a route's consumer return its batch and restart.",
            ["route"],
            registry=registry,
        )
        self._worker_deaths = Counter(
            "mesbridge_pipeline_worker_deaths",
            "Pipeline worker processes that died on a batch of the route (the batch was then "
            "processed one message at a time; a message that kills a worker twice is parked).",
            ["route"],
            registry=registry,
        )
        self._published = Counter(
            "mesbridge_outputs_published",
            "Output publish attempts, by destination (amqp, tulip) and result.",
            ["destination", "result"],
            registry=registry,
        )
        self._connection_up = Gauge(
            "mesbridge_connection_up",
            "1 while the connection to the component is up, 0 while it is down.",
            ["component"],
            registry=registry,
        )
        self._batch_size = Histogram(
            "mesbridge_batch_size",
            "Messages settled per micro-batch (one DB transaction, one multi-ack).",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self._batch_settle = Histogram(
            "mesbridge_batch_settle_seconds",
            "Time to settle one micro-batch (DB commit, acks), in seconds.",
            buckets=BATCH_SETTLE_BUCKETS,
            registry=registry,
        )
        self._ingested = Counter(
            "mesbridge_ingest_requests",
            "Events posted to the HTTP ingest, by result (accepted, invalid, unavailable, ...).",
            ["result"],
            registry=registry,
        )
        build = Info("mesbridge_build", "Version of mesbridge and of Python.", registry=registry)
        build.info({"version": version, "python": platform.python_version()})

        self._preinitialise()

    @property
    def routes(self) -> frozenset[str]:
        return self._routes

    @property
    def contracts(self) -> frozenset[str]:
        """The accepted contract keys, ``unknown`` included."""
        return frozenset(self._contracts)

    def received(self, route: str, count: int = 1) -> None:
        self._received.labels(route=self._route(route)).inc(_count(count))

    def processed(self, route: str, outcome: Outcome, count: int = 1) -> None:
        labels = {"route": self._route(route), "outcome": _member(Outcome, outcome, "outcome")}
        self._processed.labels(**labels).inc(_count(count))

    def validation_failed(self, contract: str) -> None:
        """Count one validation failure; ``contract`` is ``family/type/version`` or ``unknown``."""
        try:
            name, version = self._contracts[contract]
        except KeyError:
            raise ValueError(_unknown("contract", contract, self._contracts)) from None
        self._validation_failures.labels(contract=name, version=version).inc()

    def observe_processing(self, route: str, seconds: float) -> None:
        self._processing.labels(route=self._route(route)).observe(_seconds(seconds))

    def observe_end_to_end(self, route: str, seconds: float) -> None:
        self._end_to_end.labels(route=self._route(route)).observe(_seconds(seconds))

    def set_outbox_backlog(self, count: int) -> None:
        self._outbox_backlog.set(_count(count))

    def set_parked(self, count: int) -> None:
        self._parked.set(_count(count))

    def retried(self, route: str, count: int = 1) -> None:
        self._retries.labels(route=self._route(route)).inc(_count(count))

    def consumer_error(self, route: str) -> None:
        """An unexpected error made a consumer loop of ``route`` drop its batch and restart."""
        self._consumer_errors.labels(route=self._route(route)).inc()

    def worker_died(self, route: str) -> None:
        """A pipeline worker process died while processing a batch of ``route``."""
        self._worker_deaths.labels(route=self._route(route)).inc()

    def published(self, destination: str, result: str, count: int = 1) -> None:
        labels = {
            "destination": _member(Destination, destination, "destination"),
            "result": _member(PublishResult, result, "result"),
        }
        self._published.labels(**labels).inc(_count(count))

    def set_connection(self, component: str, up: bool) -> None:
        if component not in self._components:
            raise ValueError(_unknown("component", component, self._components))
        self._connection_up.labels(component=component).set(1 if up else 0)

    def ingested(self, result: IngestResult) -> None:
        self._ingested.labels(result=_member(IngestResult, result, "ingest result")).inc()

    def batch_settled(self, size: int, seconds: float) -> None:
        size, seconds = _count(size), _seconds(seconds)
        self._batch_size.observe(size)
        self._batch_settle.observe(seconds)

    def _route(self, route: str) -> str:
        if route not in self._routes:
            raise ValueError(_unknown("route", route, self._routes))
        return route

    def _preinitialise(self) -> None:
        for route in self._routes:
            self._received.labels(route=route)
            self._retries.labels(route=route)
            self._consumer_errors.labels(route=route)
            self._worker_deaths.labels(route=route)
            self._processing.labels(route=route)
            self._end_to_end.labels(route=route)
            for outcome in Outcome:
                self._processed.labels(route=route, outcome=outcome.value)
        for name, version in self._contracts.values():
            self._validation_failures.labels(contract=name, version=version)
        for destination in Destination:
            for result in PublishResult:
                self._published.labels(destination=destination.value, result=result.value)
        for ingest in IngestResult:
            self._ingested.labels(result=ingest.value)
        for component in self._components:
            # Down until the service reports the connection up: the truthful start value.
            self._connection_up.labels(component=component).set(0)


def _checked_names(names: Iterable[str], what: str) -> list[str]:
    if isinstance(names, str):
        # A lone string would be iterated character by character.
        raise ValueError(f"metrics: {what}s must be a collection of names, found {names!r}")
    checked = []
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"metrics: a {what} name must be a non-empty string, found {name!r}")
        checked.append(name)
    return checked


def _split_contract(key: str) -> tuple[str, str]:
    parts = key.split("/")
    if len(parts) != 3 or not all(parts):
        raise ValueError(
            f"metrics: contract key {key!r} is not 'family/type/version' "
            "(e.g. 'sap-idoc/LOIPRO01/1')"
        )
    family, message_type, version = parts
    return f"{family}/{message_type}", version


def _member(enum: type[StrEnum], value: str, what: str) -> str:
    try:
        return enum(value).value
    except ValueError:
        allowed = [member.value for member in enum]
        raise ValueError(_unknown(what, value, allowed)) from None


def _unknown(what: str, value: object, allowed: Iterable[str]) -> str:
    return f"metrics: {what} {value!r} is not one of the closed set {sorted(allowed)}"


def _count(count: int) -> int:
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise ValueError(f"metrics: a count must be a whole number >= 0, found {count!r}")
    return count


def _seconds(seconds: float) -> float:
    if not math.isfinite(seconds) or seconds < 0:
        raise ValueError(
            f"metrics: a duration must be finite and >= 0 seconds, found {seconds!r} "
            "(measure with time.monotonic())"
        )
    return seconds
