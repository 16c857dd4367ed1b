"""A running Service per test, on the in-process broker or a real RabbitMQ, with its own names."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from adapters.brokers import connect_broker
from integration.broker import Delivery, Envelope, PublishResult
from integration.service import Service
from integration.settings import Settings
from tests.support.rabbit import delete_service_topology


class Harness:
    """Publishes inputs as SAP would, and reads what the service delivered."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.prefix = service.settings.topology_prefix
        self._outputs = service.broker.consumer(f"{self.prefix}.to-pasx", prefetch=5000)
        self._sap_outputs = service.broker.consumer(f"{self.prefix}.to-sap", prefetch=5000)

    def publish(self, bodies: list[bytes], routing_key: str = "sap.LOIPRO") -> None:
        publisher = self.service.broker.publisher()
        envelopes = [
            Envelope(
                exchange=self.service.topology.inbound_exchange,
                routing_key=routing_key,
                body=body,
                message_id=f"test-{index}",
                content_type="application/xml",
            )
            for index, body in enumerate(bodies)
        ]
        for start in range(0, len(envelopes), 200):
            results = publisher.publish_batch(envelopes[start : start + 200])
            assert set(results) == {PublishResult.CONFIRMED}
        publisher.close()

    def count(self, table: str) -> int:
        store = self.service.store
        assert store is not None
        with store.engine.connect() as connection:
            return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())

    def wait_for(self, condition: Callable[[], bool], timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.05)
        raise AssertionError(f"condition not met within {timeout_s} s")

    def settled(self, inputs: int, parked: int = 0) -> Callable[[], bool]:
        store = self.service.store
        assert store is not None
        return lambda: (
            self.count("inbox") >= inputs
            and self.count("failed_message") >= parked
            and store.outbox_backlog() == 0
        )

    def outputs(
        self, expected: int, timeout_s: float = 30.0, *, target: str = "pasx"
    ) -> list[Delivery]:
        """What the service delivered for ``target`` (``pasx``: to-pasx, ``sap``: to-sap)."""
        consumer = self._sap_outputs if target == "sap" else self._outputs
        got: list[Delivery] = []
        deadline = time.monotonic() + timeout_s
        while len(got) < expected and time.monotonic() < deadline:
            got += consumer.fetch(expected - len(got), 0.2)
        if got:
            consumer.ack_through(got[-1].delivery_tag)
        # Anything beyond the expected count would be a double effect: look for it briefly.
        got += consumer.fetch(100, 0.3)
        return got

    def close(self) -> None:
        self._outputs.close()
        self._sap_outputs.close()


@pytest.fixture(params=["memory", pytest.param("rabbitmq", marks=pytest.mark.rabbitmq)])
def broker_url(request: pytest.FixtureRequest) -> Iterator[str]:
    if request.param == "memory":
        yield f"memory://test-{uuid.uuid4().hex[:12]}"
        return
    yield request.getfixturevalue("amqp_url")


@pytest.fixture
def make_service(broker_url: str, tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    started: list[tuple[Service, Harness]] = []
    prefix = f"t{uuid.uuid4().hex[:10]}"

    def start(**overrides: object) -> Harness:
        settings = Settings(
            broker_url=broker_url,
            database_url=f"sqlite:///{tmp_path / 'mesbridge.db'}",
            http_port=0,
            topology_prefix=prefix,
            batch_size=50,
            prefetch=100,
            shutdown_timeout_s=15,
            pipeline_workers=0,
        ).replace(**overrides)
        service = Service(settings, broker=connect_broker(broker_url))
        service.start()
        harness = Harness(service)
        started.append((service, harness))
        return harness

    yield start
    for service, harness in started:
        harness.close()
        service.stop()
    if broker_url.startswith("amqp"):
        declared = [spec.name for service, _ in started for spec in service.topology.queues]
        delete_service_topology(broker_url, prefix, queues=declared)
