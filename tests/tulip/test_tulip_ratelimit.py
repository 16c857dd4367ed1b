"""The client's token bucket and Retry-After parsing, in virtual time (plus one threaded check)."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.tulip import TokenBucket, parse_retry_after


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _times(bucket: TokenBucket, clock: Clock, n: int) -> list[float]:
    stamps = []
    for _ in range(n):
        bucket.acquire()
        stamps.append(clock.now)
    return stamps


def test_capacity_one_spaces_every_acquisition_by_one_interval() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, clock=clock, sleep=clock.sleep)
    stamps = _times(bucket, clock, 25)
    assert stamps[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert all(gap == pytest.approx(0.1) for gap in gaps)
    # never more than 10 in any one-second window (1e-9: float sums of 0.1 drift by ~1e-16)
    assert max(sum(1 for t in stamps if s <= t < s + 1.0 - 1e-9) for s in stamps) == 10


def test_capacity_allows_a_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, capacity=3, clock=clock, sleep=clock.sleep)
    stamps = _times(bucket, clock, 5)
    assert stamps == pytest.approx([0.0, 0.0, 0.0, 0.1, 0.2])


def test_an_idle_bucket_does_not_bank_more_than_its_capacity() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, capacity=2, clock=clock, sleep=clock.sleep)
    clock.now = 60.0  # a minute idle must not allow a 600-request burst
    stamps = _times(bucket, clock, 4)
    assert stamps == pytest.approx([60.0, 60.0, 60.1, 60.2])


def test_pause_holds_the_next_acquisition() -> None:
    clock = Clock()
    bucket = TokenBucket(10.0, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    bucket.pause(2.5)
    assert bucket.acquire() == pytest.approx(2.5)
    assert bucket.acquire() == pytest.approx(0.1)


def test_pause_never_shortens_an_existing_wait() -> None:
    clock = Clock()
    bucket = TokenBucket(1.0, clock=clock, sleep=clock.sleep)
    bucket.acquire()
    bucket.pause(0.2)  # the next slot is already 1 s away
    assert bucket.acquire() == pytest.approx(1.0)


@pytest.mark.parametrize("rate", [0, -1, float("inf"), float("nan")])
def test_rejects_a_rate_that_is_not_positive_and_finite(rate: float) -> None:
    with pytest.raises(ValueError, match="rate_per_s"):
        TokenBucket(rate)


def test_threads_sharing_a_bucket_queue_up_in_real_time() -> None:
    bucket = TokenBucket(50.0)
    stamps: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(5):
            bucket.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=work) for _ in range(4)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stamps.sort()
    # 20 acquisitions at 50/s: the last is at least 19 intervals after the first.
    assert stamps[-1] - start >= 19 / 50 - 0.01
    assert len(stamps) == 20


NOW = datetime(2026, 5, 4, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("2", 2.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        ("0.5", 0.5),
        (format_datetime(NOW + timedelta(seconds=4), usegmt=True), 4.0),
        ("Mon, 04 May 2026 12:00:09 GMT", 9.0),
        (format_datetime(NOW - timedelta(seconds=30), usegmt=True), 0.0),
    ],
)
def test_parse_retry_after_reads_seconds_and_http_dates(header: str, seconds: float) -> None:
    assert parse_retry_after(header, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "", "soon", "-1", "1e3", "Mon, 99 Foo 2026"])
def test_parse_retry_after_returns_none_for_what_it_cannot_read(header: str | None) -> None:
    assert parse_retry_after(header, now=NOW) is None


@given(st.integers(min_value=0, max_value=10**9))
def test_parse_retry_after_delta_seconds_round_trip(seconds: int) -> None:
    assert parse_retry_after(str(seconds), now=NOW) == float(seconds)
