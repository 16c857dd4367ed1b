"""``mesbridge run`` (the service) and ``mesbridge send``: publish files as SAP would."""

from __future__ import annotations

import hashlib
import logging
import os
import signal
from pathlib import Path
from types import FrameType

import click

from adapters.amqp.url import mask_url
from contracts.errors import MesbridgeError
from integration.bootstrap import LOG_FORMAT, Components
from integration.broker import Envelope, PublishResult
from integration.cli.publishing import (
    check_broker_url,
    inbound_publisher,
    inbound_topology,
    publish_with_progress,
)
from integration.demo import feed_examples
from integration.faults import arm_from
from integration.intake import read_message
from integration.routes import inbound_routing_key
from integration.service import Service
from integration.settings import Settings

__all__ = ["run", "send"]


@click.command()
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file (overrides MESBRIDGE_* variables).",
)
@click.option("--demo", is_flag=True, help="Feed the bundled example messages once it runs.")
@click.pass_obj
def run(components: Components, config_file: Path | None, demo: bool) -> None:
    """Run the service: consumers, outbox relay, HTTP (/healthz, /readyz, /metrics).

    With no settings it runs on an embedded broker and a SQLite file under ./var/.
    SIGTERM or Ctrl-C stops consuming, settles the batches in hand and flushes the outbox.
    """
    settings = components.settings
    if config_file is not None:
        settings = Settings.load(os.environ, config_file=config_file)
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    service = Service(settings)
    try:
        arm_from(os.environ)  # a test facility: integration/faults.py
        service.start()
    except MesbridgeError as exc:
        click.echo(f"mesbridge run: cannot start: {exc}", err=True)
        service.stop()
        raise SystemExit(2) from None

    def _stop(signum: int, _frame: FrameType | None) -> None:
        click.echo(f"mesbridge: {signal.Signals(signum).name} received, draining", err=True)
        service.stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    http = service.http
    click.echo(
        f"mesbridge running: broker {mask_url(settings.broker_url)}, "
        f"database {mask_url(settings.database_url)}, "
        f"http://{settings.http_host}:{http.port if http else settings.http_port}/metrics",
        err=True,
    )
    if demo:
        feed_examples(service)
    service.wait()
    click.echo("mesbridge: stopped", err=True)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--routing-key", help="Routing key for every file (default: read from each file).")
@click.option("--broker", "broker_url", help="Broker URL (default: MESBRIDGE_BROKER_URL).")
@click.pass_obj
def send(
    components: Components, files: tuple[Path, ...], routing_key: str | None, broker_url: str | None
) -> None:
    """Publish FILES to the inbound exchange as SAP or the MES would, confirms awaited."""
    url = broker_url or components.settings.broker_url
    check_broker_url(url)
    topology = inbound_topology(components.settings.topology_prefix)
    envelopes: list[tuple[Path, Envelope]] = []
    for path in files:
        data = path.read_bytes()
        try:
            key = routing_key or inbound_routing_key(
                read_message(data, source=str(path), limits=components.limits)
            )
        except MesbridgeError as exc:
            click.echo(f"mesbridge send: {exc}", err=True)
            raise SystemExit(1) from None
        envelope = Envelope(
            exchange=topology.inbound_exchange,
            routing_key=key,
            body=data,
            message_id=f"sha256:{hashlib.sha256(data).hexdigest()}",
            content_type="application/json"
            if data.lstrip()[:1] in (b"{", b"[")
            else "application/xml",
        )
        envelopes.append((path, envelope))
    with inbound_publisher(url, topology) as publisher:
        results = publish_with_progress(
            publisher, [envelope for _, envelope in envelopes], label="publishing"
        )
    failed = [
        f"{path}: {result.value} (routing key {envelope.routing_key})"
        for (path, envelope), result in zip(envelopes, results, strict=True)
        if result is not PublishResult.CONFIRMED
    ]
    for line in failed:
        click.echo(f"mesbridge send: {line}", err=True)
    click.echo(
        f"sent {len(envelopes) - len(failed)} of {len(envelopes)} to {mask_url(url)}", err=True
    )
    raise SystemExit(1 if failed else 0)
