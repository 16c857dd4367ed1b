"""Outages mid-stream: the broker or the database goes away; nothing is lost, doubled or parked.

An output may be published twice when a connection dies between the broker's
confirm and the outbox row being marked sent; it then carries the same message
id, so the tests count distinct message ids (the effect) and report repeats.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pika
import psycopg
import pytest
from sqlalchemy import text

from adapters.brokers import connect_broker
from adapters.memory_broker import InMemoryBroker
from integration.service import Service
from integration.settings import Settings
from tests.brokers.tcp_proxy import TcpProxy
from tests.support.idoc_factory import OrderSpec, build_loipro
from tests.support.rabbit import delete_service_topology

ORDERS = 300


def _orders() -> list[bytes]:
    return [
        build_loipro([OrderSpec(docnum=f"{n:016d}", order_number=str(500000 + n))])
        for n in range(1, ORDERS + 1)
    ]


def _settings(**values: object) -> Settings:
    return Settings(
        http_port=0,
        batch_size=20,
        prefetch=40,
        pipeline_workers=0,
        topology_prefix=f"out{uuid.uuid4().hex[:8]}",
        shutdown_timeout_s=15,
    ).replace(**values)


def _count(service: Service, table: str) -> int:
    assert service.store is not None
    with service.store.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


def _wait(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"not reached within {timeout_s} s")


def test_embedded_broker_outage(tmp_path: Path) -> None:
    url = f"memory://outage-{uuid.uuid4().hex[:8]}"
    settings = _settings(broker_url=url, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    broker = connect_broker(url)
    assert isinstance(broker, InMemoryBroker)
    service = Service(settings, broker=broker)
    service.start()
    try:
        for body in _orders():
            broker.publish(service.topology.inbound_exchange, "sap.LOIPRO", body)
        _wait(lambda: _count(service, "inbox") >= 30)
        broker.set_reachable(False)
        time.sleep(1.5)
        broker.set_reachable(True)
        _wait(lambda: _count(service, "inbox") == ORDERS and service.store.outbox_backlog() == 0)  # type: ignore[union-attr]
        ids = set()
        while (delivery := broker.get(f"{settings.topology_prefix}.to-pasx")) is not None:
            ids.add(delivery.message_id)
        assert len(ids) == ORDERS
        assert _count(service, "failed_message") == 0
    finally:
        service.stop()


@pytest.mark.rabbitmq
def test_rabbitmq_connections_cut_mid_stream(amqp_url: str, tmp_path: Path) -> None:
    proxy = TcpProxy("127.0.0.1", 5672)
    proxied = amqp_url.replace("127.0.0.1:5672", f"127.0.0.1:{proxy.port}")
    settings = _settings(broker_url=proxied, database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    service = Service(settings, broker=connect_broker(proxied))
    service.start()
    prefix = settings.topology_prefix
    try:
        connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
        channel = connection.channel()
        channel.confirm_delivery()
        for body in _orders():
            channel.basic_publish(
                f"{prefix}.in", "sap.LOIPRO", body, pika.BasicProperties(delivery_mode=2)
            )
        _wait(lambda: _count(service, "inbox") >= 30)
        proxy.cut()
        _wait(lambda: _count(service, "inbox") >= 150)
        proxy.cut()
        _wait(lambda: _count(service, "inbox") == ORDERS and service.store.outbox_backlog() == 0)  # type: ignore[union-attr]
        ids: list[str] = []
        while True:
            method, properties, _ = channel.basic_get(f"{prefix}.to-pasx", auto_ack=True)
            if method is None:
                break
            ids.append(properties.message_id)
        connection.close()
        assert len(set(ids)) == ORDERS, f"{len(set(ids))} distinct schedules for {ORDERS} orders"
        print(f"\n{len(ids) - len(set(ids))} schedule(s) resent with the same message id")
        assert _count(service, "failed_message") == 0
    finally:
        service.stop()
        proxy.close()
        delete_service_topology(amqp_url, prefix)


@pytest.fixture
def fresh_postgres(postgres_url: str) -> Iterator[str]:
    name = f"mbout_{uuid.uuid4().hex[:8]}"
    admin_url = "postgresql://postgres@127.0.0.1:5432/postgres"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield name
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.postgres
def test_database_connections_cut_mid_stream(fresh_postgres: str, tmp_path: Path) -> None:
    proxy = TcpProxy("127.0.0.1", 5432)
    url = f"postgresql+psycopg://postgres@127.0.0.1:{proxy.port}/{fresh_postgres}"
    broker_url = f"memory://dbout-{uuid.uuid4().hex[:8]}"
    key = tmp_path / "audit.key"
    key.write_bytes(bytes(range(32)))  # else the key would be created under ./var
    settings = _settings(broker_url=broker_url, database_url=url, audit_key_file=str(key))
    broker = connect_broker(broker_url)
    assert isinstance(broker, InMemoryBroker)
    service = Service(settings, broker=broker)
    service.start()
    try:
        for body in _orders():
            broker.publish(service.topology.inbound_exchange, "sap.LOIPRO", body)
        _wait(lambda: _count(service, "inbox") >= 30)
        proxy.cut()
        _wait(lambda: _count(service, "inbox") >= 150)
        proxy.cut()
        _wait(lambda: _count(service, "inbox") == ORDERS and service.store.outbox_backlog() == 0)  # type: ignore[union-attr]
        ids = set()
        while (delivery := broker.get(f"{settings.topology_prefix}.to-pasx")) is not None:
            ids.add(delivery.message_id)
        assert len(ids) == ORDERS
        assert _count(service, "failed_message") == 0
    finally:
        service.stop()
        proxy.close()
