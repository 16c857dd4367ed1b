"""As an outside driver sees the service on RabbitMQ: plain pika in, plain pika out."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pika
import pytest
from click.testing import CliRunner

from adapters.brokers import connect_broker
from integration.cli import cli
from integration.service import Service
from integration.settings import Settings
from tests.support.idoc_factory import OrderSpec, build_loipro
from tests.support.rabbit import delete_service_topology

pytestmark = pytest.mark.rabbitmq


@pytest.fixture
def running(amqp_url: str, tmp_path: Path) -> Iterator[Service]:
    prefix = f"drv{uuid.uuid4().hex[:8]}"
    settings = Settings(
        broker_url=amqp_url,
        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}",
        http_port=0,
        topology_prefix=prefix,
    )
    service = Service(settings, broker=connect_broker(amqp_url))
    service.start()
    yield service
    service.stop()
    delete_service_topology(amqp_url, prefix)


def _drain(
    channel: pika.adapters.blocking_connection.BlockingChannel, queue: str, expected: int
) -> list[bytes]:
    bodies: list[bytes] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(bodies) < expected:
        method, _, body = channel.basic_get(queue, auto_ack=True)
        if method is None:
            time.sleep(0.05)
            continue
        bodies.append(body)
    time.sleep(0.5)  # anything more would be a double effect
    while (extra := channel.basic_get(queue, auto_ack=True))[0] is not None:
        bodies.append(extra[2])
    return bodies


def test_raw_pika_driver_gets_one_schedule_per_order(amqp_url: str, running: Service) -> None:
    prefix = running.settings.topology_prefix
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    channel = connection.channel()
    result = channel.queue_declare("", exclusive=True)
    mine = result.method.queue
    channel.queue_bind(mine, f"{prefix}.out", "pasx.#")
    channel.confirm_delivery()
    orders = [
        build_loipro([OrderSpec(docnum=f"{n:016d}", order_number=str(800000 + n))])
        for n in range(1, 301)
    ]
    for body in orders + orders[::6]:
        channel.basic_publish(
            f"{prefix}.in",
            "sap.LOIPRO",
            body,
            pika.BasicProperties(delivery_mode=2, content_type="application/xml"),
            mandatory=True,
        )
    bodies = _drain(channel, mine, 300)
    connection.close()
    assert len(bodies) == 300
    assert len(set(bodies)) == 300


def test_send_command_publishes_files_with_confirms(
    amqp_url: str, running: Service, tmp_path: Path
) -> None:
    files = []
    for n in range(1, 6):
        path = tmp_path / f"order{n}.xml"
        path.write_bytes(
            build_loipro([OrderSpec(docnum=f"{n:016d}", order_number=str(900000 + n))])
        )
        files.append(str(path))
    result = CliRunner().invoke(
        cli,
        ["send", *files, "--broker", amqp_url],
        env={"MESBRIDGE_TOPOLOGY_PREFIX": running.settings.topology_prefix},
    )
    assert result.exit_code == 0, result.output
    assert "sent 5 of 5" in result.stderr
    store = running.store
    assert store is not None
    deadline = time.monotonic() + 30
    while (
        time.monotonic() < deadline and store.lookup(f"sap-idoc:ERPCLNT200:LOIPRO:{5:016d}") is None
    ):
        time.sleep(0.05)
    assert store.lookup(f"sap-idoc:ERPCLNT200:LOIPRO:{5:016d}") is not None
