"""Time zones: any aware time goes in, the same instant comes out, in UTC; naive times are refused.

Written once, run on SQLite and PostgreSQL (``database_url`` is parametrised).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import exc as sa_exc

from integration.store import FailedMessage, InboundRecord, Store

RecordFactory = Callable[..., InboundRecord]
BERLIN = ZoneInfo("Europe/Berlin")

INSTANTS = [
    datetime(2026, 5, 9, 9, 35, 25, 123456, tzinfo=BERLIN),  # CEST, +02:00
    datetime(2026, 1, 15, 23, 59, 59, 999999, tzinfo=ZoneInfo("America/Chicago")),
    # The hour that happens twice when Berlin leaves summer time: the second one (fold=1).
    datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=1),
    datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=45))),  # Nepal
    datetime(1999, 12, 31, 23, 59, 59, tzinfo=UTC),
]


@pytest.mark.parametrize("instant", INSTANTS, ids=lambda i: i.isoformat())
def test_inbox_time_round_trip(store: Store, make_record: RecordFactory, instant: datetime) -> None:
    store.settle_batch([make_record("k1", received_at=instant)])

    entry = store.lookup("k1")

    assert entry is not None
    # astimezone, not ==: Python never calls an instant in a repeated hour (fold=1) equal
    # to one in another zone (PEP 495), so compare in UTC and by POSIX timestamp.
    assert entry.received_at == instant.astimezone(UTC)
    assert entry.received_at.timestamp() == instant.timestamp()
    assert entry.received_at.tzinfo is UTC


def test_the_fold_is_kept(store: Store, make_record: RecordFactory) -> None:
    first = datetime(2026, 10, 25, 2, 30, tzinfo=BERLIN, fold=0)  # 00:30 UTC
    second = first.replace(fold=1)  # 01:30 UTC
    store.settle_batch([make_record("first", received_at=first)])
    store.settle_batch([make_record("second", received_at=second)])

    a, b = store.lookup("first"), store.lookup("second")

    assert a is not None
    assert b is not None
    assert b.received_at - a.received_at == timedelta(hours=1)


def test_outbox_and_failure_times_round_trip(database_url: str, make_record: RecordFactory) -> None:
    local_now = datetime(2026, 5, 9, 9, 0, 0, 42, tzinfo=BERLIN)
    store = Store.connect(database_url, clock=lambda: local_now)
    try:
        store.settle_batch([make_record("k1")])
        (row,) = store.pending_outbox(limit=1)
        failure = FailedMessage(
            body=b"x",
            headers={},
            route="sap.LOIPRO",
            contract=None,
            error_class="MalformedInput",
            error_text="not XML",
            first_failed_at=local_now,
            last_failed_at=local_now + timedelta(seconds=1),
        )
        kept = store.get_failure(store.record_failure(failure))
        entry = store.lookup("k1")
    finally:
        store.close()

    assert row.created_at == local_now
    assert row.created_at.tzinfo is UTC
    assert row.claimed_until is not None
    assert row.claimed_until.tzinfo is UTC
    assert entry is not None
    assert entry.settled_at == local_now
    assert kept is not None
    assert kept.first_failed_at == local_now
    assert kept.first_failed_at.tzinfo is UTC


def test_naive_times_are_refused(make_record: RecordFactory) -> None:
    with pytest.raises(ValueError, match="no time zone"):
        make_record("k1", received_at=datetime(2026, 5, 9, 9, 0))


def test_a_naive_clock_is_refused_at_the_database(
    database_url: str, make_record: RecordFactory
) -> None:
    store = Store.connect(database_url, clock=lambda: datetime(2026, 5, 9, 9, 0))
    try:
        with pytest.raises(sa_exc.StatementError, match="naive datetime") as caught:
            store.settle_batch([make_record("k1")])
        assert store.lookup("k1") is None
    finally:
        store.close()
    assert isinstance(caught.value.orig, ValueError)
