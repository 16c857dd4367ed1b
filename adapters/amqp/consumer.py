"""A RabbitMQ consumer for micro-batches: one pika BlockingConnection, owned by one thread.

``fetch(B, T)`` drains deliveries the broker has already pushed (``basic_consume`` with
``prefetch`` unacknowledged deliveries in flight) and returns as soon as it has B, or
has some and nothing more is immediately readable, or T has passed with none.
``ack_through(tag)`` is one ``basic.ack`` with ``multiple=True``; ``reject`` is one
``basic.reject``. Deliveries are turned into ``Delivery`` objects as they arrive.

Use: one consumer per thread (pika connections are not thread-safe), publishing on
another connection (``AmqpPublisher``), never from inside this one. Choose
``prefetch`` ≥ the batch size (2× keeps the next batch on the wire while this one is
processed). Call ``fetch`` at least every heartbeat interval; heartbeats are only
answered inside pika calls.

Failure modes: a lost connection, a closed channel, or the broker cancelling the
consumer (queue deleted, node failure) raises ``TransientError``; the consumer is
then dead, its unacknowledged deliveries are redelivered by the broker, and the
caller makes a new one. A missing queue raises ``TransientError`` when the consumer
is made. Acknowledging or rejecting a tag this consumer did not hand out (or has
already settled) raises ``ValueError`` before anything reaches the broker, because
RabbitMQ would close the channel for it and redeliver everything in flight.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pika

from contracts.errors import MesbridgeError, TransientError
from integration.broker import Delivery

from .errors import TRANSIENT_ERRORS, translate
from .fields import delivery_from_pika
from .settle import Outstanding

__all__ = ["AmqpConsumer"]

log = logging.getLogger(__name__)

_MAX_PREFETCH = 65535  # basic.qos prefetch-count is an AMQP short


class AmqpConsumer:
    """Consumes one queue; see the module docstring."""

    def __init__(
        self, parameters: pika.URLParameters, queue: str, *, prefetch: int, where: str
    ) -> None:
        if not 0 <= prefetch <= _MAX_PREFETCH:
            raise ValueError(f"prefetch must be 0 (unlimited) to {_MAX_PREFETCH}, not {prefetch}")
        self._queue = queue
        self._where = where
        self._buffer: deque[Delivery] = deque()
        self._outstanding = Outstanding(queue)
        self._cancelled = False
        self._dead: MesbridgeError | None = None
        self._connection: Any = None
        try:
            self._connection = pika.BlockingConnection(parameters)
            channel = self._connection.channel()
            channel.basic_qos(prefetch_count=prefetch)
            channel.add_on_cancel_callback(self._on_cancelled)
            channel.basic_consume(queue, self._on_message, auto_ack=False)
        except Exception as exc:
            error = translate(exc, action=f"consuming from queue {queue!r}", where=where)
            self._close_quietly()
            if error is None:
                raise
            raise error from exc
        self._channel = channel

    def __repr__(self) -> str:
        state = "dead" if self._dead else "open"
        return f"<AmqpConsumer queue={self._queue!r} {self._where} {state}>"

    def fetch(self, max_messages: int, timeout_s: float) -> list[Delivery]:
        if max_messages < 1:
            raise ValueError(f"max_messages must be at least 1, not {max_messages}")
        self._raise_if_dead()
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._driver_errors("fetching deliveries"):
            while len(self._buffer) < max_messages and not self._cancelled:
                had = len(self._buffer)
                self._connection.process_data_events(time_limit=0)
                if len(self._buffer) > had:
                    continue  # more may be right behind what was just read
                if self._buffer:
                    break  # has some, nothing more immediately available
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._connection.process_data_events(time_limit=remaining)
        if self._cancelled and not self._buffer:
            self._die(
                TransientError(
                    f"RabbitMQ at {self._where} cancelled the consumer of queue "
                    f"{self._queue!r} (queue deleted or its node failed); make a new consumer"
                )
            )
        count = min(max_messages, len(self._buffer))
        batch = [self._buffer.popleft() for _ in range(count)]
        self._outstanding.handed_out(delivery.delivery_tag for delivery in batch)
        return batch

    def ack_through(self, delivery_tag: int) -> None:
        self._raise_if_dead()
        self._outstanding.settle_through(delivery_tag)
        with self._driver_errors(f"acknowledging deliveries through tag {delivery_tag}"):
            self._channel.basic_ack(delivery_tag=delivery_tag, multiple=True)

    def reject(self, delivery_tag: int, *, requeue: bool) -> None:
        self._raise_if_dead()
        self._outstanding.settle_one(delivery_tag)
        with self._driver_errors(f"rejecting delivery tag {delivery_tag}"):
            self._channel.basic_reject(delivery_tag=delivery_tag, requeue=requeue)

    def close(self) -> None:
        """Close the connection; the broker requeues whatever was not acknowledged."""
        if self._dead is None:
            self._dead = TransientError(f"the consumer of queue {self._queue!r} is closed")
        self._close_quietly()

    # -- internals ---------------------------------------------------------------

    def _on_message(
        self,
        _channel: Any,
        method: pika.spec.Basic.Deliver,
        properties: pika.BasicProperties,
        body: bytes,
    ) -> None:
        self._buffer.append(delivery_from_pika(method, properties, body))

    def _on_cancelled(self, _frame: Any) -> None:
        self._cancelled = True

    def _raise_if_dead(self) -> None:
        if self._dead is not None:
            raise self._dead

    def _die(self, error: MesbridgeError) -> None:
        self._dead = error
        self._close_quietly()
        raise error

    @contextmanager
    def _driver_errors(self, action: str) -> Iterator[None]:
        """A driver error kills the consumer and becomes a mesbridge error."""
        try:
            yield
        except Exception as exc:
            error = translate(exc, action=f"{action} on queue {self._queue!r}", where=self._where)
            if error is None:
                raise
            self._dead = error
            self._close_quietly()
            raise error from exc

    def _close_quietly(self) -> None:
        connection, self._connection = self._connection, None
        if connection is None or not connection.is_open:
            return
        try:
            connection.close()
        except TRANSIENT_ERRORS as exc:  # closing a broken connection has nothing left to save
            log.debug("closing the consumer connection of %r failed: %s", self._queue, exc)
