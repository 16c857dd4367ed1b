"""``mesbridge run --demo`` (``make run``): feed the bundled examples to the running service.

Publishes every file under ``deploy/examples/sap`` to ``mesbridge.in`` as SAP
would (one of them twice, to show deduplication), waits until the service has
settled and delivered them, then the PAS-X performance messages under
``deploy/examples/pasx`` (which need the orders SAP sent first), and tells a
newcomer where the outputs, the metrics and the parked messages are. On the
embedded broker the outputs are copied from the ``mesbridge.to-pasx`` and
``mesbridge.to-sap`` queues into ``var/demo/out/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
from sqlalchemy import text

from adapters.memory_broker import InMemoryBroker
from integration.broker import Envelope
from integration.intake import read_message
from integration.routes import inbound_routing_key
from integration.service import Service

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples"
OUT = Path("var") / "demo" / "out"


def feed_examples(service: Service, *, timeout_s: float = 20.0) -> None:
    store = service.store
    assert store is not None
    with store.engine.connect() as connection:
        earlier = connection.execute(text("SELECT coalesce(max(id), 0) FROM failed_message"))
        first_failure = int(earlier.scalar_one()) + 1
    sap = sorted((EXAMPLES / "sap").glob("*.xml"))
    fed = _feed(service, [*sap, sap[0]], timeout_s)  # the first example again: a duplicate
    click.echo(f"\nfed {fed} SAP example messages to mesbridge.in (one twice)", err=True)
    # Goods movements complete themselves from the orders SAP sent: those go first.
    fed += (pasx := _feed(service, sorted((EXAMPLES / "pasx").glob("*.xml")), timeout_s, fed))
    click.echo(f"fed {pasx} PAS-X example message(s) to mesbridge.in", err=True)
    with store.engine.connect() as connection:
        settled = connection.execute(text("SELECT count(*) FROM inbox")).scalar_one()
    _report(service, settled, first_failure)


def _feed(service: Service, paths: list[Path], timeout_s: float, before: int = 0) -> int:
    """Publish ``paths`` and wait until the service is done with them; how many were fed."""
    envelopes = []
    for path in paths:
        data = path.read_bytes()
        message = read_message(data, source=path.name, limits=service.components.limits)
        key = inbound_routing_key(message)
        envelopes.append(
            Envelope(
                exchange=service.topology.inbound_exchange,
                routing_key=key,
                body=data,
                message_id=f"demo:{path.name}",
                content_type="application/xml",
            )
        )
    store = service.store
    assert store is not None
    publisher = service.broker.publisher()
    publisher.publish_batch(envelopes)
    publisher.close()
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _processed(service) >= before + len(envelopes) and store.outbox_backlog() == 0:
            break
        time.sleep(0.1)
    return len(envelopes)


def _processed(service: Service) -> float:
    """Messages the service has finished with, whatever the outcome, from its own counters."""
    return sum(
        service.metrics_registry.get_sample_value(
            "mesbridge_messages_processed_total", {"route": route.name, "outcome": outcome}
        )
        or 0.0
        for route in service.routes
        for outcome in ("ok", "duplicate", "parked")
    )


def _report(service: Service, settled: int, first_failure: int) -> None:
    http = service.http
    port = http.port if http else service.settings.http_port
    lines = [
        "",
    ]
    store = service.store
    assert store is not None
    with store.engine.connect() as connection:
        failures = connection.execute(
            text(
                "SELECT id, route, error_class, error_text FROM failed_message "
                "WHERE id >= :first ORDER BY id"
            ),
            {"first": first_failure},
        ).all()
    lines.insert(
        1,
        f"{settled} input(s) settled in all (a duplicate has no second effect); "
        f"{len(failures)} parked by this run",
    )
    for failure_id, route, error_class, error_text in failures:
        lines.append(f"  parked #{failure_id} ({route}, {error_class}):")
        lines += [f"    {line}" for line in str(error_text).splitlines()]
    broker = service.broker
    delivered = 0
    if isinstance(broker, InMemoryBroker):
        OUT.mkdir(parents=True, exist_ok=True)
        prefix = service.settings.topology_prefix
        queues = {
            f"{prefix}.to-pasx": "pasx",
            f"{prefix}.to-sap": "sap",
            service.topology.parked_queue: "parked",
        }
        for queue, kind in queues.items():
            while (delivery := broker.get(queue)) is not None:
                name = (delivery.message_id or str(delivery.delivery_tag)).replace(":", "_")
                target = OUT / kind / f"{name}.xml"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(delivery.body)
                lines.append(f"  {queue:<20} -> {target}")
                delivered += kind != "parked"
        if delivered == 0:
            lines.append(
                "  no new outputs: these examples were settled in an earlier run, so this time "
                "they are duplicates\n  with no second effect (delete var/ to start afresh)"
            )
    lines += [
        "",
        f"metrics:        curl http://127.0.0.1:{port}/metrics | grep ^mesbridge_",
        f"health:         curl http://127.0.0.1:{port}/readyz",
        "validate a file: .venv/bin/mesbridge validate deploy/examples/sap/*.xml",
        "goods movements: .venv/bin/mesbridge transform deploy/examples/pasx/*.xml "
        "--to sap --out DIR",
        "",
        "The service keeps running; Ctrl-C stops it (it settles the batches in hand first).",
    ]
    click.echo("\n".join(lines), err=True)
