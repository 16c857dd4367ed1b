"""``RabbitBroker``: the ``Broker`` for ``amqp://`` and ``amqps://`` URLs (pika).

Connection string: ``amqp://user:password@host:5672/vhost`` with pika's query options
(see ``adapters/amqp/url.py``). Options (keyword arguments, they override the URL):
``connection_name`` (shown in the RabbitMQ management UI, default ``mesbridge``),
``heartbeat_s``, ``connect_timeout_s`` (default 10 s), ``blocked_connection_timeout_s``
(default 60 s: a connection blocked by a broker alarm longer than this is closed
and becomes a ``TransientError`` instead of hanging).

The broker object holds no connection; it is a thread-safe factory. Each
``consumer()`` and ``publisher()`` opens its own connection, to be owned by one
thread (pika connections are not thread-safe, and publishing on the consuming
connection re-enters the consumer). Reconnecting after a ``TransientError`` is making
a new consumer or publisher: about one TCP + AMQP handshake (a few ms on loopback).

Failure modes: unreachable broker, lost connection → ``TransientError``; wrong
user/password/vhost, missing permission, a topology that conflicts with what the
broker already has → ``ConfigurationError``. Passwords never appear in messages or
reprs.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import pika

from contracts.errors import MesbridgeError, TransientError
from integration.broker import Topology

from .consumer import AmqpConsumer
from .errors import TRANSIENT_ERRORS, translate
from .publisher import AmqpPublisher
from .topology import TopologyReport, declare_topology
from .url import connection_parameters, mask_url

__all__ = ["RabbitBroker"]

_DEFAULT_CONNECT_TIMEOUT_S = 10.0
_DEFAULT_BLOCKED_TIMEOUT_S = 60.0


class RabbitBroker:
    """A RabbitMQ broker; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        connection_name: str = "mesbridge",
        heartbeat_s: int | None = None,
        connect_timeout_s: float | None = _DEFAULT_CONNECT_TIMEOUT_S,
        blocked_connection_timeout_s: float | None = _DEFAULT_BLOCKED_TIMEOUT_S,
    ) -> None:
        self._url = url
        self._where = mask_url(url)
        self._connection_name = connection_name
        self._options: dict[str, Any] = {
            "heartbeat_s": heartbeat_s,
            "connect_timeout_s": connect_timeout_s,
            "blocked_connection_timeout_s": blocked_connection_timeout_s,
        }
        self._closed = threading.Event()
        self._open_timeout_s = (connect_timeout_s or _DEFAULT_CONNECT_TIMEOUT_S) * 2
        self._parameters("check")  # a URL pika cannot use fails here, at start-up

    def __repr__(self) -> str:
        return f"<RabbitBroker {self._where}>"

    @property
    def url(self) -> str:
        """The broker URL with the password masked."""
        return self._where

    def declare(self, topology: Topology) -> None:
        self.declare_topology(topology)

    def declare_topology(self, topology: Topology) -> TopologyReport:
        """Declare ``topology`` (idempotent) and say which queues are quorum or classic."""
        connection = self._connect("declare", action="declaring the topology")
        try:
            return declare_topology(connection.channel, topology)
        except MesbridgeError:
            raise
        except Exception as exc:
            raise self._translated(exc, "declaring the topology") from exc
        finally:
            _close_quietly(connection)

    def consumer(self, queue: str, *, prefetch: int) -> AmqpConsumer:
        self._raise_if_closed()
        return AmqpConsumer(
            self._parameters(f"consumer {queue}"), queue, prefetch=prefetch, where=self._where
        )

    def publisher(self) -> AmqpPublisher:
        self._raise_if_closed()
        return AmqpPublisher(
            self._parameters("publisher"), where=self._where, open_timeout_s=self._open_timeout_s
        )

    def ping(self) -> None:
        """Open and close a connection; ``TransientError`` when the broker cannot be reached."""
        _close_quietly(self._connect("ping", action="checking the connection"))

    def queue_depth(self, queue: str) -> int:
        """Messages ready in ``queue`` (not counting unacknowledged ones), by a passive declare."""
        connection = self._connect("queue depth", action=f"reading the depth of queue {queue!r}")
        try:
            declared = connection.channel().queue_declare(queue, passive=True)
            return int(declared.method.message_count)
        except Exception as exc:
            raise self._translated(exc, f"reading the depth of queue {queue!r}") from exc
        finally:
            _close_quietly(connection)

    def close(self) -> None:
        """No new connections from this broker; its consumers and publishers are closed by
        their owning threads (a pika connection may only be closed by its own thread)."""
        self._closed.set()

    # -- internals -----------------------------------------------------------------

    def _parameters(self, role: str) -> pika.URLParameters:
        return connection_parameters(
            self._url, connection_name=f"{self._connection_name} {role}", **self._options
        )

    def _connect(self, role: str, *, action: str) -> Any:
        self._raise_if_closed()
        try:
            return pika.BlockingConnection(self._parameters(role))
        except Exception as exc:
            raise self._translated(exc, action) from exc

    def _translated(self, exc: Exception, action: str) -> Exception:
        error = translate(exc, action=action, where=self._where)
        return exc if error is None else error

    def _raise_if_closed(self) -> None:
        if self._closed.is_set():
            raise TransientError(f"the broker connection factory for {self._where} is closed")


def _close_quietly(connection: Any) -> None:
    # Nothing to save on a connection that is already failing.
    if connection.is_open:
        with contextlib.suppress(*TRANSIENT_ERRORS):
            connection.close()
