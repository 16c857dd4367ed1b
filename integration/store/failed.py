"""The analyst's view of the failed-message store: find, group, inspect, change status.

Statuses and the only transitions there are (docs/failed-messages.md)::

    parked ──replay (broker confirmed)──▶ replayed ──replay settled──▶ resolved
       │                                     │
       └──discard──▶ discarded (final)       └─replay failed again: stays replayed; the new
                                               failure is a new parked row, replay_of → this one

- A replay *settles* when the consumer's ``settle_batch`` finds it ACCEPTED
  (it took effect now) or DUPLICATE (it had taken effect before: no second
  effect). ``resolve_replays`` then marks the replayed row, and every
  ``replayed`` row before it in its ``replay_of`` chain, ``resolved`` in the
  same transaction. This is the service's bookkeeping, not an operator
  action: it is kept in the row (``resolved_at``, ``resolution``), not in the
  audit trail.
- A fast consumer can settle a replay before the replaying command has marked
  the row ``replayed``: ``resolve_replays`` therefore resolves ``parked`` rows
  too, and the command's own change (``parked → replayed``) then finds the row
  resolved and leaves it so.
- Every status change is conditional on the status the caller expects
  (``UPDATE … WHERE status IN (…)``): of two analysts acting on one message at
  once, one changes it and the other is told what it became.
- ``x-replay-of`` is a header anyone who can publish may set, so a link is
  only made, and a row only resolved, when the settled or failed message's
  SHA-256 is that of the row's original body or of one of its edited copies.

Failure modes: an unreachable database raises ``TransientError``.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, func, insert, literal, select, update

from contracts.errors import Finding

from .engine import READ_ONLY, safe_url
from .fingerprint import UNGROUPED, UNGROUPED_LABEL, failure_fingerprint
from .models import failed_message, failed_message_revision
from .order_numbers import normalise_order_number
from .records import InboundRecord, SettleOutcome, findings_from_json
from .translate import translate_errors

__all__ = [
    "FailedMessages",
    "FailureDetail",
    "FailureGroup",
    "FailureStatus",
    "FailureSummary",
    "Revision",
    "replay_link",
    "resolve_replays",
]


class FailureStatus(StrEnum):
    PARKED = "parked"  # waiting for an analyst
    REPLAYED = "replayed"  # republished; its outcome not settled yet, or it failed again
    RESOLVED = "resolved"  # a replay took effect, or found it had taken effect before
    DISCARDED = "discarded"  # closed by an analyst without replay; final


_SETTLED = frozenset({SettleOutcome.ACCEPTED, SettleOutcome.DUPLICATE})
_RESOLVABLE = (FailureStatus.PARKED.value, FailureStatus.REPLAYED.value)

_SUMMARY_COLUMNS = (
    failed_message.c.id,
    failed_message.c.status,
    failed_message.c.route,
    failed_message.c.contract,
    failed_message.c.error_class,
    failed_message.c.error_text,
    failed_message.c.findings,
    failed_message.c.fingerprint,
    failed_message.c.order_numbers,
    failed_message.c.attempts,
    failed_message.c.first_failed_at,
    failed_message.c.last_failed_at,
    failed_message.c.replay_of,
    failed_message.c.resolved_at,
    failed_message.c.resolution,
    failed_message.c.idempotency_key,
)


@dataclass(frozen=True, kw_only=True)
class FailureSummary:
    """One failed message as the list shows it (no body)."""

    id: int
    status: FailureStatus
    route: str
    contract: str | None
    error_class: str
    error_text: str
    findings: tuple[Finding, ...]
    fingerprint: str
    group_label: str
    order_numbers: tuple[str, ...]
    attempts: int
    first_failed_at: datetime
    last_failed_at: datetime
    replay_of: int | None
    resolved_at: datetime | None
    resolution: str | None
    idempotency_key: str | None

    @property
    def field(self) -> str | None:
        """Where the first problem is (XPath or segment/field), if the error names one."""
        return self.findings[0].where if self.findings else None

    @property
    def error_summary(self) -> str:
        """One line for a listing: the first finding, else the error's first line."""
        if self.findings:
            return str(self.findings[0])
        return self.error_text.splitlines()[0] if self.error_text else ""


@dataclass(frozen=True, kw_only=True)
class Revision:
    """An analyst's edited copy of a failed message, kept beside the original."""

    id: int
    failed_message_id: int
    created_at: datetime
    actor: str
    reason: str
    body: bytes
    sha256: str
    diff: str
    replayed_at: datetime | None


@dataclass(frozen=True, kw_only=True)
class FailureDetail:
    """One failed message whole: the summary, the bytes, the edits and the chain of replays."""

    summary: FailureSummary
    body: bytes
    headers: Mapping[str, str]
    revisions: tuple[Revision, ...]
    # Failures of this message's replays (rows whose replay_of is this id), oldest first.
    replay_failures: tuple[FailureSummary, ...]

    @property
    def body_sha256(self) -> str:
        return hashlib.sha256(self.body).hexdigest()

    @property
    def current_body(self) -> bytes:
        """What a replay sends: the newest edited copy, else the original bytes."""
        return self.revisions[-1].body if self.revisions else self.body

    @property
    def current_sha256(self) -> str:
        return self.revisions[-1].sha256 if self.revisions else self.body_sha256


@dataclass(frozen=True, kw_only=True)
class FailureGroup:
    """Failures sharing a fingerprint: one problem, however many messages it hit."""

    fingerprint: str
    label: str
    count: int
    statuses: Mapping[str, int]
    routes: tuple[str, ...]
    first_failed_at: datetime
    last_failed_at: datetime


class FailedMessages:
    """Queries and status changes on ``failed_message`` and its revisions."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._database = safe_url(engine.url)

    @property
    def engine(self) -> Engine:
        return self._engine

    # -- reading --------------------------------------------------------------------------

    def find(
        self,
        *,
        route: str | None = None,
        status: FailureStatus | None = None,
        since: datetime | None = None,
        order: str | None = None,
        group: str | None = None,
        ids: Collection[int] | None = None,
        limit: int | None = None,
    ) -> list[FailureSummary]:
        """Matching failures, the most recent failure first.

        ``order`` matches one of the message's order numbers, with or without SAP's
        leading zeros; ``group`` is a fingerprint or its first characters; ``since``
        keeps failures whose last failure is at or after it.
        """
        query = _filtered(
            select(*_SUMMARY_COLUMNS),
            route=route,
            status=status,
            since=since,
            order=order,
            group=group,
            ids=ids,
        ).order_by(failed_message.c.last_failed_at.desc(), failed_message.c.id.desc())
        if limit is not None:
            query = query.limit(limit)
        return [_summary(row) for row in self._read("listing failed messages", query)]

    def count(
        self,
        *,
        route: str | None = None,
        status: FailureStatus | None = None,
        since: datetime | None = None,
        order: str | None = None,
        group: str | None = None,
    ) -> int:
        query = _filtered(
            select(func.count()).select_from(failed_message),
            route=route,
            status=status,
            since=since,
            order=order,
            group=group,
        )
        return int(self._read("counting failed messages", query)[0][0])

    def groups(
        self,
        *,
        route: str | None = None,
        status: FailureStatus | None = None,
        since: datetime | None = None,
        order: str | None = None,
    ) -> list[FailureGroup]:
        """One entry per fingerprint among the matching failures, the largest group first."""
        query = _filtered(
            select(
                failed_message.c.fingerprint,
                failed_message.c.status,
                failed_message.c.route,
                func.count().label("n"),
                func.min(failed_message.c.first_failed_at).label("first"),
                func.max(failed_message.c.last_failed_at).label("last"),
                func.max(failed_message.c.id).label("example"),
            ).group_by(
                failed_message.c.fingerprint, failed_message.c.status, failed_message.c.route
            ),
            route=route,
            status=status,
            since=since,
            order=order,
        )
        rows = self._read("grouping failed messages", query)
        examples = {int(row.example) for row in rows}
        labels = self._labels(examples)
        merged: dict[str, dict[str, Any]] = {}
        for row in rows:
            entry = merged.setdefault(
                row.fingerprint,
                {
                    "statuses": Counter[str](),
                    "routes": set[str](),
                    "first": row.first,
                    "last": row.last,
                    "label": UNGROUPED_LABEL
                    if row.fingerprint == UNGROUPED
                    else labels.get(int(row.example), row.fingerprint),
                },
            )
            entry["statuses"][row.status] += int(row.n)
            entry["routes"].add(row.route)
            entry["first"] = min(entry["first"], row.first)
            entry["last"] = max(entry["last"], row.last)
        groups = [
            FailureGroup(
                fingerprint=fingerprint,
                label=entry["label"],
                count=sum(entry["statuses"].values()),
                statuses=dict(sorted(entry["statuses"].items())),
                routes=tuple(sorted(entry["routes"])),
                first_failed_at=entry["first"],
                last_failed_at=entry["last"],
            )
            for fingerprint, entry in merged.items()
        ]
        groups.sort(key=lambda g: (-g.count, -g.last_failed_at.timestamp(), g.fingerprint))
        return groups

    def get(self, failure_id: int) -> FailureDetail | None:
        """A failed message with its body, headers, edited copies and failed replays."""
        with (
            translate_errors("reading a failed message", database=self._database),
            self._engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            row = connection.execute(
                select(*_SUMMARY_COLUMNS, failed_message.c.body, failed_message.c.headers).where(
                    failed_message.c.id == failure_id
                )
            ).first()
            if row is None:
                return None
            revisions = connection.execute(
                select(failed_message_revision)
                .where(failed_message_revision.c.failed_message_id == failure_id)
                .order_by(failed_message_revision.c.id)
            ).all()
            replays = connection.execute(
                select(*_SUMMARY_COLUMNS)
                .where(failed_message.c.replay_of == failure_id)
                .order_by(failed_message.c.id)
            ).all()
        return FailureDetail(
            summary=_summary(row),
            body=bytes(row.body),
            headers={str(k): str(v) for k, v in dict(row.headers).items()},
            revisions=tuple(_revision(r) for r in revisions),
            replay_failures=tuple(_summary(r) for r in replays),
        )

    def ids(self, *, group: str, status: FailureStatus) -> list[int]:
        """The ids in a group with ``status``, oldest first (the order a group replay uses)."""
        query = _filtered(select(failed_message.c.id), status=status, group=group).order_by(
            failed_message.c.id
        )
        return [int(row.id) for row in self._read("listing a failure group", query)]

    def _labels(self, example_ids: Iterable[int]) -> dict[int, str]:
        ids = list(example_ids)
        if not ids:
            return {}
        query = select(
            failed_message.c.id,
            failed_message.c.error_class,
            failed_message.c.contract,
            failed_message.c.findings,
        ).where(failed_message.c.id.in_(ids))
        return {
            int(row.id): failure_fingerprint(
                row.error_class, row.contract, findings_from_json(row.findings)
            ).label
            for row in self._read("labelling failure groups", query)
        }

    def _read(self, action: str, query: Select[Any]) -> Sequence[Row[Any]]:
        with (
            translate_errors(action, database=self._database),
            self._engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            return connection.execute(query).all()

    # -- changing, inside the caller's transaction (with its audit entry) -----------------

    def status_of(self, connection: Connection, failure_id: int) -> FailureStatus | None:
        found = connection.execute(
            select(failed_message.c.status).where(failed_message.c.id == failure_id)
        ).scalar_one_or_none()
        return None if found is None else FailureStatus(found)

    def change_status(
        self,
        connection: Connection,
        failure_id: int,
        *,
        to: FailureStatus,
        allowed_from: Collection[FailureStatus],
    ) -> bool:
        """Set ``to`` if the row's status is one of ``allowed_from``; False if it was not."""
        changed = connection.execute(
            update(failed_message)
            .where(
                failed_message.c.id == failure_id,
                failed_message.c.status.in_([s.value for s in allowed_from]),
            )
            .values(status=to.value)
        )
        return changed.rowcount == 1

    def add_revision(
        self,
        connection: Connection,
        failure_id: int,
        *,
        body: bytes,
        actor: str,
        reason: str,
        diff: str,
        now: datetime,
    ) -> int:
        """Keep an edited copy beside the original (which is never changed); its id."""
        new_id = connection.execute(
            insert(failed_message_revision)
            .values(
                failed_message_id=failure_id,
                created_at=now,
                actor=actor,
                reason=reason,
                body=body,
                sha256=hashlib.sha256(body).hexdigest(),
                diff=diff,
                replayed_at=None,
            )
            .returning(failed_message_revision.c.id)
        ).scalar_one()
        return int(new_id)

    def mark_revision_replayed(
        self, connection: Connection, revision_id: int, at: datetime
    ) -> None:
        connection.execute(
            update(failed_message_revision)
            .where(failed_message_revision.c.id == revision_id)
            .values(replayed_at=at)
        )


def replay_link(connection: Connection, replay_of: int | None, sha256: str) -> int | None:
    """``replay_of`` if that row exists and ``sha256`` is its body's or an edited copy's."""
    if replay_of is None:
        return None
    row = connection.execute(
        select(failed_message.c.body).where(failed_message.c.id == replay_of)
    ).first()
    if row is None:
        return None
    if hashlib.sha256(bytes(row.body)).hexdigest() == sha256:
        return replay_of
    edited = connection.execute(
        select(literal(1)).where(
            failed_message_revision.c.failed_message_id == replay_of,
            failed_message_revision.c.sha256 == sha256,
        )
    ).first()
    return replay_of if edited is not None else None


def resolve_replays(
    connection: Connection,
    settled: Iterable[tuple[InboundRecord, SettleOutcome]],
    *,
    now: datetime,
) -> list[int]:
    """Mark the rows replayed by settled inputs ``resolved``; the ids resolved (module doc)."""
    resolved: list[int] = []
    for record, outcome in settled:
        if outcome not in _SETTLED:
            continue
        target = replay_link(connection, record.replay_of, record.content_sha256)
        if target is None:
            continue
        if outcome is SettleOutcome.ACCEPTED:
            text = f"the replay took effect (inbox key {record.idempotency_key})"
        else:
            text = (
                f"the replay found it had already taken effect (inbox key "
                f"{record.idempotency_key}); no second effect"
            )
        if _resolve(connection, target, text, now, _RESOLVABLE):
            resolved.append(target)
        resolved += _resolve_ancestors(connection, target, now)
    return resolved


def _resolve(
    connection: Connection, failure_id: int, text: str, now: datetime, states: Sequence[str]
) -> bool:
    changed = connection.execute(
        update(failed_message)
        .where(failed_message.c.id == failure_id, failed_message.c.status.in_(states))
        .values(status=FailureStatus.RESOLVED.value, resolved_at=now, resolution=text)
    )
    return changed.rowcount == 1


def _resolve_ancestors(connection: Connection, failure_id: int, now: datetime) -> list[int]:
    # A replay that failed again left its original "replayed"; the chain ends here too.
    resolved: list[int] = []
    seen = {failure_id}
    child = failure_id
    while True:
        parent = connection.execute(
            select(failed_message.c.replay_of).where(failed_message.c.id == child)
        ).scalar_one_or_none()
        if parent is None or parent in seen:
            return resolved
        seen.add(parent)
        text = f"resolved by the replay of failed message {failure_id}, a later failure of it"
        if not _resolve(connection, parent, text, now, (FailureStatus.REPLAYED.value,)):
            return resolved
        resolved.append(parent)
        child = parent


def _filtered(
    query: Select[Any],
    *,
    route: str | None = None,
    status: FailureStatus | None = None,
    since: datetime | None = None,
    order: str | None = None,
    group: str | None = None,
    ids: Collection[int] | None = None,
) -> Select[Any]:
    if route is not None:
        query = query.where(failed_message.c.route == route)
    if status is not None:
        query = query.where(failed_message.c.status == FailureStatus(status).value)
    if since is not None:
        query = query.where(failed_message.c.last_failed_at >= since)
    if order is not None:
        number = normalise_order_number(order)
        if number is None:
            return query.where(literal(False))
        wrapped = literal(",") + failed_message.c.order_numbers + literal(",")
        query = query.where(wrapped.like(f"%,{_escape_like(number)},%", escape="\\"))
    if group is not None:
        query = query.where(
            failed_message.c.fingerprint.like(f"{_escape_like(group)}%", escape="\\")
        )
    if ids is not None:
        query = query.where(failed_message.c.id.in_(list(ids)))
    return query


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _summary(row: Any) -> FailureSummary:
    findings = findings_from_json(row.findings)
    numbers = row.order_numbers
    return FailureSummary(
        id=int(row.id),
        status=FailureStatus(row.status),
        route=row.route,
        contract=row.contract,
        error_class=row.error_class,
        error_text=row.error_text,
        findings=findings,
        fingerprint=row.fingerprint,
        group_label=failure_fingerprint(row.error_class, row.contract, findings).label,
        order_numbers=tuple(numbers.split(",")) if numbers else (),
        attempts=int(row.attempts),
        first_failed_at=row.first_failed_at,
        last_failed_at=row.last_failed_at,
        replay_of=None if row.replay_of is None else int(row.replay_of),
        resolved_at=row.resolved_at,
        resolution=row.resolution,
        idempotency_key=row.idempotency_key,
    )


def _revision(row: Any) -> Revision:
    values = row._asdict()
    values["body"] = bytes(values["body"])
    return Revision(**values)
