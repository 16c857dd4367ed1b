"""Throughput of the broker adapters (not a test; run by hand and read the figures).

    .venv/bin/python -m tests.brokers.bench [amqp://guest:guest@127.0.0.1:5672/ | memory://]

Measures, with 7 KB persistent messages on uuid-named quorum queues (deleted after):
publish_batch of 100 (confirms awaited per batch); fetch(100) → ack_through;
a pass-through (fetch 100 → publish_batch 100 to another queue → ack_through), the
shape of the service's loop without the work; and, for reference on RabbitMQ, pika
with a confirm wait per message.
"""

from __future__ import annotations

import sys
import time
import uuid

import pika

from adapters.brokers import connect_broker
from integration.broker import Envelope, PublishResult, QueueSpec, Topology

BODY = b"<IDOC>" + b"x" * (7 * 1024 - 13) + b"</IDOC>"
BATCH, BATCHES = 100, 30


def main(url: str) -> None:
    broker = connect_broker(url)
    prefix = f"bench-{uuid.uuid4().hex[:8]}"
    topology = Topology(
        inbound_exchange=f"{prefix}.in",
        outbound_exchange=f"{prefix}.out",
        dead_letter_exchange=f"{prefix}.dlx",
        parked_queue=f"{prefix}.parked",
        queues=(
            QueueSpec(name=f"{prefix}.work", exchange=f"{prefix}.in", bindings=("sap.#",)),
            QueueSpec(name=f"{prefix}.sink", exchange=f"{prefix}.out", bindings=("#",)),
        ),
    )
    broker.declare(topology)
    try:
        total = BATCH * BATCHES
        publisher = broker.publisher()
        envelopes = [
            Envelope(
                exchange=topology.inbound_exchange,
                routing_key="sap.LOIPRO",
                body=BODY,
                message_id=f"m{n}",
            )
            for n in range(BATCH)
        ]
        started = time.perf_counter()
        for _ in range(BATCHES):
            assert publisher.publish_batch(envelopes) == [PublishResult.CONFIRMED] * BATCH
        report("publish_batch(100 x 7 KB)", total, started)

        consumer = broker.consumer(f"{prefix}.work", prefetch=2 * BATCH)
        started, moved = time.perf_counter(), 0
        half = total // 2
        while moved < half:
            got = consumer.fetch(BATCH, 1.0)
            consumer.ack_through(got[-1].delivery_tag)
            moved += len(got)
        report("fetch(100) -> ack_through", moved, started)

        started, passed = time.perf_counter(), 0
        while passed < total - moved:
            got = consumer.fetch(BATCH, 1.0)
            out = [
                Envelope(
                    exchange=topology.outbound_exchange,
                    routing_key="pasx.x",
                    body=d.body,
                    message_id=f"o{d.message_id}",
                )
                for d in got
            ]
            assert publisher.publish_batch(out) == [PublishResult.CONFIRMED] * len(out)
            consumer.ack_through(got[-1].delivery_tag)
            passed += len(got)
        report("pass-through fetch -> publish_batch -> ack", passed, started)
        consumer.close()
        publisher.close()
        if url.startswith("amqp"):
            per_message_confirms(url, f"{prefix}.sink")
    finally:
        if url.startswith("amqp"):
            with pika.BlockingConnection(pika.URLParameters(url)) as connection:
                channel = connection.channel()
                for queue in (f"{prefix}.work", f"{prefix}.sink", f"{prefix}.parked"):
                    channel.queue_delete(queue)
                for exchange in ("in", "out", "dlx"):
                    channel.exchange_delete(f"{prefix}.{exchange}")


def per_message_confirms(url: str, queue: str, count: int = 1000) -> None:
    with pika.BlockingConnection(pika.URLParameters(url)) as connection:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = pika.BasicProperties(delivery_mode=2)
        started = time.perf_counter()
        for _ in range(count):
            channel.basic_publish("", queue, BODY, properties, mandatory=True)
        report("reference: pika, one confirm wait per message", count, started)


def report(what: str, count: int, started: float) -> None:
    elapsed = time.perf_counter() - started
    print(f"{what:<45} {count:>6} msgs {elapsed:7.3f} s {count / elapsed:>9,.0f} msg/s")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1:5672/")
