"""``mesbridge run --demo`` (``make run``): feed the bundled examples to the running service.

Publishes every file under ``deploy/examples/sap`` to ``mesbridge.in`` as SAP
would (one of them twice, to show deduplication), waits until the service has
settled and delivered them, and tells a newcomer where the outputs, the
metrics and the parked messages are. On the embedded broker the outputs are
copied from the ``mesbridge.to-pasx`` queue into ``var/demo/out/``.
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

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "sap"
OUT = Path("var") / "demo" / "out"


def feed_examples(service: Service, *, timeout_s: float = 20.0) -> None:
    paths = sorted(EXAMPLES.glob("*.xml"))
    envelopes = []
    for path in [*paths, paths[0]]:  # the first example again: a duplicate
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
    with store.engine.connect() as connection:
        earlier = connection.execute(text("SELECT coalesce(max(id), 0) FROM failed_message"))
        first_failure = int(earlier.scalar_one()) + 1
    publisher = service.broker.publisher()
    publisher.publish_batch(envelopes)
    publisher.close()
    click.echo(f"\nfed {len(envelopes)} example messages to mesbridge.in (one twice)", err=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if _processed(service) >= len(envelopes) and store.outbox_backlog() == 0:
            break
        time.sleep(0.1)
    with store.engine.connect() as connection:
        settled = connection.execute(text("SELECT count(*) FROM inbox")).scalar_one()
    _report(service, settled, first_failure)


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
        for queue in (f"{prefix}.to-pasx", service.topology.parked_queue):
            while (delivery := broker.get(queue)) is not None:
                kind = "parked" if queue.endswith("parked") else "pasx"
                name = (delivery.message_id or str(delivery.delivery_tag)).replace(":", "_")
                target = OUT / kind / f"{name}.xml"
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(delivery.body)
                lines.append(f"  {queue:<20} -> {target}")
                delivered += kind == "pasx"
        if delivered == 0:
            lines.append(
                "  no new schedules: these examples were settled in an earlier run, so this time "
                "they are duplicates\n  with no second effect (delete var/ to start afresh)"
            )
    lines += [
        "",
        f"metrics:        curl http://127.0.0.1:{port}/metrics | grep ^mesbridge_",
        f"health:         curl http://127.0.0.1:{port}/readyz",
        "validate a file: .venv/bin/mesbridge validate deploy/examples/sap/*.xml",
        "",
        "The service keeps running; Ctrl-C stops it (it drains the batch in hand first).",
    ]
    click.echo("\n".join(lines), err=True)
