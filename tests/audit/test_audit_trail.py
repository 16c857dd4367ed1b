"""The audit trail: append, read, verify; tampering found; concurrent appends keep one chain.

Written once, run on SQLite and PostgreSQL (``database_url`` is parametrised).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy import text

from integration.audit import (
    GENESIS_MAC,
    AuditAction,
    AuditTrail,
    audit_entries,
    canonical_json,
)
from integration.store import Store
from integration.store.engine import create_store_engine

from .conftest import KEY, Tamper, fill


def test_entries_come_back_as_recorded_and_chained(trail: AuditTrail) -> None:
    first = trail.record(
        actor="alice",
        action=AuditAction.DISCARD,
        subject="failed_message:42",
        reason="duplicate of order 1000240, already posted",
        before_sha256="a" * 64,
        after_sha256="b" * 64,
        details={"quantity": Decimal("12.500"), "status": "parked -> discarded"},
    )
    second = trail.record(
        actor="bob", action=AuditAction.REPLAY, subject="failed_message:43", reason="SAP fixed"
    )

    entries = list(trail.entries())

    assert entries == [first, second]
    assert [e.seq for e in entries] == [1, 2]
    assert first.prev_mac == GENESIS_MAC
    assert second.prev_mac == first.mac
    assert first.recorded_at == datetime(2026, 5, 9, 8, 0, tzinfo=UTC)
    assert first.details == {"quantity": "12.500", "status": "parked -> discarded"}
    assert second.details == {}
    assert (second.before_sha256, second.after_sha256) == (None, None)


def test_the_mac_is_hmac_sha256_over_the_documented_serialisation(trail: AuditTrail) -> None:
    entry = trail.record(
        actor="alice",
        action=AuditAction.EDIT,
        subject="failed_message:7",
        reason="unit KG→KGM",
        details={"b": 1, "a": "ü"},
    )
    # docs/audit.md: K = HMAC-SHA256(key material, "mesbridge audit trail v1").
    derived = hmac.new(KEY, b"mesbridge audit trail v1", hashlib.sha256).digest()
    payload = [
        "v1",
        1,
        "2026-05-09T08:00:00.000000Z",
        "alice",
        "edit",
        "failed_message:7",
        "unit KG→KGM",
        None,
        None,
        '{"a":"ü","b":1}',
        GENESIS_MAC,
    ]
    message = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()

    assert entry.mac == hmac.new(derived, message, hashlib.sha256).hexdigest()


def test_an_untouched_trail_verifies(trail: AuditTrail) -> None:
    fill(trail, 12)

    result = trail.verify()

    assert result.ok, result.problem
    assert (result.checked, result.head_seq) == (12, 12)
    assert result.head_mac == list(trail.entries())[-1].mac
    assert trail.head() == (12, result.head_mac)


def test_an_empty_trail_verifies(trail: AuditTrail) -> None:
    result = trail.verify()
    assert result.ok
    assert (result.checked, result.head_seq, trail.head()) == (0, None, None)


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("recorded_at", "2026-05-09 08:00:04+00"),
        ("actor", "mallory"),
        ("action", "resolve"),
        ("subject", "failed_message:999"),
        ("reason", "nothing to see"),
        ("before_sha256", "f" * 64),
        ("after_sha256", "e" * 64),
        ("details", '{"n":5,"note":"changed"}'),
        ("prev_mac", "0" * 64),
        ("mac", "1" * 64),
    ],
)
def test_a_changed_field_breaks_the_chain_at_its_entry(
    trail: AuditTrail, tamper: Tamper, store: Store, column: str, value: str
) -> None:
    fill(trail, 6)
    if column == "recorded_at" and store.engine.dialect.name == "sqlite":
        value = "2026-05-09T08:00:04.000000Z"  # SQLite keeps the instant as text

    tamper(f"UPDATE audit_entry SET {column} = :value WHERE seq = 4", value=value)

    result = trail.verify()
    assert not result.ok
    assert result.first_broken_seq == 4
    assert result.problem is not None
    assert "changed" in result.problem or "prev_mac" in result.problem


def test_a_deleted_entry_is_found(trail: AuditTrail, tamper: Tamper) -> None:
    fill(trail, 6)

    tamper("DELETE FROM audit_entry WHERE seq = 3")

    result = trail.verify()
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert result.problem == (
        "missing: the trail goes from entry 2 to entry 4 (entry 3 was deleted)"
    )


def test_a_deleted_and_renumbered_entry_is_found(trail: AuditTrail, tamper: Tamper) -> None:
    fill(trail, 5)

    tamper(
        "DELETE FROM audit_entry WHERE seq = 2",
        "UPDATE audit_entry SET seq = seq - 1 WHERE seq > 2",
    )

    result = trail.verify()
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert result.problem is not None and "prev_mac" in result.problem


def test_a_deleted_first_entry_is_found(trail: AuditTrail, tamper: Tamper) -> None:
    fill(trail, 3)

    tamper("DELETE FROM audit_entry WHERE seq = 1")

    result = trail.verify()
    assert (result.ok, result.first_broken_seq) == (False, 1)
    assert result.problem is not None and "from the start to entry 2" in result.problem


def test_reordered_entries_are_found(trail: AuditTrail, tamper: Tamper) -> None:
    fill(trail, 6)
    # Swap the whole content of entries 3 and 4 (everything but seq) through a parking seq.
    tamper(
        "UPDATE audit_entry SET seq = 1000 WHERE seq = 3",
        "UPDATE audit_entry SET seq = 3 WHERE seq = 4",
        "UPDATE audit_entry SET seq = 4 WHERE seq = 1000",
    )

    result = trail.verify()
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert result.problem is not None and "prev_mac" in result.problem


def test_a_removed_tail_needs_an_anchor(trail: AuditTrail, tamper: Tamper) -> None:
    # The documented limit: deleting the newest entries leaves an intact, shorter chain.
    fill(trail, 5)
    anchor = trail.head()

    tamper("DELETE FROM audit_entry WHERE seq >= 4")

    assert trail.verify().ok
    assert trail.head() != anchor
    result = trail.verify(expect_at_least=5)
    assert (result.ok, result.first_broken_seq) == (False, 4)
    assert result.problem is not None and "ends at entry 3" in result.problem


def test_the_wrong_key_fails_at_the_first_entry(trail: AuditTrail, store: Store) -> None:
    fill(trail, 3)

    result = AuditTrail(store.engine, b"another key of thirty-two bytes!").verify()

    assert (result.ok, result.first_broken_seq) == (False, 1)
    assert result.problem is not None and "audit key" in result.problem


def test_the_database_refuses_update_and_delete(trail: AuditTrail, store: Store) -> None:
    fill(trail, 2)
    statements = ["UPDATE audit_entry SET reason = 'x' WHERE seq = 1", "DELETE FROM audit_entry"]
    if store.engine.dialect.name == "postgresql":
        statements.append("TRUNCATE audit_entry")
    for statement in statements:
        with pytest.raises(sa_exc.DatabaseError, match="append-only"), store.engine.begin() as c:
            c.execute(text(statement))

    assert trail.verify().checked == 2


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("actor", ""),
        ("reason", "  "),
        ("subject", ""),
        ("before_sha256", "ABC"),
        ("after_sha256", "0" * 63),
    ],
)
def test_a_caller_bug_is_refused_before_writing(trail: AuditTrail, field: str, value: str) -> None:
    values: dict[str, str] = {"actor": "alice", "subject": "failed_message:1", "reason": "why"}
    values[field] = value

    with pytest.raises(ValueError, match=field):
        trail.record(action=AuditAction.DISCARD, **values)  # type: ignore[arg-type]

    assert trail.head() is None


def test_unknown_actions_details_and_clocks_are_refused(store: Store) -> None:
    trail = AuditTrail(store.engine, KEY, clock=lambda: datetime(2026, 5, 9, 8, 0))
    common = {"actor": "alice", "subject": "inbox", "reason": "why"}
    with pytest.raises(ValueError, match="naive"):
        trail.record(action=AuditAction.PURGE, **common)
    with pytest.raises(ValueError, match="not a valid AuditAction"):
        trail.record(action="delete-everything", **common)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not JSON"):
        AuditTrail(store.engine, KEY).record(
            action=AuditAction.PURGE, details={"body": b"\x00"}, **common
        )
    with pytest.raises(ValueError, match="at least 32"):
        AuditTrail(store.engine, b"short")
    assert AuditTrail(store.engine, KEY).head() is None


def test_recording_inside_the_callers_transaction_commits_and_rolls_back_with_it(
    trail: AuditTrail, store: Store
) -> None:
    def change_that_fails() -> None:
        with trail.begin() as connection:
            trail.record(
                actor="alice",
                action=AuditAction.DISCARD,
                subject="failed_message:1",
                reason="r",
                connection=connection,
            )
            raise RuntimeError("the status change failed")

    with pytest.raises(RuntimeError):
        change_that_fails()
    assert trail.head() is None

    with store.engine.begin() as connection:
        entry = trail.record(
            actor="alice",
            action=AuditAction.DISCARD,
            subject="failed_message:1",
            reason="r",
            connection=connection,
        )
    assert trail.head() == (1, entry.mac)
    assert trail.verify().ok


def test_entries_since_an_instant(trail: AuditTrail, store: Store) -> None:
    fill(trail, 5)  # recorded at 08:00:00 .. 08:00:04

    since = datetime(2026, 5, 9, 10, 0, 2, tzinfo=timezone(timedelta(hours=2)))  # 08:00:02 UTC
    got = [e.seq for e in audit_entries(store.engine, since=since)]

    assert got == [3, 4, 5]
    with pytest.raises(ValueError, match="no time zone"):
        list(trail.entries(since=datetime(2026, 5, 9)))


def test_canonical_json_is_deterministic_and_never_uses_floats_for_decimals() -> None:
    value = {"b": [Decimal("1.10"), datetime(2026, 5, 9, 10, 0, tzinfo=UTC)], "a": AuditAction.EDIT}
    assert canonical_json(value) == '{"a":"edit","b":["1.10","2026-05-09T10:00:00.000000Z"]}'
    with pytest.raises(ValueError, match="not JSON"):
        canonical_json({"x": float("nan")})


def test_concurrent_appends_keep_one_chain(database_url: str, store: Store) -> None:
    threads_n, per_thread = 4, 25
    start = threading.Barrier(threads_n)
    errors: list[BaseException] = []
    engines = [create_store_engine(database_url) for _ in range(threads_n)]

    def append(worker: int) -> None:
        trail = AuditTrail(engines[worker], KEY)
        try:
            start.wait()
            for n in range(per_thread):
                trail.record(
                    actor=f"worker{worker}",
                    action=AuditAction.REPLAY,
                    subject=f"failed_message:{worker * 100 + n}",
                    reason="concurrency test",
                )
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=append, args=(w,)) for w in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for engine in engines:
        engine.dispose()

    assert not errors, errors
    trail = AuditTrail(store.engine, KEY)
    result = trail.verify()
    assert result.ok, result.problem
    assert result.checked == threads_n * per_thread
    assert [e.seq for e in trail.entries()] == list(range(1, threads_n * per_thread + 1))
    subjects = {e.subject for e in trail.entries()}
    assert len(subjects) == threads_n * per_thread


def test_an_entry_forged_without_the_key_is_found(trail: AuditTrail, store: Store) -> None:
    fill(trail, 3)
    head = trail.head()
    assert head is not None
    forged = AuditTrail(store.engine, b"a guess at the key, 32 bytes lon")
    # Appending needs no trigger bypass: INSERT is allowed, so the MAC is the only guard.
    forged.record(actor="mallory", action=AuditAction.RESOLVE, subject="x", reason="cover-up")

    result = trail.verify()

    assert (result.ok, result.first_broken_seq) == (False, 4)
    assert result.problem is not None and "MAC does not match" in result.problem
