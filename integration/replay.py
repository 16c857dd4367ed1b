"""The analyst's actions on failed messages: replay, edit and discard, each one audited.

Every action changes the failed message's row and appends its audit entry
(``integration.audit``, subject ``failed_message:<id>``) in ONE transaction,
so neither exists without the other.

Replay (``plan_replay`` → publish → ``record_replays``):

1. The messages are checked first: only ``parked`` ones are replayed, and
   ``replayed`` ones with ``force`` (a replay that was lost, or that failed
   again and should be sent once more); ``resolved`` and ``discarded`` never.
2. The caller publishes the envelopes to the inbound exchange with the
   original routing key and message id, header ``x-replay-of: <id>``, and
   waits for the broker's confirms.
3. Only for a confirmed message: status ``replayed`` + a ``replay`` audit
   entry. An unconfirmed one changes nothing and is reported.

What is sent is the newest edited copy if there is one, else the original
bytes. The consumer treats a replay like any input: its idempotency key
decides, so a message that had already taken effect is a DUPLICATE and has
no second effect; either way the failed message becomes ``resolved``
(``integration.store.failed``). A replay that fails again is parked as a new
row pointing back with ``replay_of``.

Edit (``edit``): the new bytes are kept as a revision beside the original
(never overwritten), with a unified diff, in the same transaction as an
``edit`` audit entry carrying the SHA-256 before and after and the changed
fields with old and new values. The caller then replays it.

Discard (``discard``): ``parked`` → ``discarded`` (final) with a reason.

Failure modes: an unreachable database raises ``TransientError``; a refused
action is an ``ActionResult`` with ``ok=False`` and the reason, never an
exception.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from integration.audit import AuditAction, AuditTrail
from integration.broker import Envelope, PublishResult
from integration.edits import field_changes, text_diff
from integration.intake import IntakeLimits
from integration.store.failed import FailedMessages, FailureDetail, FailureStatus

__all__ = [
    "MAX_FIELD_CHANGES_AUDITED",
    "REPLAY_HEADER",
    "ActionResult",
    "FailureActions",
    "PlannedReplay",
    "Publish",
    "subject_of",
]

REPLAY_HEADER = "x-replay-of"
REVISION_HEADER = "x-mesbridge-revision"
# The audit entry lists this many changed fields; the revision's diff always holds them all.
MAX_FIELD_CHANGES_AUDITED = 200

# Kept by the pipeline beside the AMQP headers; sent as message properties, not headers.
_PROPERTY_KEYS = frozenset({"routing_key", "message_id", "content_type"})
# Bookkeeping of an earlier delivery (retries, dead-lettering, a previous replay).
_DROPPED_PREFIXES = (
    "x-death",
    "x-delivery-count",
    "x-first-death-",
    "x-last-death-",
    "x-mesbridge-",
)


# publish(envelopes, on_batch): publishes with confirms, calling on_batch(start, results).
Publish = Callable[[Sequence[Envelope], Callable[[int, Sequence[PublishResult]], None]], object]


def subject_of(failure_id: int) -> str:
    """The audit trail's name for a failed message."""
    return f"failed_message:{failure_id}"


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionResult:
    """What became of one requested action on one failed message."""

    failure_id: int
    ok: bool
    detail: str
    audit_seq: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PlannedReplay:
    """A failed message checked for replay, with the envelope to publish."""

    failure_id: int
    status: FailureStatus
    envelope: Envelope
    revision_id: int | None
    original_sha256: str
    sent_sha256: str


class FailureActions:
    """Replay, edit and discard failed messages on behalf of ``actor``."""

    def __init__(
        self,
        failed: FailedMessages,
        trail: AuditTrail,
        *,
        actor: str,
        limits: IntakeLimits | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._failed = failed
        self._trail = trail
        self._actor = actor
        self._limits = limits or IntakeLimits()
        self._clock = clock

    # -- replay ---------------------------------------------------------------------------

    def replay(
        self,
        failure_ids: Sequence[int],
        *,
        exchange: str,
        publish: Publish,
        reason: str,
        force: bool = False,
        details: Mapping[str, object] | None = None,
    ) -> list[ActionResult]:
        """Plan, publish (``publish(envelopes, on_batch)``) and record: one result per id.

        ``publish`` must call ``on_batch(start, results)`` after each confirmed batch;
        each batch is recorded before the next is published.
        """
        planned, refused = self.plan_replay(failure_ids, exchange=exchange, force=force)
        recorded = {outcome.failure_id: outcome for outcome in refused}

        def on_batch(start: int, results: Sequence[PublishResult]) -> None:
            batch = planned[start : start + len(results)]
            for outcome in self.record_replays(
                batch, results, reason=reason, force=force, details=details
            ):
                recorded[outcome.failure_id] = outcome

        if planned:
            publish([item.envelope for item in planned], on_batch)
        for item in planned:
            recorded.setdefault(
                item.failure_id,
                ActionResult(
                    failure_id=item.failure_id, ok=False, detail="not confirmed by the broker"
                ),
            )
        return [recorded[i] for i in dict.fromkeys(failure_ids)]

    def plan_replay(
        self, failure_ids: Iterable[int], *, exchange: str, force: bool = False
    ) -> tuple[list[PlannedReplay], list[ActionResult]]:
        """The replays to publish, and the refused ids with the reason; nothing is changed."""
        planned: list[PlannedReplay] = []
        refused: list[ActionResult] = []
        seen: set[int] = set()
        for failure_id in failure_ids:
            if failure_id in seen:
                continue
            seen.add(failure_id)
            detail = self._failed.get(failure_id)
            problem = _replay_problem(detail, force=force)
            if problem is not None or detail is None:
                refused.append(ActionResult(failure_id=failure_id, ok=False, detail=str(problem)))
                continue
            planned.append(_plan(detail, exchange))
        return planned, refused

    def record_replays(
        self,
        planned: Sequence[PlannedReplay],
        results: Sequence[PublishResult],
        *,
        reason: str,
        force: bool = False,
        details: Mapping[str, object] | None = None,
    ) -> list[ActionResult]:
        """After publishing ``planned``: status and audit for each confirmed message."""
        outcomes: list[ActionResult] = []
        for item, result in zip(planned, results, strict=True):
            if result is not PublishResult.CONFIRMED:
                outcomes.append(
                    ActionResult(
                        failure_id=item.failure_id,
                        ok=False,
                        detail=(
                            f"not replayed: the broker answered {result.value} for routing key "
                            f"{item.envelope.routing_key} on {item.envelope.exchange}; "
                            "nothing changed"
                        ),
                    )
                )
                continue
            outcomes.append(self._record_replay(item, reason=reason, force=force, extra=details))
        return outcomes

    def _record_replay(
        self,
        item: PlannedReplay,
        *,
        reason: str,
        force: bool,
        extra: Mapping[str, object] | None,
    ) -> ActionResult:
        allowed = {FailureStatus.PARKED}
        if force:
            allowed.add(FailureStatus.REPLAYED)
        now = self._clock()
        with self._trail.begin() as connection:
            changed = self._failed.change_status(
                connection, item.failure_id, to=FailureStatus.REPLAYED, allowed_from=allowed
            )
            status = self._failed.status_of(connection, item.failure_id)
            if item.revision_id is not None:
                self._failed.mark_revision_replayed(connection, item.revision_id, now)
            entry = self._trail.record(
                actor=self._actor,
                action=AuditAction.REPLAY,
                subject=subject_of(item.failure_id),
                reason=reason,
                before_sha256=item.original_sha256,
                after_sha256=item.sent_sha256,
                details={
                    **(extra or {}),
                    "exchange": item.envelope.exchange,
                    "routing_key": item.envelope.routing_key,
                    "message_id": item.envelope.message_id,
                    "revision": item.revision_id,
                    "forced": force,
                    "status_before": item.status.value,
                    "status_after": None if status is None else status.value,
                },
                connection=connection,
            )
        sent = f"edited copy (revision {item.revision_id})" if item.revision_id else "original"
        if changed:
            detail = f"replayed the {sent}; status replayed"
        else:
            # The consumer settled it first (resolved), or another analyst acted at once.
            shown = status.value if status else "gone"
            detail = f"replayed the {sent}; status was already {shown}, left so"
        return ActionResult(failure_id=item.failure_id, ok=True, detail=detail, audit_seq=entry.seq)

    # -- edit -----------------------------------------------------------------------------

    def edit(
        self,
        failure_id: int,
        *,
        body: bytes,
        reason: str,
        source_name: str,
        force: bool = False,
    ) -> ActionResult:
        """Keep ``body`` as an edited copy beside the original, audited; nothing is sent."""
        detail = self._failed.get(failure_id)
        problem = _replay_problem(detail, force=force, action="edit")
        if problem is not None or detail is None:
            return ActionResult(failure_id=failure_id, ok=False, detail=str(problem))
        before = detail.current_sha256
        after = hashlib.sha256(body).hexdigest()
        if before == after:
            return ActionResult(
                failure_id=failure_id,
                ok=False,
                detail=f"{source_name} is identical to the message's current version; nothing kept",
            )
        version = f"revision {detail.revisions[-1].id}" if detail.revisions else "original"
        diff = text_diff(
            detail.current_body,
            body,
            old_name=f"{subject_of(failure_id)} ({version})",
            new_name=source_name,
        )
        changes = field_changes(detail.current_body, body, limits=self._limits)
        audited = None if changes is None else changes[:MAX_FIELD_CHANGES_AUDITED]
        now = self._clock()
        with self._trail.begin() as connection:
            status = self._failed.status_of(connection, failure_id)
            if status is not detail.summary.status:
                return _changed_meanwhile(failure_id, detail.summary.status, status)
            revision_id = self._failed.add_revision(
                connection,
                failure_id,
                body=body,
                actor=self._actor,
                reason=reason,
                diff=diff,
                now=now,
            )
            entry = self._trail.record(
                actor=self._actor,
                action=AuditAction.EDIT,
                subject=subject_of(failure_id),
                reason=reason,
                before_sha256=before,
                after_sha256=after,
                details={
                    "revision": revision_id,
                    "edited": version,
                    "file": source_name,
                    "fields": None if audited is None else [c.as_dict() for c in audited],
                    "fields_changed": None if changes is None else len(changes),
                },
                connection=connection,
            )
        counted = "" if changes is None else f", {len(changes)} field(s) changed"
        return ActionResult(
            failure_id=failure_id,
            ok=True,
            detail=f"edited copy kept as revision {revision_id}{counted}",
            audit_seq=entry.seq,
        )

    # -- discard --------------------------------------------------------------------------

    def discard(self, failure_id: int, *, reason: str) -> ActionResult:
        """``parked`` → ``discarded`` (final), audited; any other status is refused."""
        with self._trail.begin() as connection:
            discarded = self._failed.change_status(
                connection,
                failure_id,
                to=FailureStatus.DISCARDED,
                allowed_from={FailureStatus.PARKED},
            )
            if not discarded:
                status = self._failed.status_of(connection, failure_id)
                return ActionResult(
                    failure_id=failure_id,
                    ok=False,
                    detail="no failed message with this id"
                    if status is None
                    else f"it is {status.value}; only a parked message can be discarded",
                )
            entry = self._trail.record(
                actor=self._actor,
                action=AuditAction.DISCARD,
                subject=subject_of(failure_id),
                reason=reason,
                details={"status_before": "parked", "status_after": "discarded"},
                connection=connection,
            )
        return ActionResult(failure_id=failure_id, ok=True, detail="discarded", audit_seq=entry.seq)


def _replay_problem(
    detail: FailureDetail | None, *, force: bool, action: str = "replay"
) -> str | None:
    if detail is None:
        return "no failed message with this id"
    status = detail.summary.status
    if status is FailureStatus.REPLAYED and not force:
        later = [f.id for f in detail.replay_failures]
        again = f"; its replay failed again as {', '.join(map(str, later))}" if later else ""
        return (
            f"it was replayed already{again}; --force {action}s it again "
            "(a message that took effect has no second effect)"
        )
    if status not in (FailureStatus.PARKED, FailureStatus.REPLAYED):
        return f"it is {status.value}; a {status.value} message is not {action}ed"
    if "routing_key" not in detail.headers:
        return "its routing key was not recorded, so it cannot be replayed to its queue"
    return None


def _changed_meanwhile(
    failure_id: int, was: FailureStatus, now: FailureStatus | None
) -> ActionResult:
    became = "deleted" if now is None else now.value
    return ActionResult(
        failure_id=failure_id,
        ok=False,
        detail=f"it changed from {was.value} to {became} meanwhile; nothing kept",
    )


def _plan(detail: FailureDetail, exchange: str) -> PlannedReplay:
    summary = detail.summary
    revision = detail.revisions[-1] if detail.revisions else None
    body = detail.current_body
    headers: dict[str, str] = {
        key: value
        for key, value in detail.headers.items()
        if key not in _PROPERTY_KEYS
        and key != REPLAY_HEADER
        and not key.lower().startswith(_DROPPED_PREFIXES)
    }
    headers[REPLAY_HEADER] = str(summary.id)
    if revision is not None:
        headers[REVISION_HEADER] = str(revision.id)
    envelope = Envelope(
        exchange=exchange,
        routing_key=detail.headers["routing_key"],
        body=body,
        message_id=detail.headers.get("message_id") or f"failed-message-{summary.id}",
        content_type=detail.headers.get("content_type") or _content_type(body),
        headers=headers,
    )
    return PlannedReplay(
        failure_id=summary.id,
        status=summary.status,
        envelope=envelope,
        revision_id=None if revision is None else revision.id,
        original_sha256=detail.body_sha256,
        sent_sha256=detail.current_sha256,
    )


def _content_type(body: bytes) -> str:
    return "application/json" if body.lstrip()[:1] in (b"{", b"[") else "application/xml"
