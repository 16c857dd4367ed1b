"""``make bench``: the process-order route through the running service, against raw pika.

Both run in the same invocation on the same RabbitMQ, so their ratio is a fair
figure on any machine:

1. raw: N messages preloaded; a pika consumer publishes each to another
   exchange (persistent) and acks it: no parsing, no database, no confirms.
2. service: ``mesbridge run`` as a subprocess (PostgreSQL when reachable, else
   SQLite); N realistic process orders (about 9 KB, 12 phases, 15 components,
   unique DOCNUMs) preloaded, the service started, timed until N schedules are
   in the outbound queue. Then latency: orders published at a steady rate below
   capacity, each timed from publish to its schedule arriving (p50, p99).
3. memory: the service's peak RSS (VmHWM) sampled while it works through
   ``--memory-messages`` orders (100,000 by default), printed at checkpoints.

For both timed runs it also prints the CPU time each process spent per message
(``tests/bench/cpu.py``): RabbitMQ, the bench database's PostgreSQL backends,
PostgreSQL's background processes, the service's main process and its pipeline
workers. Other load on the machine bends the msg/s figures much more than these.

After the timed run it reads every schedule the service delivered and checks it:
exactly one per order, each valid against its contract and, where the official
MESA schemas are found (``MESBRIDGE_B2MML_DIR``, else ``../shared/b2mml``), against
those too. Throughput of wrong output is no throughput: a failed check ends the
bench with exit status 1. Otherwise it prints figures and asserts nothing.

Options: ``--messages``, ``--memory-messages``, ``--latency-messages`` (0: skip),
``--database sqlite|postgres``, ``--phases N`` (1: a minimal 2 KB order), ``--repeats N``
(N inputs sent twice, byte for byte, shuffled in; msg/s then counts every input message),
``--env NAME=VALUE`` (extra service settings, e.g. ``--env MESBRIDGE_PIPELINE_WORKERS=0``),
``--instances N`` (N services on the same queues and database, DESIGN §6).
"""

from __future__ import annotations

import argparse
import collections
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

import pika
from lxml import etree
from pika.adapters.blocking_connection import BlockingChannel

from contracts.errors import ContractViolation
from contracts.registry import ContractRegistry
from tests.bench.cpu import CpuMeter, CpuReport
from tests.support.idoc_factory import ComponentSpec, OrderSpec, PhaseSpec, build_loipro
from tests.support.rabbit import delete_service_topology

AMQP_URL = os.environ.get("MESBRIDGE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REPO = Path(__file__).resolve().parents[2]
OFFICIAL_B2MML = Path(os.environ.get("MESBRIDGE_B2MML_DIR") or REPO.parent / "shared" / "b2mml")


class OrderShape:
    """Phases per order (``--phases``): 12 is a realistic process order, 1 a minimal one."""

    phases = 12


def realistic_order(number: int) -> bytes:
    phases = []
    for p in range(1, OrderShape.phases + 1):
        components = [
            ComponentSpec(
                material=str(300000 + p * 10 + c),
                quantity=f"{p}.{c:03d}",
                batch=f"B{number % 100000:05d}{c}",
                reservation_item=f"{p * 10 + c:04d}",
            )
            for c in range(1, 3 if p <= 3 else 2)
        ]
        phases.append(
            PhaseSpec(
                number=f"{p * 10:04d}", text=f"Phase {p} of the process", components=components
            )
        )
    spec = OrderSpec(docnum=f"{number:016d}", order_number=str(1_000_000 + number), phases=phases)
    return build_loipro([spec])


def _channel(url: str = AMQP_URL) -> tuple[pika.BlockingConnection, BlockingChannel]:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    return connection, connection.channel()


def preload(exchange: str, routing_key: str, bodies: list[bytes]) -> None:
    connection, channel = _channel()
    channel.confirm_delivery()
    properties = pika.BasicProperties(delivery_mode=2, content_type="application/xml")
    for body in bodies:
        channel.basic_publish(exchange, routing_key, body, properties)
    connection.close()


def queue_depth(queue: str) -> int:
    connection, channel = _channel()
    depth = channel.queue_declare(queue, passive=True).method.message_count
    connection.close()
    return int(depth)


def raw_pass_through(bodies: list[bytes]) -> tuple[float, CpuReport]:
    """DESIGN §3's baseline: consume → publish (persistent) → ack, no work."""
    tag = uuid.uuid4().hex[:8]
    source, sink, exchange = f"bench.raw.in.{tag}", f"bench.raw.out.{tag}", f"bench.raw.x.{tag}"
    connection, channel = _channel()
    channel.exchange_declare(exchange, "topic", durable=True)
    channel.queue_declare(source, durable=True)
    channel.queue_declare(sink, durable=True)
    channel.queue_bind(sink, exchange, "#")
    connection.close()
    preload("", source, bodies)
    connection, channel = _channel()
    channel.basic_qos(prefetch_count=200)
    remaining = len(bodies)
    properties = pika.BasicProperties(delivery_mode=2)

    def on_message(ch: BlockingChannel, method: object, _props: object, body: bytes) -> None:
        nonlocal remaining
        ch.basic_publish(exchange, "out", body, properties)
        ch.basic_ack(method.delivery_tag)  # type: ignore[attr-defined]
        remaining -= 1
        if remaining == 0:
            ch.stop_consuming()

    channel.basic_consume(source, on_message)
    meter = CpuMeter(database=None, service_trees=list)
    started = time.perf_counter()
    meter.start(started)
    channel.start_consuming()
    elapsed = time.perf_counter() - started
    report = meter.stop(time.perf_counter(), len(bodies))
    for queue in (source, sink):
        channel.queue_delete(queue)
    channel.exchange_delete(exchange)
    connection.close()
    return len(bodies) / elapsed, report


@contextmanager
def database(kind: str) -> Iterator[str]:
    if kind == "postgres":
        import psycopg

        name = f"mesbridge_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
        finally:
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    path = Path(f"/tmp/mesbridge-bench-{uuid.uuid4().hex[:8]}.db")
    try:
        yield f"sqlite:///{path}"
    finally:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)


def _audit_key_file() -> Path:
    """A throwaway audit key, so the bench leaves no key under ./var (PostgreSQL default)."""
    path = Path(f"/tmp/mesbridge-bench-audit-{os.getuid()}.key")
    if not path.exists():
        path.write_bytes(os.urandom(32))
        path.chmod(0o600)
    return path


class RunningService:
    """``mesbridge run`` in a subprocess with its own topology names."""

    # Extra settings for every service the bench starts (``--env``).
    extra_env: ClassVar[dict[str, str]] = {}

    def __init__(self, database_url: str, prefix: str, *, wait: bool = True) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("MESBRIDGE_")},
            "MESBRIDGE_BROKER_URL": AMQP_URL,
            "MESBRIDGE_DATABASE_URL": database_url,
            "MESBRIDGE_HTTP_PORT": "0",
            "MESBRIDGE_TOPOLOGY_PREFIX": prefix,
            "MESBRIDGE_AUDIT_KEY_FILE": str(_audit_key_file()),
            **self.extra_env,
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "integration", "run"],
            env=env,
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.log: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read_log, daemon=True).start()
        if wait and not self.ready.wait(60):
            self.stop()
            raise RuntimeError("the service did not start:\n" + "".join(self.log[-20:]))

    def _read_log(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.log.append(line)
            if "mesbridge running" in line:
                self.ready.set()

    def tree(self) -> list[int]:
        """The service and every process below it (forkserver, pipeline workers)."""
        pids, index = [self.process.pid], 0
        while index < len(pids):
            for task in Path(f"/proc/{pids[index]}/task").glob("*/children"):
                pids += [int(child) for child in task.read_text().split()]
            index += 1
        return pids

    def _sum_status(self, field: str) -> float:
        total = 0
        for pid in self.tree():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except FileNotFoundError:
                continue
            for line in status.splitlines():
                if line.startswith(field):
                    total += int(line.split()[1])
        return total / 1024

    def peak_rss_mib(self) -> float:
        """Sum of each process's own peak: an upper bound of the tree's peak."""
        return self._sum_status("VmHWM:")

    def rss_mib(self) -> float:
        return self._sum_status("VmRSS:")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            self.process.kill()


class Services:
    """``--instances`` copies of ``mesbridge run`` on the same queues and database.

    DESIGN §6: instances are competing consumers that share PostgreSQL. On a small host,
    several instances with in-thread pipelines (``--env MESBRIDGE_PIPELINE_WORKERS=0``)
    are an alternative to one instance with worker processes; this measures both.
    """

    count: ClassVar[int] = 1

    def __init__(self, database_url: str, prefix: str) -> None:
        # Returns once the first instance runs: the timed window starts before any input is
        # consumed, and the others' start-up CPU is inside it (a conservative figure).
        self.instances = [
            RunningService(database_url, prefix, wait=False) for _ in range(self.count)
        ]
        deadline = time.monotonic() + 60
        while not any(instance.ready.is_set() for instance in self.instances):
            exited = [i for i in self.instances if i.process.poll() is not None]
            if exited or time.monotonic() > deadline:
                self.stop()
                log = "".join(exited[0].log[-20:]) if exited else "(still starting after 60 s)"
                raise RuntimeError("the service did not start:\n" + log)
            time.sleep(0.01)

    def trees(self) -> list[list[int]]:
        return [instance.tree() for instance in self.instances]

    def peak_rss_mib(self) -> float:
        return sum(instance.peak_rss_mib() for instance in self.instances)

    def rss_mib(self) -> float:
        return sum(instance.rss_mib() for instance in self.instances)

    def stop(self) -> None:
        for instance in self.instances:
            instance.stop()


def declare_only(prefix: str, database_url: str) -> None:
    """Let the service declare its topology once, then stop it, so inputs can be preloaded."""
    RunningService(database_url, prefix).stop()


def cleanup(prefix: str) -> None:
    delete_service_topology(AMQP_URL, prefix)


def purge(queue: str) -> None:
    connection, channel = _channel()
    channel.queue_purge(queue)
    connection.close()


def service_throughput(
    database_url: str, prefix: str, bodies: list[bytes], orders: int
) -> tuple[float, CpuReport, OutputCheck]:
    """Input messages per second, timed until ``orders`` schedules (one per order) are out;
    then the schedules, checked."""
    preload(f"{prefix}.in", "sap.LOIPRO", bodies)
    # One connection for all polls: a connection per poll would cost RabbitMQ CPU in the window.
    connection, channel = _channel()
    service = Services(database_url, prefix)
    meter = CpuMeter(database=database_url.rsplit("/", 1)[-1], service_trees=service.trees)
    started = time.perf_counter()  # from "running": start-up (migrations, schema checks) excluded
    meter.start(started)
    try:
        while True:
            depth = channel.queue_declare(f"{prefix}.to-pasx", passive=True).method.message_count
            if depth >= orders:
                break
            time.sleep(0.05)
        elapsed = time.perf_counter() - started
        report = meter.stop(time.perf_counter(), len(bodies))
    finally:
        service.stop()
        connection.close()
    return len(bodies) / elapsed, report, check_outputs(f"{prefix}.to-pasx", orders)


class OutputCheck:
    """What the service delivered for the timed run, read back and checked."""

    def __init__(self, expected_orders: int, official: bool) -> None:
        self.expected_orders = expected_orders
        self.official = official
        self.per_order: collections.Counter[str] = collections.Counter()
        self.invalid: list[str] = []

    @property
    def ok(self) -> bool:
        return (
            not self.invalid
            and len(self.per_order) == self.expected_orders
            and all(count == 1 for count in self.per_order.values())
        )

    def lines(self) -> list[str]:
        doubled = sum(1 for count in self.per_order.values() if count > 1)
        missing = self.expected_orders - len(self.per_order)
        against = "its contract" + (" and the official MESA schema" if self.official else "")
        lines = [
            f"  outputs: {sum(self.per_order.values())} schedules for {self.expected_orders} "
            f"orders: {missing} missing, {doubled} doubled, {len(self.invalid)} invalid "
            f"against {against}" + ("" if self.ok else "  ** CHECK FAILED **")
        ]
        lines += [f"    {problem}" for problem in self.invalid[:5]]
        return lines


def check_outputs(queue: str, expected_orders: int) -> OutputCheck:
    """Drain ``queue`` (the service has stopped: its relays delivered everything first)."""
    official = OFFICIAL_B2MML.is_dir()
    registry = ContractRegistry.load(official_b2mml_dir=OFFICIAL_B2MML if official else None)
    check = OutputCheck(expected_orders, official)
    connection, channel = _channel()
    try:
        for method, properties, body in channel.consume(queue, inactivity_timeout=1.0):
            if method is None:
                break
            root = etree.fromstring(body)
            contract = registry.get(str((properties.headers or {})["x-mesbridge-contract"]))
            try:
                registry.validate_xml(root, contract)
            except ContractViolation as exc:
                problem = str(exc).replace("\n", "\n      ")
                check.invalid.append(f"{properties.message_id}: {problem}")
            namespaces = {"b": root.nsmap[None]}
            # V0600 ProductionSchedule / V7 OperationsSchedule (MESBRIDGE_PASX_PROFILE).
            requests = "//b:ProductionRequest/b:ID/text() | //b:OperationsRequest/b:ID/text()"
            for order in root.xpath(requests, namespaces=namespaces):
                check.per_order[str(order)] += 1
            channel.basic_ack(method.delivery_tag)
        channel.cancel()
    finally:
        connection.close()
    return check


def service_latency(
    database_url: str, prefix: str, first: int, count: int, rate: float
) -> tuple[float, float]:
    purge(f"{prefix}.to-pasx")
    service = Services(database_url, prefix)
    sent: dict[str, float] = {}
    received: dict[str, float] = {}
    done = threading.Event()

    def collect() -> None:
        connection, channel = _channel()

        def on_message(ch: BlockingChannel, method: object, props: object, _body: bytes) -> None:
            orders = str(props.headers.get("x-mesbridge-orders", ""))  # type: ignore[attr-defined]
            received[orders] = time.perf_counter()
            ch.basic_ack(method.delivery_tag)  # type: ignore[attr-defined]
            if len(received) >= count:
                ch.stop_consuming()

        channel.basic_qos(prefetch_count=500)
        channel.basic_consume(f"{prefix}.to-pasx", on_message)
        channel.start_consuming()
        connection.close()
        done.set()

    threading.Thread(target=collect, daemon=True).start()
    connection, channel = _channel()
    properties = pika.BasicProperties(delivery_mode=2, content_type="application/xml")
    interval = 1.0 / rate
    next_at = time.perf_counter()
    try:
        for number in range(first, first + count):
            body = realistic_order(number)
            while time.perf_counter() < next_at:
                time.sleep(max(0.0, next_at - time.perf_counter()))
            sent[f"{1_000_000 + number:012d}"] = time.perf_counter()
            channel.basic_publish(f"{prefix}.in", "sap.LOIPRO", body, properties)
            next_at += interval
        connection.close()
        done.wait(120)
    finally:
        service.stop()
    latencies = sorted((received[k] - sent[k]) * 1000 for k in sent if k in received)
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return p50, p99


def memory_run(database_url: str, prefix: str, total: int) -> list[tuple[int, float, float]]:
    purge(f"{prefix}.to-pasx")
    service = Services(database_url, prefix)
    checkpoints: list[tuple[int, float, float]] = []
    chunk = 5000
    number = 10_000_000
    try:
        consumer_connection, consumer = _channel()
        done = 0
        while done < total:
            preload(
                f"{prefix}.in", "sap.LOIPRO", [realistic_order(number + i) for i in range(chunk)]
            )
            number += chunk
            target = done + chunk
            while True:
                depth = queue_depth(f"{prefix}.to-pasx")
                if depth >= chunk:
                    break
                time.sleep(0.05)
            consumer.queue_purge(f"{prefix}.to-pasx")
            done = target
            checkpoints.append((done, service.rss_mib(), service.peak_rss_mib()))
            print(
                f"    {done:>7} orders: RSS {checkpoints[-1][1]:.0f} MiB, "
                f"peak {checkpoints[-1][2]:.0f} MiB",
                flush=True,
            )
        consumer_connection.close()
    finally:
        service.stop()
    return checkpoints


def postgres_reachable() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=2):
            return True
    except Exception:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--latency-messages", type=int, default=2000)
    parser.add_argument("--memory-messages", type=int, default=100_000)
    parser.add_argument("--database", choices=["postgres", "sqlite"], default=None)
    parser.add_argument(
        "--phases",
        type=int,
        default=OrderShape.phases,
        help="phases per order (12: ~9 KB with 15 components; 1: ~2.4 KB with 2 components)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        default=0,
        help="inputs sent a second time, byte for byte (SAP sending an IDoc again), "
        "shuffled among the orders; both timed runs get the same messages",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an extra MESBRIDGE_* setting for the service (repeatable)",
    )
    parser.add_argument(
        "--instances",
        type=int,
        default=1,
        help="service instances on the same queues and database (with "
        "--env MESBRIDGE_PIPELINE_WORKERS=0: one process each, no worker processes)",
    )
    args = parser.parse_args()
    RunningService.extra_env = dict(item.split("=", 1) for item in args.env)
    Services.count = args.instances
    OrderShape.phases = args.phases
    kind = args.database or ("postgres" if postgres_reachable() else "sqlite")
    orders = [realistic_order(n) for n in range(1, args.messages + 1)]
    bodies = orders + [orders[i % len(orders)] for i in range(args.repeats)]
    if args.repeats:
        random.Random(args.repeats).shuffle(bodies)  # a repeat may come before its first copy
    size = statistics.mean(len(body) for body in orders)
    components = sum(2 if p <= 3 else 1 for p in range(1, args.phases + 1))
    print(
        f"mesbridge bench: {args.messages} process orders of {size / 1024:.1f} KB "
        f"({args.phases} phases, {components} components)"
        + (f", and {args.repeats} repeats of them" if args.repeats else "")
    )
    extra = f", {' '.join(args.env)}" if args.env else ""
    if args.instances > 1:
        extra += f", {args.instances} service instances"
    print(f"  broker {AMQP_URL.split('@')[-1]}, database {kind}{extra}")
    raw, raw_cpu = raw_pass_through(bodies)
    print(f"  raw pika consume -> publish -> ack:   {raw:8.0f} msg/s")
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    with database(kind) as database_url:
        try:
            declare_only(prefix, database_url)
            route, route_cpu, outputs = service_throughput(
                database_url, prefix, bodies, len(orders)
            )
            print(f"  process-order route, end to end:      {route:8.0f} msg/s")
            print(
                f"  ratio route / raw:                    {route / raw:8.2f}"
                "  (target >= 0.25, goal 0.5)"
            )
            print("\n".join(outputs.lines()))
            print("  CPU µs per message by process, raw pika:")
            print("\n".join(raw_cpu.lines()))
            print("  CPU µs per message by process, process-order route:")
            print("\n".join(route_cpu.lines()))
            if args.latency_messages:
                rate = max(50.0, route * 0.5)
                p50, p99 = service_latency(
                    database_url, prefix, 5_000_000, args.latency_messages, rate
                )
                print(
                    f"  latency at {rate:.0f} msg/s ({args.latency_messages} orders): "
                    f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
                )
            if args.memory_messages:
                print(f"  memory over {args.memory_messages} orders:")
                checkpoints = memory_run(database_url, prefix, args.memory_messages)
                first_rss, last_rss = checkpoints[0][1], checkpoints[-1][1]
                print(
                    f"  RSS first checkpoint {first_rss:.0f} MiB, last {last_rss:.0f} MiB, "
                    f"peak {checkpoints[-1][2]:.0f} MiB"
                )
        finally:
            cleanup(prefix)
    if not outputs.ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
