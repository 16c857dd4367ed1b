"""Retention: purge processed inbox keys older than the replay window, with their sent outputs.

An inbox row is what recognises a redelivery or a replay of an input that
already took effect; it must outlive the replay window
(``MESBRIDGE_REPLAY_WINDOW_DAYS``, default 400 days). ``purge_processed``
deletes the inbox rows settled before a cutoff together with their outbox rows,
in chunks, in ONE transaction: either everything found is purged (and the
caller's ``on_purged`` hook, which writes the audit entry, runs in the same
transaction) or nothing is.

Never purged: an inbox row that still has an unsent outbox row (its output is
not delivered yet; it is counted in ``kept_unsent`` and listed), and failed
messages (GMP: the records of what failed and what an analyst did are kept;
this module does not touch ``failed_message`` or ``audit_entry``).

The purged keys are summarised by ``keys_sha256``: the SHA-256 of the canonical
JSON list (UTF-8, no whitespace) of the keys sorted by code point, so an
auditor holding a backup can recompute it. Keys are walked in that order on
both backends (PostgreSQL ``COLLATE "C"``; SQLite's default is binary).

On SQLite the purge holds the database's write lock until it commits: the
service's writers wait, and after ``busy_timeout`` they back off and retry
(nothing is parked). Run large purges off-peak.

Failure modes: an unreachable or busy database raises ``TransientError``; a
naive ``before`` raises ``ValueError``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Connection, Engine, Exists, and_, delete, exists, func, select

from .engine import READ_ONLY, safe_url
from .models import inbox, outbox
from .translate import translate_errors

__all__ = ["DEFAULT_PURGE_CHUNK", "PurgeResult", "purge_processed"]

DEFAULT_PURGE_CHUNK = 500
_LISTED_KEPT = 10


@dataclass(frozen=True, kw_only=True)
class PurgeResult:
    """What a purge removed (or, with ``dry_run``, would remove)."""

    cutoff: datetime  # inbox rows settled before this instant were candidates
    dry_run: bool
    inbox_rows: int
    outbox_rows: int
    kept_unsent: int  # candidates kept because an output of theirs is not sent yet
    kept_unsent_keys: tuple[str, ...]  # the first few of them, for the report
    keys_sha256: str | None  # None when nothing was (or would be) purged


class _KeyDigest:
    """SHA-256 of ``canonical_json(sorted keys)``, fed one key at a time in sorted order."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256(b"[")
        self.count = 0

    def add(self, key: str) -> None:
        encoded = json.dumps(key, ensure_ascii=False).encode("utf-8")
        self._hash.update(encoded if self.count == 0 else b"," + encoded)
        self.count += 1

    def hexdigest(self) -> str | None:
        if self.count == 0:
            return None
        final = self._hash.copy()
        final.update(b"]")
        return final.hexdigest()


def purge_processed(
    engine: Engine,
    *,
    before: datetime,
    dry_run: bool = False,
    chunk_size: int = DEFAULT_PURGE_CHUNK,
    progress: Callable[[int], None] | None = None,
    on_purged: Callable[[Connection, PurgeResult], None] | None = None,
) -> PurgeResult:
    """Purge inbox rows settled before ``before`` and their (sent) outbox rows.

    ``progress(n)`` is called after each chunk with the inbox rows it handled;
    ``on_purged(connection, result)`` runs inside the purge's transaction before
    it commits (not for a dry run): write the audit entry there.
    """
    if before.tzinfo is None or before.utcoffset() is None:
        raise ValueError(f"before {before.isoformat()} has no time zone")
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    database = safe_url(engine.url)
    action = "counting what a purge would remove" if dry_run else "purging processed inbox keys"
    with translate_errors(action, database=database):
        if dry_run:
            with engine.connect() as connection:
                connection.execution_options(**READ_ONLY)
                with connection.begin():
                    return _walk(connection, before, chunk_size, progress, delete_rows=False)
        with engine.begin() as connection:
            result = _walk(connection, before, chunk_size, progress, delete_rows=True)
            if on_purged is not None:
                on_purged(connection, result)
            return result


def _walk(
    connection: Connection,
    cutoff: datetime,
    chunk_size: int,
    progress: Callable[[int], None] | None,
    *,
    delete_rows: bool,
) -> PurgeResult:
    key = _binary_order(connection, inbox.c.idempotency_key)
    unsent = exists().where(outbox.c.inbox_id == inbox.c.id, outbox.c.sent_at.is_(None))
    digest = _KeyDigest()
    outbox_rows = 0
    after: str | None = None
    while True:
        query = select(inbox.c.id, inbox.c.idempotency_key).where(
            inbox.c.settled_at < cutoff, ~unsent
        )
        if after is not None:
            query = query.where(key > after)
        rows = connection.execute(query.order_by(key).limit(chunk_size)).all()
        if not rows:
            break
        ids = [int(row.id) for row in rows]
        for row in rows:
            digest.add(str(row.idempotency_key))
        outbox_rows += _outbox_rows(connection, ids, delete_rows=delete_rows)
        if delete_rows:
            connection.execute(delete(inbox).where(inbox.c.id.in_(ids)))
        after = str(rows[-1].idempotency_key)
        if progress is not None:
            progress(len(rows))
    kept = _kept_unsent(connection, cutoff, key, unsent)
    return PurgeResult(
        cutoff=cutoff,
        dry_run=not delete_rows,
        inbox_rows=digest.count,
        outbox_rows=outbox_rows,
        kept_unsent=kept[0],
        kept_unsent_keys=kept[1],
        keys_sha256=digest.hexdigest(),
    )


def _outbox_rows(connection: Connection, inbox_ids: Sequence[int], *, delete_rows: bool) -> int:
    if delete_rows:
        # Only sent rows can remain for these inbox rows (the walk skips any with an unsent one),
        # and the sent_at condition says so again.
        deleted = connection.execute(
            delete(outbox).where(outbox.c.inbox_id.in_(inbox_ids), outbox.c.sent_at.is_not(None))
        )
        return int(deleted.rowcount)
    counted = connection.execute(
        select(func.count()).select_from(outbox).where(outbox.c.inbox_id.in_(inbox_ids))
    ).scalar_one()
    return int(counted)


def _kept_unsent(
    connection: Connection, cutoff: datetime, key: ColumnElement[str], unsent: Exists
) -> tuple[int, tuple[str, ...]]:
    condition = and_(inbox.c.settled_at < cutoff, unsent)
    count = connection.execute(
        select(func.count()).select_from(inbox).where(condition)
    ).scalar_one()
    listed = connection.execute(
        select(inbox.c.idempotency_key).where(condition).order_by(key).limit(_LISTED_KEPT)
    ).scalars()
    return int(count), tuple(str(k) for k in listed)


def _binary_order(connection: Connection, column: ColumnElement[str]) -> ColumnElement[str]:
    # Code-point order on both backends, so keys_sha256 does not depend on a locale.
    if connection.dialect.name == "postgresql":
        return column.collate("C")
    return column
