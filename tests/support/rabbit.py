"""Remove the exchanges and queues a service declared under a test's own topology prefix."""

from __future__ import annotations

from collections.abc import Iterable

import pika

from integration.retry import RetryPolicy, delay_queue_name

SERVICE_QUEUES = ("process-order", "performance", "to-pasx", "to-sap", "parked")
SERVICE_EXCHANGES = ("in", "out", "dlx")
ROUTES = ("process-order", "performance")


def ready_messages(url: str, queue: str) -> int:
    """Messages on ``queue`` that RabbitMQ has not yet pushed to a consumer."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        return int(connection.channel().queue_declare(queue, passive=True).method.message_count)
    finally:
        connection.close()


def delete_service_topology(url: str, prefix: str, *, queues: Iterable[str] = ()) -> None:
    """Delete the service's queues and exchanges, the delay queues of the default retry
    delays, and ``queues`` (e.g. the delay queues of other delays; RabbitMQ ignores a
    queue that does not exist)."""
    delay_queues = [
        delay_queue_name(f"{prefix}.{route}", delay)
        for route in ROUTES
        for delay in RetryPolicy().stage_delays()
    ]
    names = [f"{prefix}.{queue}" for queue in SERVICE_QUEUES] + delay_queues + list(queues)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for queue in dict.fromkeys(names):
            channel.queue_delete(queue)
        for exchange in SERVICE_EXCHANGES:
            channel.exchange_delete(f"{prefix}.{exchange}")
    finally:
        connection.close()
