"""The append-only audit trail: one HMAC-SHA256 chain over every entry, and its verification.

Every operator action (replay, edit, discard, purge, resolve) and every change
of the service's configuration appends one ``audit_entry`` row: who, when
(UTC), what, on which subject, why, the SHA-256 of the subject before and
after, and details. Entry ``seq`` (1, 2, 3, … without gaps) carries

    mac = HMAC-SHA256(K, canonical(seq, recorded_at, actor, action, subject,
                                   reason, before_sha256, after_sha256,
                                   details, prev_mac))

where ``prev_mac`` is the previous entry's ``mac`` (64 zeros for entry 1) and
``K`` is derived from a key kept outside the database. Changing any column,
deleting or reordering rows breaks the chain at the first affected entry; only
someone holding the key can forge a consistent chain. ``canonical`` is a JSON
array (UTF-8, no whitespace), so field boundaries are unambiguous; ``details``
is kept as the exact canonical JSON text that was MACed.

Appends are serialised so that concurrent writers never fork the chain: on
PostgreSQL a transaction-scoped advisory lock, on SQLite the write lock that
every write transaction takes at ``BEGIN IMMEDIATE``; the last ``mac`` is read
inside that lock, and ``seq`` is the primary key, so a fork could not commit
anyway.

What ``verify`` cannot see on its own: the removal of the newest entries (the
remaining chain is intact). Keep an anchor outside the database: compare the
head (``seq``, ``mac``) with the one logged at start-up, or pass
``expect_at_least``. See docs/audit.md.

Failure modes: an empty actor, subject or reason, a naive clock value, a hash
that is not 64 lowercase hex digits or details that are not JSON raise
``ValueError`` (caller bugs); an unreachable or busy database raises
``TransientError``; a key shorter than 32 bytes raises ``ValueError``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum, StrEnum
from pathlib import PurePath
from typing import Any

from sqlalchemy import Connection, Engine, Row, insert, select, text

from integration.store.engine import READ_ONLY, safe_url
from integration.store.models import audit_entry
from integration.store.translate import translate_errors

__all__ = [
    "AUDIT_LOCK_KEY",
    "GENESIS_MAC",
    "MIN_KEY_BYTES",
    "AuditAction",
    "AuditEntry",
    "AuditTrail",
    "AuditVerification",
    "audit_entries",
    "canonical_json",
]

MIN_KEY_BYTES = 32
GENESIS_MAC = "0" * 64
# Domain separation: the configured key material is never used as the MAC key itself.
_KEY_CONTEXT = b"mesbridge audit trail v1"
_FORMAT = "v1"
# One fixed 64-bit key for pg_advisory_xact_lock, derived from a name so it is recognisable.
AUDIT_LOCK_KEY = int.from_bytes(
    hashlib.sha256(b"mesbridge.audit.append").digest()[:8], "big", signed=True
)
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")
_PAGE = 500


class AuditAction(StrEnum):
    """What an audit entry records (a closed set: a new action is a code change)."""

    REPLAY = "replay"  # a failed message was republished (original or edited copy)
    EDIT = "edit"  # an edited copy of a failed message was saved beside the original
    DISCARD = "discard"  # a failed message was closed without replay
    RESOLVE = "resolve"  # a failed message was closed as handled elsewhere
    PURGE = "purge"  # processed inbox keys past the replay window were deleted
    CONFIG_CHANGE = "config-change"  # the service started with another configuration


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """One entry of the trail, as stored."""

    seq: int
    recorded_at: datetime
    actor: str
    action: AuditAction
    subject: str  # e.g. "failed_message:42", "inbox", "configuration"
    reason: str
    before_sha256: str | None
    after_sha256: str | None
    details: Mapping[str, object]
    prev_mac: str
    mac: str


@dataclass(frozen=True, kw_only=True)
class AuditVerification:
    """The result of checking the whole chain, entry 1 to the head."""

    ok: bool
    checked: int  # entries read (up to and including the first broken one)
    first_broken_seq: int | None
    problem: str | None
    head_seq: int | None = None  # the newest entry, when the chain is intact
    head_mac: str | None = None


def canonical_json(value: object) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 text, no NaN.

    Decimals become strings (never floats), datetimes ISO 8601 in UTC, enums
    their value, paths their text; anything else JSON cannot hold is a ``ValueError``.
    """
    try:
        return json.dumps(
            value,
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
            default=_json_default,
        )
    except (TypeError, ValueError) as error:
        raise ValueError(f"audit details are not JSON: {error}") from error


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} in audit details")
        return _instant_text(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=canonical_json)
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON")


def _instant_text(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _mac(key: bytes, values: Mapping[str, Any]) -> str:
    """The entry's MAC over its stored values (``recorded_at`` an aware datetime)."""
    payload = [
        _FORMAT,
        values["seq"],
        _instant_text(values["recorded_at"]),
        values["actor"],
        values["action"],
        values["subject"],
        values["reason"],
        values["before_sha256"],
        values["after_sha256"],
        values["details"],
        values["prev_mac"],
    ]
    message = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _require_text(name: str, value: str) -> None:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"audit entry: {name} is empty; every entry names its {name}")


def _require_hash(name: str, value: str | None) -> None:
    if value is not None and not _SHA256_HEX.fullmatch(value):
        raise ValueError(f"audit entry: {name} {value!r} is not 64 lowercase hex digits")


class AuditTrail:
    """Append to, read and verify the audit trail in the store's database."""

    def __init__(
        self,
        engine: Engine,
        key: bytes,
        *,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(
                f"the audit key has {len(key)} bytes; at least {MIN_KEY_BYTES} are needed"
            )
        self._engine = engine
        self._database = safe_url(engine.url)
        self._key = hmac.new(key, _KEY_CONTEXT, hashlib.sha256).digest()
        self._clock = clock

    def __repr__(self) -> str:
        return f"AuditTrail({self._database})"

    @property
    def engine(self) -> Engine:
        return self._engine

    # -- appending ------------------------------------------------------------------------

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        """A write transaction holding the append lock; commits on leaving it.

        Use it to change a record and audit the change atomically: update the
        row, then ``record(..., connection=connection)``.
        """
        with (
            translate_errors("writing the audit trail", database=self._database),
            self._engine.begin() as connection,
        ):
            self._lock(connection)
            yield connection

    def record(
        self,
        *,
        actor: str,
        action: AuditAction,
        subject: str,
        reason: str,
        before_sha256: str | None = None,
        after_sha256: str | None = None,
        details: Mapping[str, object] | None = None,
        connection: Connection | None = None,
    ) -> AuditEntry:
        """Append one entry and return it.

        With ``connection`` the entry is written inside the caller's transaction
        (which the caller commits, so that a status change and its audit entry
        commit together); otherwise in a transaction of its own. Either way the
        append lock is held until that transaction ends.
        """
        _require_text("actor", actor)
        _require_text("subject", subject)
        _require_text("reason", reason)
        checked_action = AuditAction(action)
        _require_hash("before_sha256", before_sha256)
        _require_hash("after_sha256", after_sha256)
        details_text = canonical_json(dict(details or {}))
        recorded_at = self._clock()
        if recorded_at.tzinfo is None or recorded_at.utcoffset() is None:
            raise ValueError(f"the audit clock gave a naive datetime {recorded_at.isoformat()}")
        values: dict[str, Any] = {
            "recorded_at": recorded_at.astimezone(UTC),
            "actor": actor,
            "action": checked_action.value,
            "subject": subject,
            "reason": reason,
            "before_sha256": before_sha256,
            "after_sha256": after_sha256,
            "details": details_text,
        }
        if connection is not None:
            with translate_errors("writing the audit trail", database=self._database):
                self._lock(connection)
                return self._append(connection, values)
        with self.begin() as own:
            return self._append(own, values)

    def _lock(self, connection: Connection) -> None:
        # SQLite: the write transaction already holds the database's single write lock.
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": AUDIT_LOCK_KEY})

    def _append(self, connection: Connection, values: dict[str, Any]) -> AuditEntry:
        last = connection.execute(
            select(audit_entry.c.seq, audit_entry.c.mac).order_by(audit_entry.c.seq.desc()).limit(1)
        ).first()
        values["seq"] = 1 if last is None else int(last.seq) + 1
        values["prev_mac"] = GENESIS_MAC if last is None else str(last.mac)
        values["mac"] = _mac(self._key, values)
        connection.execute(insert(audit_entry).values(values))
        return _entry(values)

    # -- reading --------------------------------------------------------------------------

    def entries(self, *, since: datetime | None = None) -> Iterator[AuditEntry]:
        """Every entry in ``seq`` order; with ``since``, those recorded at or after it."""
        return audit_entries(self._engine, since=since)

    def latest(
        self, action: AuditAction, *, connection: Connection | None = None
    ) -> AuditEntry | None:
        """The newest entry of ``action`` (None if none), read inside ``connection`` if given."""
        query = (
            select(audit_entry)
            .where(audit_entry.c.action == AuditAction(action).value)
            .order_by(audit_entry.c.seq.desc())
            .limit(1)
        )
        if connection is not None:
            row = connection.execute(query).first()
        else:
            with (
                translate_errors("reading the audit trail", database=self._database),
                self._engine.connect() as own,
            ):
                own.execution_options(**READ_ONLY)
                row = own.execute(query).first()
        return None if row is None else _entry(row._asdict())

    def head(self) -> tuple[int, str] | None:
        """The newest entry's ``(seq, mac)``: the anchor to keep outside the database."""
        with (
            translate_errors("reading the audit trail", database=self._database),
            self._engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            row = connection.execute(
                select(audit_entry.c.seq, audit_entry.c.mac)
                .order_by(audit_entry.c.seq.desc())
                .limit(1)
            ).first()
        return None if row is None else (int(row.seq), str(row.mac))

    # -- verifying ------------------------------------------------------------------------

    def verify(self, *, expect_at_least: int = 0) -> AuditVerification:
        """Check every entry's MAC and its link to the one before, from entry 1 to the head.

        ``expect_at_least``: fail when the trail holds fewer entries (a removed
        tail leaves an intact but shorter chain; compare with a count or head
        kept outside the database).
        """
        expected_seq, prev_mac, checked = 1, GENESIS_MAC, 0
        for row in _rows(self._engine):
            values = row._asdict()
            seq = int(values["seq"])
            checked += 1
            problem = self._problem(values, expected_seq, prev_mac)
            if problem is not None:
                broken = expected_seq if seq > expected_seq else seq
                return AuditVerification(
                    ok=False, checked=checked, first_broken_seq=broken, problem=problem
                )
            expected_seq, prev_mac = seq + 1, str(values["mac"])
        head_seq = expected_seq - 1
        if head_seq < expect_at_least:
            return AuditVerification(
                ok=False,
                checked=checked,
                first_broken_seq=head_seq + 1,
                problem=(
                    f"missing: the trail ends at entry {head_seq}, at least "
                    f"{expect_at_least} entries were expected (newest entries removed?)"
                ),
            )
        return AuditVerification(
            ok=True,
            checked=checked,
            first_broken_seq=None,
            problem=None,
            head_seq=head_seq or None,
            head_mac=prev_mac if head_seq else None,
        )

    def _problem(self, values: Mapping[str, Any], expected_seq: int, prev_mac: str) -> str | None:
        seq = int(values["seq"])
        if seq != expected_seq:
            before = f"entry {expected_seq - 1}" if expected_seq > 1 else "the start"
            return (
                f"missing: the trail goes from {before} to entry {seq} "
                f"(entry {expected_seq} was deleted)"
            )
        if values["prev_mac"] != prev_mac:
            return (
                "its prev_mac does not match the MAC of the entry before it "
                "(entries were deleted, reordered or replaced)"
            )
        if not hmac.compare_digest(_mac(self._key, values), str(values["mac"])):
            hint = ""
            if seq == 1:
                hint = " (or the audit key is not the one the trail was written with)"
            return f"its MAC does not match its content (a field was changed){hint}"
        return None


def audit_entries(engine: Engine, *, since: datetime | None = None) -> Iterator[AuditEntry]:
    """Read the trail without its key (export, review): entries in ``seq`` order.

    Reading does not check the chain: run ``AuditTrail.verify`` for that.
    """
    if since is not None and (since.tzinfo is None or since.utcoffset() is None):
        raise ValueError(f"since {since.isoformat()} has no time zone")
    for row in _rows(engine, since=since):
        yield _entry(row._asdict())


def _rows(engine: Engine, *, since: datetime | None = None) -> Iterator[Row[Any]]:
    # Pages by seq, each in a short read transaction: no connection is held while the
    # caller works through a long trail.
    database = safe_url(engine.url)
    after = 0
    while True:
        query = select(audit_entry).where(audit_entry.c.seq > after)
        if since is not None:
            query = query.where(audit_entry.c.recorded_at >= since)
        query = query.order_by(audit_entry.c.seq).limit(_PAGE)
        with (
            translate_errors("reading the audit trail", database=database),
            engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            rows = connection.execute(query).all()
        if not rows:
            return
        yield from rows
        after = int(rows[-1].seq)


def _entry(values: Mapping[str, Any]) -> AuditEntry:
    try:
        action = AuditAction(values["action"])
    except ValueError:
        raise ValueError(
            f"audit entry {values['seq']}: action {values['action']!r} is not one of "
            f"{', '.join(a.value for a in AuditAction)}; run `mesbridge audit verify`"
        ) from None
    details = json.loads(values["details"])
    return AuditEntry(
        seq=int(values["seq"]),
        recorded_at=values["recorded_at"],
        actor=values["actor"],
        action=action,
        subject=values["subject"],
        reason=values["reason"],
        before_sha256=values["before_sha256"],
        after_sha256=values["after_sha256"],
        details=details,
        prev_mac=values["prev_mac"],
        mac=values["mac"],
    )
