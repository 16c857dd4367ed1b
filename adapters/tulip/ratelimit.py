"""Client-side pacing for Tulip: a token bucket and the ``Retry-After`` header.

Tulip limits record writes to 10 per second per table (record reads: 50 per
second), shared by every API token of the instance, and answers HTTP 429 beyond.
The client paces itself with a :class:`TokenBucket` so that one process never
provokes a 429 on its own; other processes (or other integrations) can still
exhaust the shared budget, so a 429 is honoured as well: :func:`parse_retry_after`
turns the header into seconds, and :meth:`TokenBucket.pause` holds every thread
that shares the bucket, not only the one that was refused.

The bucket is a GCRA (generic cell rate algorithm) limiter: it keeps one
"theoretical arrival time" instead of a token count, which makes it exact with a
fake clock and cheap under a lock. Clock and sleep are injected so tests run in
virtual time.

Failure modes: none at run time. A non-positive rate or capacity is a
``ValueError`` at construction (a programming error; settings are validated
before they reach this module).
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["TokenBucket", "parse_retry_after"]

# RFC 9110 allows only whole seconds; some servers send fractions, which cost nothing to accept.
_DELTA_SECONDS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")


class TokenBucket:
    """At most ``rate_per_s`` acquisitions per second, with bursts of up to ``capacity``.

    Thread-safe: the reservation is made under a lock and the wait happens outside it,
    so concurrent callers queue up in order instead of all waking at once.
    """

    def __init__(
        self,
        rate_per_s: float,
        *,
        capacity: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not rate_per_s > 0 or math.isinf(rate_per_s):
            raise ValueError(f"rate_per_s must be a positive finite number, got {rate_per_s!r}")
        if not capacity >= 1:
            raise ValueError(f"capacity must be at least 1, got {capacity!r}")
        self.rate_per_s = rate_per_s
        self.capacity = capacity
        self._interval = 1.0 / rate_per_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._tat = -math.inf  # theoretical arrival time of the next conforming request

    def reserve(self) -> float:
        """Take a slot now and return how many seconds the caller must wait before using it."""
        with self._lock:
            now = self._clock()
            tat = max(self._tat, now)
            start = tat - (self.capacity - 1) * self._interval
            self._tat = tat + self._interval
            return max(0.0, start - now)

    def acquire(self) -> float:
        """Block until a slot is free; return the seconds waited."""
        wait = self.reserve()
        if wait > 0:
            self._sleep(wait)
        return wait

    def pause(self, seconds: float) -> None:
        """Hold every caller of this bucket for ``seconds`` from now (after an HTTP 429)."""
        with self._lock:
            now = self._clock()
            resume_tat = now + max(0.0, seconds) + (self.capacity - 1) * self._interval
            self._tat = max(self._tat, resume_tat)


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None.

    None means the header is absent or unreadable; the caller then falls back to its
    own backoff. A date in the past means "now" (0 seconds).
    """
    if value is None:
        return None
    match = _DELTA_SECONDS.match(value)
    if match:
        return float(match.group(1))
    try:
        when = parsedate_to_datetime(value.strip())
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        # RFC 9110 dates are GMT; an unzoned parse result is UTC by definition.
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())
