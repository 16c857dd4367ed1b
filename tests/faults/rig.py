"""The fault-test rig: ``mesbridge run`` as a real process, real RabbitMQ and PostgreSQL, counters.

``FaultRig`` owns one test's world: a topology prefix, a PostgreSQL database of
its own, and a durable queue ``<prefix>.count`` bound to ``<prefix>.out`` with
``#`` that sees every output the service ever published, resends included.
``ServiceProcess`` is the service in its own process group, so ``kill()`` is a
``kill -9`` of everything it started (pipeline workers, forkserver) at once.
``OrderFeed`` publishes process orders from a thread, with confirms, and
republishes whatever was not confirmed when the broker went away.

``FaultRig.verify`` drains the count queue and turns it into figures: orders,
outputs, distinct message ids, lost orders (no schedule), duplicated effects
(an order with more than one distinct output, an output for no order, or one
message id with two bodies) and resends (the same output again under its own
message id: recognisable downstream, so not an effect). It asserts them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pika
import psycopg
from pika.adapters.blocking_connection import BlockingChannel
from pika.exceptions import AMQPError
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from adapters.brokers import connect_broker
from integration.service import build_topology, performance_route, process_order_route
from integration.store.failed import FailedMessages
from tests.support.idoc_factory import OrderSpec, build_loipro
from tests.support.rabbit import delete_service_topology

REPO = Path(__file__).resolve().parents[2]
ORDER_BASE = 700_000


def order_body(n: int) -> bytes:
    return build_loipro([OrderSpec(docnum=f"{n:016d}", order_number=str(ORDER_BASE + n))])


def order_stream(orders: int, repeats: int) -> list[tuple[int, bytes]]:
    """``orders`` distinct orders, then ``repeats`` of them again (same bytes: SAP resending)."""
    bodies = [(n, order_body(n)) for n in range(1, orders + 1)]
    step = max(1, orders // max(1, repeats))
    return bodies + [bodies[i] for i in range(0, orders, step)][:repeats]


def wait_until(
    condition: Callable[[], bool], timeout_s: float, what: str, seen: Callable[[], str]
) -> None:
    """Poll ``condition``; on timeout fail with ``what`` was awaited and what was ``seen``."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if condition():
                return
        except Exception as exc:  # a poll may race a restart; the deadline still holds
            last_error = f" (last poll failed: {type(exc).__name__}: {exc})"
        else:
            last_error = ""
        if time.monotonic() >= deadline:
            raise AssertionError(
                f"{what}: not reached within {timeout_s:.0f} s; seen: {seen()}{last_error}"
            )
        time.sleep(0.1)


class ServiceProcess:
    """``python -m integration run`` in a new session (process group), its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "integration", "run"],
            env=env,
            cwd=REPO,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            start_new_session=True,
        )
        self.started_at = time.monotonic()

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 15) -> str:
        text_ = self.log_path.read_text(errors="replace")
        return "\n".join(text_.splitlines()[-lines:])

    def wait_running(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"mesbridge run exited with {self.process.returncode} before running:\n"
                    + self.log_tail()
                )
            if b"mesbridge running" in self.log_path.read_bytes():
                return
            time.sleep(0.05)
        raise AssertionError(f"mesbridge run not running after {timeout_s} s:\n{self.log_tail()}")

    def wait_exit(self, timeout_s: float) -> int:
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"mesbridge run (pid {self.pid}) still running after {timeout_s} s:\n"
                + self.log_tail()
            ) from None

    def kill(self) -> None:
        """``kill -9`` the service and everything it started (its process group)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        self.process.wait(30)

    def stop(self, timeout_s: float = 45.0) -> int:
        """SIGTERM, as a supervisor stops it: finish the batch, flush the outbox, exit."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout_s)

    def close(self) -> None:
        # Whatever is left of the group (orphaned workers after a crash) goes too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(30)
        self._log.close()


@dataclass
class Figures:
    """What a fault test saw; the closing note quotes these."""

    test: str
    orders: int
    messages_published: int
    kills: int = 0
    outputs_received: int = 0
    distinct_message_ids: int = 0
    lost: int = 0
    duplicated_effects: int = 0
    resends: int = 0
    failed_messages: int = 0
    parked_queue: int = 0
    duration_s: float = 0.0
    notes: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        extra = "".join(f" {key}={value}" for key, value in self.notes.items())
        return (
            f"FAULT FIGURES {self.test}: orders={self.orders} "
            f"messages={self.messages_published} kills={self.kills} lost={self.lost} "
            f"duplicated_effects={self.duplicated_effects} resends={self.resends} "
            f"outputs={self.outputs_received} failed={self.failed_messages} "
            f"duration={self.duration_s:.1f}s{extra}"
        )


class FaultRig:
    """One fault test's names, database, service processes and output counter."""

    def __init__(
        self, *, amqp_url: str, postgres_url: str, tmp_path: Path, figures_path: Path
    ) -> None:
        self.amqp_url = amqp_url
        self.tmp_path = tmp_path
        self.figures_path = figures_path
        self.prefix = f"flt{uuid.uuid4().hex[:8]}"
        self.count_queue = f"{self.prefix}.count"
        self.started = time.monotonic()
        self.processes: list[ServiceProcess] = []
        base = make_url(postgres_url)
        self.database = f"mbfault_{uuid.uuid4().hex[:8]}"
        self._admin_url = base.set(drivername="postgresql", database="postgres").render_as_string(
            hide_password=False
        )
        with psycopg.connect(self._admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.database}"')
        self.database_url = base.set(database=self.database).render_as_string(hide_password=False)
        self._engine = create_engine(self.database_url, pool_pre_ping=True)
        self.audit_key = tmp_path / "audit.key"
        self.audit_key.write_bytes(os.urandom(32))
        routes = (
            process_order_route(tulip=False, prefix=self.prefix),
            performance_route(prefix=self.prefix),
        )
        self.topology = build_topology(routes, prefix=self.prefix)
        self.input_queue = routes[0].queue
        broker = connect_broker(amqp_url)
        try:
            broker.declare(self.topology)  # as the service will: inputs can wait before it runs
        finally:
            broker.close()
        with self.channel() as channel:
            channel.queue_declare(
                self.count_queue, durable=True, arguments={"x-queue-type": "quorum"}
            )
            channel.queue_bind(self.count_queue, self.topology.outbound_exchange, "#")

    # -- the service ---------------------------------------------------------------------

    def env(self, **settings: str) -> dict[str, str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("MESBRIDGE_")}
        values = {
            "BROKER_URL": self.amqp_url,
            "DATABASE_URL": self.database_url,
            "HTTP_PORT": "0",
            "TOPOLOGY_PREFIX": self.prefix,
            "AUDIT_KEY_FILE": str(self.audit_key),
            "BATCH_SIZE": "20",
            "PREFETCH": "40",
            "PIPELINE_WORKERS": "0",
            "OUTBOX_LEASE_S": "3",
            "SHUTDOWN_TIMEOUT_S": "15",
            **settings,
        }
        return {**base, **{f"MESBRIDGE_{key}": value for key, value in values.items()}}

    def start(
        self, *, crash_at: str | None = None, wait: bool = True, **settings: str
    ) -> ServiceProcess:
        env = self.env(**settings)
        if crash_at:
            env["MESBRIDGE_TEST_CRASH_AT"] = crash_at
        process = ServiceProcess(env, self.tmp_path / f"service-{len(self.processes) + 1}.log")
        self.processes.append(process)
        if wait:
            process.wait_running()
        return process

    def publish(self, stream: Sequence[tuple[int, bytes]]) -> int:
        """Publish ``stream`` to ``<prefix>.in`` as SAP would: persistent, confirmed."""
        properties = pika.BasicProperties(delivery_mode=2, content_type="application/xml")
        with self.channel() as channel:
            channel.confirm_delivery()
            for _, body in stream:
                channel.basic_publish(
                    self.topology.inbound_exchange, "sap.LOIPRO", body, properties, mandatory=True
                )
        return len(stream)

    # -- what the database and the broker hold -------------------------------------------

    def counts(self) -> dict[str, int]:
        with self._engine.connect() as connection:
            return {
                name: int(connection.execute(text(query)).scalar_one())
                for name, query in (
                    ("inbox", "SELECT count(*) FROM inbox"),
                    ("unsent", "SELECT count(*) FROM outbox WHERE sent_at IS NULL"),
                    ("sent", "SELECT count(*) FROM outbox WHERE sent_at IS NOT NULL"),
                    ("failed", "SELECT count(*) FROM failed_message"),
                )
            }

    def failed_messages(self) -> FailedMessages:
        """The failed-message store of this test's database, as the analyst's CLI reads it."""
        return FailedMessages(self._engine)

    @contextlib.contextmanager
    def channel(self, url: str | None = None) -> Iterator[BlockingChannel]:
        connection = pika.BlockingConnection(pika.URLParameters(url or self.amqp_url))
        try:
            yield connection.channel()
        finally:
            with contextlib.suppress(AMQPError):
                connection.close()

    def queue(self, name: str) -> tuple[int, int]:
        """(ready messages, consumers) of ``name``."""
        with self.channel() as channel:
            declared = channel.queue_declare(name, passive=True).method
            return int(declared.message_count), int(declared.consumer_count)

    def seen(self) -> str:
        """Everything a failing wait should report."""
        parts: list[str] = []
        try:
            parts.append(" ".join(f"{k}={v}" for k, v in self.counts().items()))
        except Exception as exc:
            parts.append(f"database unreadable ({type(exc).__name__})")
        try:
            ready, consumers = self.queue(self.input_queue)
            parts.append(f"input queue ready={ready} consumers={consumers}")
        except Exception as exc:
            parts.append(f"input queue unreadable ({type(exc).__name__})")
        if self.processes:
            last = self.processes[-1]
            state = last.process.poll()
            parts.append(f"service {'running' if state is None else f'exited {state}'}")
            parts.append("log tail:\n" + last.log_tail())
        return "; ".join(parts)

    def wait_done(self, orders: int, timeout_s: float = 90.0) -> None:
        """Every order in the inbox, the outbox empty, the input queue drained."""

        def done() -> bool:
            counts = self.counts()
            return (
                counts["inbox"] >= orders
                and counts["unsent"] == 0
                and self.queue(self.input_queue)[0] == 0
            )

        wait_until(done, timeout_s, f"{orders} orders settled and delivered", self.seen)

    def wait_consumers_gone(self, timeout_s: float = 30.0) -> None:
        """After a crash: the broker noticed, so the unacknowledged inputs are back."""
        wait_until(
            lambda: self.queue(self.input_queue)[1] == 0,
            timeout_s,
            "the broker dropping the dead service's consumers",
            self.seen,
        )

    # -- the verdict ---------------------------------------------------------------------

    def drain_outputs(self) -> list[tuple[str, str, bytes]]:
        """Every output in the count queue: (message id, orders header, body)."""
        got: list[tuple[str, str, bytes]] = []
        with self.channel() as channel:
            channel.basic_qos(prefetch_count=500)
            last_tag = acked = 0
            for method, properties, body in channel.consume(
                self.count_queue, inactivity_timeout=1.0
            ):
                if method is None:
                    break
                headers = properties.headers or {}
                got.append(
                    (str(properties.message_id), str(headers.get("x-mesbridge-orders", "")), body)
                )
                last_tag = method.delivery_tag
                if len(got) % 100 == 0:  # keep below the prefetch, or delivery stalls
                    channel.basic_ack(last_tag, multiple=True)
                    acked = last_tag
            if last_tag > acked:
                channel.basic_ack(last_tag, multiple=True)
            channel.cancel()
        return got

    def verify(self, figures: Figures, expected_orders: Sequence[int]) -> Figures:
        outputs = self.drain_outputs()
        counts = self.counts()
        parked, _ = self.queue(self.topology.parked_queue)
        bodies: dict[str, set[bytes]] = defaultdict(set)
        ids_by_order: dict[int, set[str]] = defaultdict(set)
        stray = 0
        for message_id, orders_header, body in outputs:
            bodies[message_id].add(body)
            numbers = [int(part) for part in orders_header.split(",") if part.strip()]
            if not numbers:
                stray += 1
            for number in numbers:
                ids_by_order[number - ORDER_BASE].add(message_id)
        expected = set(expected_orders)
        per_id = Counter(message_id for message_id, _, _ in outputs)
        figures.outputs_received = len(outputs)
        figures.distinct_message_ids = len(per_id)
        figures.lost = len(expected - set(ids_by_order))
        figures.duplicated_effects = (
            sum(len(ids) - 1 for ids in ids_by_order.values())
            + len(set(ids_by_order) - expected)
            + stray
            + sum(len(variants) - 1 for variants in bodies.values())
        )
        figures.resends = len(outputs) - len(per_id)
        figures.failed_messages = counts["failed"]
        figures.parked_queue = parked
        figures.duration_s = time.monotonic() - self.started
        self.report(figures)
        lost = sorted(expected - set(ids_by_order))[:10]
        doubled = sorted(n for n, ids in ids_by_order.items() if len(ids) > 1)[:10]
        assert figures.lost == 0, f"{figures.lost} order(s) without a schedule, e.g. {lost}"
        assert figures.duplicated_effects == 0, (
            f"{figures.duplicated_effects} duplicated effect(s): "
            f"orders with two outputs {doubled}, "
            f"{stray} output(s) naming no order, "
            f"{sum(len(v) - 1 for v in bodies.values())} message id(s) with two bodies"
        )
        assert figures.distinct_message_ids == len(expected)
        assert counts["inbox"] == len(expected), f"inbox holds {counts['inbox']} rows"
        assert counts["failed"] == 0, f"{counts['failed']} message(s) parked"
        assert parked == 0, f"{parked} message(s) in {self.topology.parked_queue}"
        return figures

    def report(self, figures: Figures) -> None:
        """Print the figures and add them to fault-figures.json in the session's tmp dir."""
        print(f"\n{figures.line()}")
        path = self.figures_path
        known = json.loads(path.read_text()) if path.exists() else {}
        known[figures.test] = asdict(figures)
        path.write_text(json.dumps(known, indent=2, sort_keys=True))
        print(f"(figures also in {path})")

    def close(self) -> None:
        for process in self.processes:
            process.close()
        self._engine.dispose()
        with contextlib.suppress(Exception):
            delete_service_topology(self.amqp_url, self.prefix)
            with self.channel() as channel:
                channel.queue_delete(self.count_queue)
        with psycopg.connect(self._admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


class OrderFeed:
    """Publishes ``stream`` from a thread at about ``rate`` messages/s, confirms awaited.

    A message whose publish was not confirmed (the broker went away) is sent again
    after reconnecting: the same bytes, so the inbox sees a duplicate at most.
    """

    def __init__(self, rig: FaultRig, stream: Sequence[tuple[int, bytes]], rate: float) -> None:
        self._rig = rig
        self._stream = stream
        self._interval = 1.0 / rate
        self.published = 0  # confirmed publishes, repeats and re-sends included
        self.reconnects = 0
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="order-feed", daemon=True)

    def start(self) -> OrderFeed:
        self._thread.start()
        return self

    def join(self, timeout_s: float) -> None:
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            raise AssertionError(
                f"order feed still publishing after {timeout_s} s ({self.published} confirmed)"
            )
        if self.error is not None:
            raise AssertionError(f"order feed failed: {self.error!r}")

    def _run(self) -> None:
        try:
            self._publish_all(deadline=time.monotonic() + 180)
        except BaseException as exc:
            self.error = exc

    def _publish_all(self, deadline: float) -> None:
        exchange = self._rig.topology.inbound_exchange
        properties = pika.BasicProperties(delivery_mode=2, content_type="application/xml")
        index, next_at = 0, time.monotonic()
        connection: pika.BlockingConnection | None = None
        channel: BlockingChannel | None = None
        while index < len(self._stream):
            if time.monotonic() > deadline:
                raise TimeoutError(f"published {index} of {len(self._stream)} before the deadline")
            try:
                if connection is None or channel is None or connection.is_closed:
                    connection = pika.BlockingConnection(pika.URLParameters(self._rig.amqp_url))
                    channel = connection.channel()
                    channel.confirm_delivery()
                delay = next_at - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                channel.basic_publish(
                    exchange, "sap.LOIPRO", self._stream[index][1], properties, mandatory=True
                )
            except (AMQPError, OSError):
                connection = channel = None
                self.reconnects += 1
                time.sleep(0.5)
                continue
            self.published += 1
            index += 1
            next_at += self._interval
        if connection is not None:
            with contextlib.suppress(AMQPError):
                connection.close()
