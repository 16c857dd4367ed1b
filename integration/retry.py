"""Retry through RabbitMQ delay queues: the policy, the delay queues and the retry headers.

A ``RetryLater`` (``contracts/errors.py``) says "this message cannot take effect
yet" (an order SAP has not sent, SAP says the order is locked); the messages
behind it must go on. The consumer loop (``integration/consumer.py``) publishes
a copy of the message to the route's delay queue for the attempt that just
failed, and acknowledges the original with its batch only after the broker has
confirmed the copy. A delay queue has no consumer: a message waits there for its
TTL and is then dead-lettered through the default exchange straight back to the
route's own queue. Not through ``<prefix>.dlx`` (that is the parking lot's
exchange) and not through ``<prefix>.in`` (its other queues would get a copy).

Attempts and stages: attempt n (1 = the first delivery) that ends in
``RetryLater`` is followed by ``delays[n-1]`` of waiting (the last delay again
when there are more attempts than delays). The message is parked instead when
n ≥ ``max_attempts`` or its age (now − first seen) is over ``max_age``:
``max_attempts`` counts every attempt, the first included, so with the default
6 a poison message is tried 6 times (the first try and 5 retries, one per
default delay) and parked after the 6th, with ``attempts = 6``.

Delay queues are named by their delay, ``<route queue>.retry.<delay>`` (e.g.
``mesbridge.performance.retry.30s``): new delays declare new queues instead of
clashing with the ``x-message-ttl`` of existing ones (RabbitMQ refuses to declare
a queue again with another TTL). A queue left over from old delays drains itself
within its TTL and may then be deleted.

Jitter: each copy expires after its stage delay × a factor drawn uniformly from
[1 − ``JITTER``, 1 + ``JITTER``] (per-message ``expiration``), so messages that
failed together do not all come back together; the queue's own TTL, delay ×
(1 + ``JITTER``), is only a ceiling. RabbitMQ expires messages only at the head
of a queue, so a copy may wait behind one that expires later; with one queue per
delay that costs at most 2 × ``JITTER`` × the delay.

Headers of a copy: the original's (a value AMQP would change, such as a float,
as text), without the broker's bookkeeping (``x-death``, ``x-first-death-*``,
``x-last-death-*``, ``x-delivery-count``), plus
``x-mesbridge-attempts`` (attempts made so far), ``x-mesbridge-first-seen`` (ISO
8601 UTC of the first attempt, kept), ``x-mesbridge-last-error`` (first line of
the last error, at most 200 characters) and ``x-mesbridge-exchange`` /
``x-mesbridge-routing-key`` (where it was first published: dead-lettering
through the default exchange replaces both; :func:`returned` puts them back).

Failure modes: a duration or policy that cannot be used raises
``ConfigurationError`` naming the setting, the value and what is expected.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from contracts.errors import ConfigurationError, MesbridgeError
from integration.broker import Delivery, Envelope, QueueSpec

__all__ = [
    "ATTEMPTS_HEADER",
    "EXCHANGE_HEADER",
    "FIRST_SEEN_HEADER",
    "JITTER",
    "LAST_ERROR_HEADER",
    "ROUTING_KEY_HEADER",
    "RetryPolicy",
    "RetryState",
    "delay_queue_name",
    "delay_queues",
    "describe_age",
    "format_duration",
    "last_error",
    "parse_delays",
    "parse_duration",
    "retry_envelope",
    "retry_headers",
    "returned",
]

ATTEMPTS_HEADER = "x-mesbridge-attempts"
FIRST_SEEN_HEADER = "x-mesbridge-first-seen"
LAST_ERROR_HEADER = "x-mesbridge-last-error"
EXCHANGE_HEADER = "x-mesbridge-exchange"
ROUTING_KEY_HEADER = "x-mesbridge-routing-key"
JITTER = 0.1
_MAX_ERROR_CHARS = 200
_MAX_TTL_MS = 2**32 - 1  # x-message-ttl and expiration are unsigned 32-bit milliseconds
# The broker's bookkeeping of an earlier delivery; a fresh copy starts without it.
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-", "x-delivery-count")

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(r"(?P<number>\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)")


def parse_duration(text: str, *, what: str) -> int:
    """``"5s"``, ``"0.2s"``, ``"200ms"``, ``"2m"``, ``"24h"``, ``"1d"`` → whole milliseconds."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ConfigurationError(
            f"setting {what}: {text!r} is not a duration; expected a number and a unit "
            "(ms, s, m, h, d), e.g. '5s', '0.5s', '2m', '24h'"
        )
    try:
        exact = Decimal(match["number"]) * _UNITS_MS[match["unit"]]
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only decimals
        raise ConfigurationError(f"setting {what}: {text!r} is not a number") from exc
    if exact != exact.to_integral_value():
        raise ConfigurationError(
            f"setting {what}: {text!r} is finer than a millisecond; brokers count whole ms"
        )
    milliseconds = int(exact)
    if not 0 < milliseconds <= _MAX_TTL_MS:
        raise ConfigurationError(
            f"setting {what}: {text!r} is out of range; expected more than 0 and at most "
            f"{_MAX_TTL_MS} ms (49 days), the broker's limit for a message TTL"
        )
    return milliseconds


def parse_delays(text: str, *, what: str) -> tuple[int, ...]:
    """A comma-separated list of durations, e.g. ``"5s,30s,2m,10m,30m"``."""
    parts = [part for part in text.split(",") if part.strip()]
    if not parts:
        raise ConfigurationError(
            f"setting {what}: no delays given; expected durations separated by commas, "
            "e.g. '5s,30s,2m,10m,30m'"
        )
    return tuple(parse_duration(part, what=what) for part in parts)


def format_duration(milliseconds: int) -> str:
    """The shortest exact form in one unit: 5000 → ``5s``, 200 → ``200ms``, 7200000 → ``2h``."""
    for unit in ("d", "h", "m", "s"):
        if milliseconds % _UNITS_MS[unit] == 0:
            return f"{milliseconds // _UNITS_MS[unit]}{unit}"
    return f"{milliseconds}ms"


def describe_age(milliseconds: int) -> str:
    """A span for people: ``0.8 s``, ``4 min 10 s``, ``26 h 5 min``."""
    seconds = milliseconds / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, second = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {second} s"
    hours, minute = divmod(minutes, 60)
    return f"{hours} h {minute} min"


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How one route retries a ``RetryLater``: delays between attempts, and when to park."""

    delays_ms: tuple[int, ...] = (5_000, 30_000, 120_000, 600_000, 1_800_000)
    max_attempts: int = 6
    max_age_ms: int = 86_400_000

    def __post_init__(self) -> None:
        if not self.delays_ms or any(not 0 < d <= _MAX_TTL_MS for d in self.delays_ms):
            raise ConfigurationError(
                f"retry delays {list(self.delays_ms)} ms: expected at least one, each more "
                f"than 0 and at most {_MAX_TTL_MS} ms"
            )
        if self.max_attempts < 1:
            raise ConfigurationError(
                f"retry max attempts is {self.max_attempts}; expected at least 1 "
                "(1: park at the first RetryLater, no retry)"
            )
        if self.max_age_ms < 1:
            raise ConfigurationError(f"retry max age is {self.max_age_ms} ms; expected > 0")

    @classmethod
    def from_settings(
        cls, *, delays: str, max_attempts: Any, max_age: str, what: str
    ) -> RetryPolicy:
        """From setting values; ``what`` names them in errors (``retry`` or ``routes.<name>``)."""
        if isinstance(max_attempts, bool) or not isinstance(max_attempts, int):
            raise ConfigurationError(
                f"setting {what}_max_attempts: {max_attempts!r} is not a whole number"
            )
        try:
            return cls(
                delays_ms=parse_delays(delays, what=f"{what}_delays"),
                max_attempts=max_attempts,
                max_age_ms=parse_duration(max_age, what=f"{what}_max_age"),
            )
        except ConfigurationError as exc:
            if exc.summary.startswith("setting "):
                raise
            raise ConfigurationError(f"settings {what}_*: {exc.summary}") from exc

    def delay_after(self, attempt: int) -> int:
        """Milliseconds to wait after failed attempt ``attempt`` (1-based)."""
        return self.delays_ms[min(max(attempt, 1), len(self.delays_ms)) - 1]

    def stage_delays(self) -> tuple[int, ...]:
        """The distinct delays a message can go through (one delay queue each), in order."""
        used = [self.delay_after(attempt) for attempt in range(1, self.max_attempts)]
        return tuple(dict.fromkeys(used))

    def gives_up(self, attempt: int, age_ms: int) -> bool:
        """True when failed attempt ``attempt`` is the last: park instead of retrying."""
        return attempt >= self.max_attempts or age_ms > self.max_age_ms

    def expiration_ms(self, attempt: int, rng: random.Random) -> int:
        """The jittered per-message TTL after failed attempt ``attempt`` (at least 1 ms)."""
        delay = self.delay_after(attempt)
        return max(1, round(delay * rng.uniform(1 - JITTER, 1 + JITTER)))


def delay_queue_name(route_queue: str, delay_ms: int) -> str:
    return f"{route_queue}.retry.{format_duration(delay_ms)}"


def delay_queues(route_queue: str, policy: RetryPolicy) -> tuple[QueueSpec, ...]:
    """The route's delay queues: no bindings (published to by name), TTL, back to the route."""
    return tuple(
        QueueSpec(
            name=delay_queue_name(route_queue, delay),
            exchange="",
            bindings=(),
            dead_letter_exchange="",  # the default exchange: routing key = the route's queue
            dead_letter_routing_key=route_queue,
            message_ttl_ms=min(_MAX_TTL_MS, round(delay * (1 + JITTER))),
        )
        for delay in policy.stage_delays()
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryState:
    """What a delivery's headers say about its earlier attempts."""

    attempts: int  # attempts made before this delivery (0: a first delivery)
    first_seen: datetime | None  # when the first attempt was made, if it was a retry

    @classmethod
    def of(cls, delivery: Delivery) -> RetryState:
        return cls(
            attempts=_attempts(delivery.headers.get(ATTEMPTS_HEADER)),
            first_seen=_instant(delivery.headers.get(FIRST_SEEN_HEADER)),
        )


def returned(delivery: Delivery, route_queue: str) -> Delivery:
    """A delivery that came back from a delay queue, with its original exchange and key.

    Only a delivery through the default exchange to the route's own queue (how the
    delay queues dead-letter) is changed; anything published normally is left alone.
    """
    if delivery.exchange or delivery.routing_key != route_queue:
        return delivery
    exchange = delivery.headers.get(EXCHANGE_HEADER)
    routing_key = delivery.headers.get(ROUTING_KEY_HEADER)
    if not isinstance(exchange, str) or not isinstance(routing_key, str):
        return delivery
    return replace(delivery, exchange=exchange, routing_key=routing_key)


def last_error(error: MesbridgeError) -> str:
    """The first line of the error, at most 200 characters (for a header and the park text)."""
    lines = str(error).splitlines()
    first = lines[0] if lines else type(error).__name__
    return first if len(first) <= _MAX_ERROR_CHARS else first[: _MAX_ERROR_CHARS - 1] + "…"


def retry_headers(
    delivery: Delivery, *, attempts: int, first_seen: datetime, error: MesbridgeError
) -> dict[str, Any]:
    """The headers of the copy after ``attempts`` attempts (see the module docstring)."""
    headers = {
        key: _portable(value)
        for key, value in delivery.headers.items()
        if not key.startswith(_BROKER_HEADERS)
    }
    headers.setdefault(EXCHANGE_HEADER, delivery.exchange)
    headers.setdefault(ROUTING_KEY_HEADER, delivery.routing_key)
    headers[ATTEMPTS_HEADER] = attempts
    headers[FIRST_SEEN_HEADER] = first_seen.astimezone(UTC).isoformat()
    headers[LAST_ERROR_HEADER] = last_error(error)
    return headers


def retry_envelope(
    delivery: Delivery,
    *,
    route_queue: str,
    policy: RetryPolicy,
    attempts: int,
    first_seen: datetime,
    error: MesbridgeError,
    rng: random.Random,
) -> Envelope:
    """The copy of ``delivery`` for the delay queue after failed attempt ``attempts``."""
    return Envelope(
        exchange="",
        routing_key=delay_queue_name(route_queue, policy.delay_after(attempts)),
        body=delivery.body,
        # The same id: downstream and the failed-message store see one message, not N.
        message_id=delivery.message_id or f"retry:{route_queue}:{first_seen.isoformat()}",
        content_type=delivery.content_type or "application/octet-stream",
        headers=retry_headers(delivery, attempts=attempts, first_seen=first_seen, error=error),
        expiration_ms=policy.expiration_ms(attempts, rng),
    )


def _portable(value: Any) -> Any:
    """A header value that can be published again unchanged; anything else as text.

    The sender's headers are not ours to refuse: a float or bytes value that the
    publisher's check (adapters/amqp/fields.py) would reject must not keep a
    message from being retried.
    """
    if value is None or isinstance(value, str | bool):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else str(value)
    if isinstance(value, datetime):
        whole_utc = value.utcoffset() == timedelta(0) and not value.microsecond
        return value if whole_utc else value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, Mapping):
        return {str(key): _portable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_portable(item) for item in value]
    return str(value)


def _attempts(raw: object) -> int:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if isinstance(raw, bool):
        return 0
    if isinstance(raw, int):
        return max(0, raw)
    if isinstance(raw, str) and raw.strip().isdigit():
        return int(raw.strip())
    return 0


def _instant(raw: object) -> datetime | None:
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    if isinstance(raw, datetime):
        return raw if raw.tzinfo is not None else None
    if not isinstance(raw, str):
        return None
    try:
        parsed = datetime.fromisoformat(raw.strip())
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else None
