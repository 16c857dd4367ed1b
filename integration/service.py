"""``mesbridge run``: the composition root that wires settings to concrete adapters and threads.

Start-up checks everything before consuming anything: lxml version, contracts
compile, mapping profile, database schema (migrated to head), broker topology,
Tulip table schema when the Tulip target is configured. A route whose sink is
not configured is off and says so; the service still runs.

Threads: one consumer loop per route, one outbox relay per destination, and
the HTTP server (``/healthz``, ``/readyz``, ``/metrics``). ``stop()`` (SIGTERM,
SIGINT) stops consuming, lets each loop finish its batch, flushes the outbox
within ``shutdown_timeout_s``, and returns.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from importlib import metadata

from prometheus_client import CollectorRegistry
from starlette.routing import BaseRoute

from adapters.brokers import connect_broker
from adapters.tulip import TulipSettings, TulipTablesClient
from contracts.errors import ConfigurationError, TransientError
from integration.audit import AuditTrail, audit_service_start
from integration.bootstrap import Components
from integration.broker import Broker, QueueSpec, Topology
from integration.consumer import BatchSettings, ConsumerLoop
from integration.http import HttpServer, ReadinessCheck, create_app
from integration.http.ingest import TULIP_EVENTS_PATH, BrokerEventPublisher, tulip_ingest_route
from integration.intake import IntakeLimits
from integration.metrics import Metrics
from integration.pipeline import Destination, RouteSpec
from integration.relay import AmqpSink, OutboxRelay, Sink, TulipSink
from integration.retry import RetryPolicy, delay_queues
from integration.routes import Target
from integration.settings import Settings
from integration.store import OutboxRow, Store
from integration.workers import InlinePipelines, PipelinePool, worker_count

__all__ = [
    "PERFORMANCE_ROUTE",
    "PROCESS_ORDER_ROUTE",
    "Service",
    "build_topology",
    "performance_route",
    "process_order_route",
]

log = logging.getLogger("mesbridge.service")

PROCESS_ORDER_ROUTE = "process-order"
PERFORMANCE_ROUTE = "performance"
# Durable queues holding each target system's outputs until it takes them.
OUTBOUND_QUEUES = (("to-pasx", "pasx.#"), ("to-sap", "sap.#"))


def process_order_route(*, tulip: bool, prefix: str = "mesbridge") -> RouteSpec:
    targets = {Target.PASX: Destination.AMQP}
    if tulip:
        targets[Target.TULIP] = Destination.TULIP
    return RouteSpec(
        name=PROCESS_ORDER_ROUTE,
        queue=f"{prefix}.{PROCESS_ORDER_ROUTE}",
        bindings=("sap.LOIPRO",),
        targets=targets,
    )


def performance_route(*, prefix: str = "mesbridge") -> RouteSpec:
    """MES → ERP (F3, F4): what PAS-X and Tulip report, as goods movements for SAP."""
    return RouteSpec(
        name=PERFORMANCE_ROUTE,
        queue=f"{prefix}.{PERFORMANCE_ROUTE}",
        bindings=("pasx.*", "tulip.*"),
        targets={Target.SAP: Destination.AMQP},
    )


def build_topology(
    routes: tuple[RouteSpec, ...],
    *,
    prefix: str = "mesbridge",
    retry: Mapping[str, RetryPolicy] | None = None,
) -> Topology:
    """DESIGN §5: ``<prefix>.in``/``.out`` topic exchanges, ``.dlx``, ``.parked``, queues.

    ``retry``: per route name, its policy; each such route gets its delay queues
    (``<route queue>.retry.<delay>``, integration/retry.py).
    """
    base = Topology(
        inbound_exchange=f"{prefix}.in",
        outbound_exchange=f"{prefix}.out",
        dead_letter_exchange=f"{prefix}.dlx",
        parked_queue=f"{prefix}.parked",
    )
    queues = [
        QueueSpec(
            name=route.queue,
            exchange=base.inbound_exchange,
            bindings=route.bindings,
            dead_letter_exchange=base.dead_letter_exchange,
            dead_letter_routing_key=f"dead.{route.name}",
        )
        for route in routes
    ]
    for route in routes:
        if retry is not None and route.name in retry:
            queues += delay_queues(route.queue, retry[route.name])
    queues += [
        QueueSpec(name=f"{prefix}.{name}", exchange=base.outbound_exchange, bindings=(pattern,))
        for name, pattern in OUTBOUND_QUEUES
    ]
    return dataclasses.replace(base, queues=tuple(queues))


@dataclass
class _Running:
    threads: list[threading.Thread] = field(default_factory=list)
    loops: list[ConsumerLoop] = field(default_factory=list)
    relays: list[OutboxRelay] = field(default_factory=list)


class Service:
    """mesbridge as a service. ``start()`` returns once everything runs; ``stop()`` drains it."""

    def __init__(
        self,
        settings: Settings,
        *,
        broker: Broker | None = None,
        metrics_registry: CollectorRegistry | None = None,
        tulip_client_factory: Callable[[TulipSettings], TulipTablesClient] | None = None,
    ) -> None:
        self.settings = settings
        self.components = Components(settings)
        self._broker = broker
        self.metrics_registry = metrics_registry or CollectorRegistry()
        self._tulip_client_factory = tulip_client_factory or TulipTablesClient
        self._running = _Running()
        self._processor: InlinePipelines | PipelinePool | None = None
        self._stopped = threading.Event()
        self.store: Store | None = None
        self.audit: AuditTrail | None = None
        self.http: HttpServer | None = None
        self._ingest_publisher: BrokerEventPublisher | None = None
        self.routes: tuple[RouteSpec, ...] = ()
        self.topology = Topology()

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            raise RuntimeError("the service is not started")
        return self._broker

    # -- start ---------------------------------------------------------------------

    def start(self) -> None:
        settings = self.settings
        registry = self.components.registry
        registry.check()
        profile = self.components.profile
        prefix = settings.topology_prefix
        self.routes = (
            process_order_route(tulip=settings.tulip_enabled, prefix=prefix),
            performance_route(prefix=prefix),
        )
        settings.check_routes(route.name for route in self.routes)
        retry = {route.name: settings.retry_policy(route.name) for route in self.routes}
        if not settings.tulip_enabled:
            log.warning(
                "Tulip target is off: set MESBRIDGE_TULIP_URL, _API_KEY_ID, _API_KEY_SECRET "
                "and _TABLE_ID to send work orders to Tulip"
            )
        metrics = Metrics(
            self.metrics_registry,
            routes=[route.name for route in self.routes],
            contracts=[str(contract.key) for contract in registry],
            version=_version(),
            components=["broker", "database", *(["tulip"] if settings.tulip_enabled else [])],
        )
        self.metrics = metrics
        workers = worker_count(settings.pipeline_workers)
        exchange = f"{prefix}.out"
        self._processor = (
            PipelinePool(
                settings,
                self.routes,
                exchange,
                workers=workers,
                on_worker_death=metrics.worker_died,
            )
            if workers
            else InlinePipelines(settings, self.routes, exchange)
        )
        log.info("pipeline step: %s", f"{workers} worker processes" if workers else "in-thread")
        self.store = Store.connect(
            settings.database_url,
            migrate=True,
            claim_lease=timedelta(seconds=settings.outbox_lease_s),
        )
        self.audit = audit_service_start(self.store.engine, settings, registry)
        metrics.set_connection("database", True)
        if self._broker is None:
            self._broker = connect_broker(settings.broker_url)
        self.topology = build_topology(self.routes, prefix=prefix, retry=retry)
        self._broker.declare(self.topology)
        metrics.set_connection("broker", True)
        sinks: list[Sink] = [AmqpSink(self._broker, metrics)]
        if settings.tulip_enabled:
            sinks.append(self._tulip_sink(metrics, profile_columns=profile.tulip_columns.ids))
        relays = [OutboxRelay(store=self.store, sink=sink, metrics=metrics) for sink in sinks]
        batch = BatchSettings(
            batch_size=settings.batch_size,
            batch_wait_s=settings.batch_wait_ms / 1000,
            prefetch=settings.prefetch,
        )
        loops = [
            ConsumerLoop(
                route=route,
                processor=self._processor,
                broker=self._broker,
                store=self.store,
                metrics=metrics,
                parked_queue=self.topology.parked_queue,
                settings=batch,
                on_settled=_hand_over(relays, self.store),
                claim=_FAST_PATH_DESTINATIONS,
                retry=retry[route.name],
            )
            for route in self.routes
            for _ in range(settings.consumers)
        ]
        self._start_http()
        for relay in relays:
            self._spawn(f"relay-{relay.destination}", relay.run)
        self._spawn("gauges", self._refresh_gauges)
        for loop in loops:
            self._spawn("consumer", loop.run)
        self._running.loops, self._running.relays = loops, relays
        for route in self.routes:
            targets = ", ".join(f"{t.value} via {d.value}" for t, d in route.targets.items())
            log.info("route %s: %s -> %s", route.name, route.queue, targets)

    def _tulip_sink(self, metrics: Metrics, *, profile_columns: Mapping[str, str]) -> TulipSink:
        settings = self.settings
        client = self._tulip_client_factory(
            TulipSettings(
                base_url=settings.tulip_url,
                api_key_id=settings.tulip_api_key_id,
                api_key_secret=settings.tulip_api_key_secret,
                table_id=settings.tulip_table_id,
            )
        )
        # Reading the schema at start-up proves credentials and table, and lets the client
        # compare timestamps by instant.
        labels = client.column_ids_by_label()
        missing = sorted(set(profile_columns.values()) - set(labels.values()))
        if missing:
            raise ConfigurationError(
                f"Tulip table {settings.tulip_table_id} has no column ids {', '.join(missing)}; "
                f"its columns are {', '.join(f'{k} ({v})' for k, v in sorted(labels.items()))}"
            )
        metrics.set_connection("tulip", True)
        return TulipSink(client, metrics)

    def _start_http(self) -> None:
        store, broker, registry = self.store, self._broker, self.components.registry
        assert store is not None and broker is not None
        checks = [
            ReadinessCheck(name="database", check=store.ping),
            ReadinessCheck(name="broker", check=broker.ping),
            ReadinessCheck(name="contracts", check=registry.check),
            # A route whose consumer loops keep failing (a bug, a poison batch) shows here.
            *(
                ReadinessCheck(name=f"route {route.name}", check=self._route_health(route.name))
                for route in self.routes
            ),
        ]
        app = create_app(
            metrics_registry=self.metrics_registry,
            checks=checks,
            extra_routes=self._ingest_routes(broker),
        )
        self.http = HttpServer(app, host=self.settings.http_host, port=self.settings.http_port)
        self.http.start()

    def _ingest_routes(self, broker: Broker) -> list[BaseRoute]:
        """``POST /ingest/tulip/events`` when a token is set (docs/tulip-events.md)."""
        token = self.settings.tulip_ingest_token
        if not token:
            log.warning(
                "Tulip event ingest is off: set MESBRIDGE_TULIP_INGEST_TOKEN to accept "
                "completion events on POST %s",
                TULIP_EVENTS_PATH,
            )
            return []
        self._ingest_publisher = BrokerEventPublisher(broker)
        route = tulip_ingest_route(
            publisher=self._ingest_publisher,
            token=token,
            registry=self.components.registry,
            exchange=self.topology.inbound_exchange,
            profile=self.components.profile,
            limits=IntakeLimits.from_settings(self.settings),
            metrics=self.metrics,
        )
        log.info("Tulip event ingest on POST %s", TULIP_EVENTS_PATH)
        return [route]

    def _route_health(self, name: str) -> Callable[[], None]:
        def check() -> None:
            for loop in self._running.loops:
                if loop.route.name == name:
                    loop.health()

        return check

    def _refresh_gauges(self, every_s: float = 5.0) -> None:
        """Backlog and parked counts come from the shared database, so every instance agrees."""
        store = self.store
        assert store is not None
        while not self._stopped.wait(every_s):
            try:
                self.metrics.set_outbox_backlog(store.outbox_backlog())
                self.metrics.set_parked(store.parked_count())
                self.metrics.set_connection("database", True)
            except TransientError:
                self.metrics.set_connection("database", False)

    def _spawn(self, name: str, target: Callable[[], None]) -> None:
        thread = threading.Thread(target=target, name=f"mesbridge-{name}", daemon=True)
        thread.start()
        self._running.threads.append(thread)

    # -- stop ----------------------------------------------------------------------

    def stop(self) -> None:
        """Stop consuming, finish in-flight batches, flush the outbox, close everything."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        timeout = float(self.settings.shutdown_timeout_s)
        for loop in self._running.loops:
            loop.stop()
        for thread in self._running.threads:
            if thread.name == "mesbridge-consumer":
                thread.join(timeout)
        for relay in self._running.relays:
            relay.stop()
        for thread in self._running.threads:
            thread.join(timeout)
        if self._processor is not None:
            self._processor.close()
        if self.http is not None:
            self.http.stop()
        if self._ingest_publisher is not None:
            self._ingest_publisher.close()
        if self.store is not None:
            self.store.close()
        if self._broker is not None:
            self._broker.close()

    def wait(self, timeout: float | None = None) -> bool:
        return self._stopped.wait(timeout)


# Outputs the consumer loops hand straight to their relay (relay.py, "hand-over"). Tulip's
# relay is paced at 10 writes/s: its rows wait in the outbox and are claimed from there.
_FAST_PATH_DESTINATIONS = frozenset({"amqp"})


def _hand_over(relays: list[OutboxRelay], store: Store) -> Callable[[Sequence[OutboxRow]], None]:
    """After a batch settled: claimed rows go to their relay, and every relay is woken."""
    by_destination = {relay.destination: relay for relay in relays}

    def hand_over(claimed: Sequence[OutboxRow]) -> None:
        for destination, relay in by_destination.items():
            rows = [row for row in claimed if row.destination == destination]
            if rows and not relay.hand_over(rows):
                # The relay is busy or gone: the backlog path sends them.
                store.release([row.id for row in rows])
            relay.wake()

    return hand_over


def _version() -> str:
    try:
        return metadata.version("mesbridge")
    except metadata.PackageNotFoundError:
        return "unknown"
