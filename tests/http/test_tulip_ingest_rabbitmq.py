"""The Tulip ingest against RabbitMQ: concurrent posts while the broker goes away for a second.

8 client threads post 400 distinct completion events over real HTTP (uvicorn on loopback)
to an endpoint whose RabbitMQ connection runs through a TCP proxy. Mid-stream the proxy cuts
every connection and refuses new ones for about one second. Clients retry on 503 after
Retry-After, as Tulip would. Afterwards every event is on a queue bound to ``<prefix>.in``
with ``tulip.#``: each id that was answered 202 is there (nothing acknowledged was lost),
and every event was eventually accepted. A repeat (a 503 whose publish did get through, then
a retry) carries the same message id, so distinct ids are counted.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import httpx
import pika
import pytest
from prometheus_client import CollectorRegistry

from adapters.amqp import RabbitBroker
from contracts.registry import ContractRegistry
from integration.broker import QueueSpec, Topology
from integration.http import HttpServer, create_app
from integration.http.ingest import TULIP_EVENTS_PATH, BrokerEventPublisher, tulip_ingest_route
from integration.mapping_files import load_mapping_profile
from tests.brokers.tcp_proxy import TcpProxy
from tests.http.test_tulip_ingest import TOKEN, encoded, event

pytestmark = pytest.mark.rabbitmq

THREADS = 8
EVENTS = 400
OUTAGE_AFTER = 100  # accepted events before the broker goes away
OUTAGE_S = 1.0
DEADLINE_S = 120.0


def _via(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@127.0.0.1:{port}" if userinfo else f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


@pytest.fixture
def prefix(amqp_url: str) -> Iterator[str]:
    name = f"ing{uuid.uuid4().hex[:10]}"
    yield name
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    try:
        channel = connection.channel()
        for queue in ("tulip-events", "parked"):
            channel.queue_delete(f"{name}.{queue}")
        for exchange in ("in", "out", "dlx"):
            channel.exchange_delete(f"{name}.{exchange}")
    finally:
        connection.close()


def _drain(amqp_url: str, queue: str) -> list[tuple[str, bytes]]:
    connection = pika.BlockingConnection(pika.URLParameters(amqp_url))
    got: list[tuple[str, bytes]] = []
    try:
        channel = connection.channel()
        while True:
            method, properties, body = channel.basic_get(queue, auto_ack=True)
            if method is None:
                return got
            got.append((properties.message_id, body))
    finally:
        connection.close()


def test_nothing_accepted_is_lost_while_the_broker_is_away(amqp_url: str, prefix: str) -> None:
    queue = f"{prefix}.tulip-events"
    RabbitBroker(amqp_url).declare(
        Topology(
            inbound_exchange=f"{prefix}.in",
            outbound_exchange=f"{prefix}.out",
            dead_letter_exchange=f"{prefix}.dlx",
            parked_queue=f"{prefix}.parked",
            queues=(QueueSpec(name=queue, exchange=f"{prefix}.in", bindings=("tulip.#",)),),
        )
    )
    proxy = TcpProxy("127.0.0.1", urlsplit(amqp_url).port or 5672)
    publisher = BrokerEventPublisher(RabbitBroker(_via(amqp_url, proxy.port), connect_timeout_s=2))
    route = tulip_ingest_route(
        publisher=publisher,
        token=TOKEN,
        registry=ContractRegistry.load(),
        exchange=f"{prefix}.in",
        profile=load_mapping_profile(),
        retry_after_s=1,
        publish_timeout_s=3.0,
    )
    server = HttpServer(
        create_app(metrics_registry=CollectorRegistry(), checks=[], extra_routes=[route]), port=0
    )
    server.start()

    bodies = {f"EV-{n:04d}": encoded(event(f"EV-{n:04d}")) for n in range(EVENTS)}
    ids = sorted(bodies)
    accepted: list[str] = []
    statuses: list[int] = []
    unexpected: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + DEADLINE_S

    def client(share: list[str]) -> None:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}", timeout=15.0, trust_env=False
        ) as http:
            for event_id in share:
                while time.monotonic() < deadline:
                    try:
                        response = http.post(
                            TULIP_EVENTS_PATH,
                            content=bodies[event_id],
                            headers={
                                "Authorization": f"Bearer {TOKEN}",
                                "Content-Type": "application/json",
                            },
                        )
                    except httpx.TransportError:
                        time.sleep(0.2)  # no answer: Tulip sends the event again
                        continue
                    with lock:
                        statuses.append(response.status_code)
                    if response.status_code == 202:
                        with lock:
                            accepted.append(event_id)
                        break
                    if response.status_code != 503:
                        with lock:
                            unexpected.append(f"{event_id}: {response.status_code} {response.text}")
                        break
                    time.sleep(float(response.headers["retry-after"]))

    threads = [
        threading.Thread(target=client, args=(ids[index::THREADS],), name=f"tulip-{index}")
        for index in range(THREADS)
    ]
    try:
        for thread in threads:
            thread.start()
        while len(accepted) < OUTAGE_AFTER and time.monotonic() < deadline:
            time.sleep(0.01)
        proxy.down()
        time.sleep(OUTAGE_S)
        proxy.up()
        for thread in threads:
            thread.join(DEADLINE_S)
    finally:
        server.stop()
        publisher.close()
        proxy.close()

    delivered = _drain(amqp_url, queue)
    delivered_ids = {message_id for message_id, _ in delivered}
    assert unexpected == []
    assert statuses.count(503) > 0, "the outage was not seen by any request"
    assert len(accepted) == len(set(accepted)) == EVENTS, "every event is eventually accepted"
    assert set(accepted) <= delivered_ids, f"lost: {sorted(set(accepted) - delivered_ids)[:10]}"
    assert delivered_ids == set(ids)
    assert all(body == bodies[message_id] for message_id, body in delivered)
    assert all(json.loads(body)["event_id"] == message_id for message_id, body in delivered)
    print(
        f"\n{EVENTS} events: {statuses.count(202)} accepted, {statuses.count(503)} answered 503 "
        f"during the outage, {len(delivered) - len(delivered_ids)} delivered twice (same id)"
    )
