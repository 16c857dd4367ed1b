"""Remove the exchanges and queues a service declared under a test's own topology prefix."""

from __future__ import annotations

import pika

SERVICE_QUEUES = ("process-order", "to-pasx", "to-sap", "parked")
SERVICE_EXCHANGES = ("in", "out", "dlx")


def delete_service_topology(url: str, prefix: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for queue in SERVICE_QUEUES:
            channel.queue_delete(f"{prefix}.{queue}")
        for exchange in SERVICE_EXCHANGES:
            channel.exchange_delete(f"{prefix}.{exchange}")
    finally:
        connection.close()
