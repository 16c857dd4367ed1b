"""Message properties in AMQP 0-9-1 terms: header checks, Envelope → pika, pika → Delivery.

Header values are limited to what survives an AMQP field table unchanged on every
broker and client: ``str``, ``int`` (signed 64-bit), ``bool``, ``None``, a UTC
``datetime`` with whole seconds (an AMQP timestamp, as in RabbitMQ's ``x-death``, so
a parked message's headers can be published again), and lists and string-keyed maps
of these. Decimals, floats, bytes and other times are refused, because the wire
format changes them (pika normalises a ``Decimal`` and keeps 32 bits of it, a time
loses its sub-seconds and zone, bytes come back as text): put them in as text (a
decimal string, ISO 8601). Both brokers apply the same rule, so a test on the
in-process broker means the same thing on RabbitMQ.

Failure modes: a header that breaks the rule raises ``TypeError`` naming the message
id and the header path; a name, id or content type longer than 255 bytes (an AMQP
short string) raises ``ValueError``. Both are programming errors in the caller,
found before anything of the batch is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pika

from integration.broker import Delivery, Envelope

__all__ = [
    "PERSISTENT",
    "check_envelope",
    "check_headers",
    "delivery_from_pika",
    "envelope_properties",
    "plain_headers",
]

PERSISTENT = 2  # AMQP delivery-mode: written to disk before the broker confirms
_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1
_MAX_SHORT_STRING = 255  # bytes in an AMQP short string (names, ids, header keys)


def check_envelope(envelope: Envelope) -> None:
    """Refuse, before anything is sent, an envelope the broker would refuse or change.

    ``ValueError`` for an exchange, routing key, message id or content type longer than
    an AMQP short string (255 bytes) and for a negative ``expiration_ms``; ``TypeError``
    for a header value (see above).
    """
    for name in ("exchange", "routing_key", "message_id", "content_type"):
        value: str = getattr(envelope, name)
        if len(value.encode("utf-8")) > _MAX_SHORT_STRING:
            raise ValueError(
                f"message {envelope.message_id[:40]!r}: {name} is "
                f"{len(value.encode('utf-8'))} bytes; AMQP allows at most {_MAX_SHORT_STRING}"
            )
    check_headers(envelope.headers, message_id=envelope.message_id)
    expiration = envelope.expiration_ms
    if expiration is not None and (
        isinstance(expiration, bool) or not isinstance(expiration, int) or expiration < 0
    ):
        raise ValueError(
            f"message {envelope.message_id[:40]!r}: expiration_ms is {expiration!r}; "
            "expected a whole number of milliseconds >= 0"
        )


def check_headers(headers: Mapping[str, Any], *, message_id: str) -> None:
    """Raise ``TypeError`` when a header value would not survive the broker unchanged."""
    _check_table(headers, path="headers", message_id=message_id)


def plain_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy made of plain dicts and lists (what pika encodes and what comes back)."""
    return {key: _plain(value) for key, value in headers.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return plain_headers(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def _check_table(table: Mapping[Any, Any], *, path: str, message_id: str) -> None:
    for key, value in table.items():
        if not isinstance(key, str) or len(key.encode("utf-8")) > _MAX_SHORT_STRING:
            raise TypeError(
                f"message {message_id!r}: header key {key!r} at {path}: expected a string "
                f"of at most {_MAX_SHORT_STRING} bytes"
            )
        _check_value(value, path=f"{path}[{key!r}]", message_id=message_id)


def _check_value(value: Any, *, path: str, message_id: str) -> None:
    if value is None or isinstance(value, str | bool):
        return
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise TypeError(
                f"message {message_id!r}: header {path} = {value}: integers in headers "
                "must fit in 64 bits; send larger numbers as text"
            )
        return
    if isinstance(value, datetime):
        if value.utcoffset() != timedelta(0) or value.microsecond:
            raise TypeError(
                f"message {message_id!r}: header {path} = {value.isoformat()}: an AMQP "
                "timestamp holds whole seconds in UTC; send other times as ISO 8601 text"
            )
        return
    if isinstance(value, Mapping):
        _check_table(value, path=path, message_id=message_id)
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_value(item, path=f"{path}[{index}]", message_id=message_id)
        return
    raise TypeError(
        f"message {message_id!r}: header {path} is a {type(value).__name__}; header values "
        "must be str, int, bool, None, a UTC datetime, or lists/maps of these (send decimals "
        "as text)"
    )


def envelope_properties(envelope: Envelope, *, timestamp: int) -> pika.BasicProperties:
    """Persistent properties carrying the envelope's id, content type, headers, expiration."""
    return pika.BasicProperties(
        content_type=envelope.content_type,
        message_id=envelope.message_id,
        delivery_mode=PERSISTENT,
        timestamp=timestamp,
        headers=plain_headers(envelope.headers) if envelope.headers else None,
        # AMQP carries the per-message TTL as a decimal string of milliseconds.
        expiration=None if envelope.expiration_ms is None else str(envelope.expiration_ms),
    )


def delivery_from_pika(
    method: pika.spec.Basic.Deliver, properties: pika.BasicProperties, body: bytes
) -> Delivery:
    return Delivery(
        body=body,
        exchange=method.exchange,
        routing_key=method.routing_key,
        delivery_tag=method.delivery_tag,
        redelivered=bool(method.redelivered),
        message_id=properties.message_id,
        content_type=properties.content_type,
        headers=dict(properties.headers or {}),
        timestamp=properties.timestamp,
    )
