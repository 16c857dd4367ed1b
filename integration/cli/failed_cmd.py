"""``mesbridge failed``: the analyst's commands for parked messages (docs/failed-messages.md).

    failed list [--route R] [--status S] [--since T] [--order N] [--group G] [--json]
    failed groups [--route R] [--status S] [--since T] [--json]
    failed show ID [--full] [--save FILE] [--json]
    failed replay ID... | --group G  --reason TEXT [--force] [--broker URL]
    failed edit ID --file NEW --reason TEXT [--force] [--broker URL]
    failed discard ID... | --group G  --reason TEXT

Exit codes: 0 done; 1 an id does not exist or its status does not allow the
action (each is reported), or the broker did not confirm a replay; 2 a usage
error (a missing or empty ``--reason``, IDs and ``--group`` together, a bad
``--since``) or a configuration error (no audit key with PostgreSQL, the
embedded broker for a replay).

Text that comes from a message (values, payload lines) is printed with
control and format characters escaped, so a hostile payload cannot drive the
analyst's terminal.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from contracts.errors import Finding, MesbridgeError, TransientError
from integration.audit import AuditEntry, AuditTrail, audit_entries, current_actor, load_audit_key
from integration.bootstrap import Components
from integration.broker import Envelope, PublishResult
from integration.cli.publishing import (
    check_broker_url,
    inbound_publisher,
    inbound_topology,
    publish_with_progress,
)
from integration.edits import decode_for_display
from integration.intake import read_message
from integration.replay import ActionResult, FailureActions, subject_of
from integration.store import (
    FailedMessages,
    FailureDetail,
    FailureGroup,
    FailureStatus,
    FailureSummary,
    Store,
)

__all__ = ["failed"]

EXIT_OK, EXIT_REFUSED = 0, 1
DEFAULT_LIMIT = 1000
# Payloads longer than this are shown around the marked lines unless --full.
_FULL_PAYLOAD_LINES = 400
_CONTEXT_LINES = 5
_GROUP = re.compile(r"[0-9a-f]{4,64}")
_RELATIVE = re.compile(r"(\d+)\s*([mhdw])")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


# -- option parsing -----------------------------------------------------------------------


def _parse_since(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> datetime | None:
    if value is None:
        return None
    relative = _RELATIVE.fullmatch(value.strip())
    if relative:
        amount, unit = int(relative.group(1)), _UNITS[relative.group(2)]
        return datetime.now(UTC) - timedelta(**{unit: amount})
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is neither a duration (30m, 12h, 7d, 2w) nor an ISO 8601 time "
            "(2026-05-01, 2026-05-01T08:00:00Z)"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # documented: a time without zone is UTC
    return parsed.astimezone(UTC)


def _check_group(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    group = value.strip().lower()
    if not _GROUP.fullmatch(group):
        raise click.BadParameter(
            f"{value!r} is not a group; give its fingerprint (at least 4 of its hex digits, "
            "as `mesbridge failed groups` shows it)"
        )
    return group


def _require_reason(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("give the reason (it goes into the audit trail)")
    return value.strip()


# Options shared by the commands that act on failed messages.
_reason_option = click.option(
    "--reason",
    required=True,
    callback=_require_reason,
    help="Why (recorded in the audit trail); required.",
)


_Command = TypeVar("_Command", bound=Callable[..., object])


def _targets(command: _Command) -> _Command:
    """``[ID]...`` and ``--group G``: the messages a command acts on."""
    command = click.option(
        "--group", callback=_check_group, metavar="G", help="Every parked message of G."
    )(command)
    return click.argument("ids", nargs=-1, metavar="[ID]...", type=click.IntRange(min=1))(command)


_STATUS = click.Choice([status.value for status in FailureStatus])


def _status(value: str | None) -> FailureStatus | None:
    return None if value is None else FailureStatus(value)


def _ids_or_group(ids: Sequence[int], group: str | None) -> None:
    if ids and group:
        raise click.UsageError("give failed-message IDs or --group G, not both")
    if not ids and not group:
        raise click.UsageError("give one or more failed-message IDs, or --group G")


# -- plumbing -----------------------------------------------------------------------------


@contextmanager
def _failed_messages(components: Components) -> Iterator[FailedMessages]:
    store = Store.connect(components.settings.database_url)
    try:
        yield FailedMessages(store.engine)
    finally:
        store.close()


def _actions(components: Components, failed: FailedMessages, key: bytes) -> FailureActions:
    return FailureActions(
        failed,
        AuditTrail(failed.engine, key),
        actor=current_actor(),
        limits=components.limits,
    )


def _instant(value: datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _shown(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _safe(text: str, *, newlines: bool = False) -> str:
    """``text`` with control and format characters as escapes (tabs kept, and newlines if asked)."""
    out: list[str] = []
    for char in text:
        if char == "\t" or (newlines and char == "\n"):
            out.append(char)
        elif unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co"):
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(char)
    return "".join(out)


def _finding_json(finding: Finding) -> dict[str, object]:
    return {
        "where": finding.where,
        "line": finding.line,
        "value": finding.value,
        "expected": finding.expected,
    }


def _summary_json(item: FailureSummary) -> dict[str, object]:
    return {
        "id": item.id,
        "status": item.status.value,
        "route": item.route,
        "contract": item.contract,
        "error": item.error_text,
        "error_class": item.error_class,
        "field": item.field,
        "findings": [_finding_json(f) for f in item.findings],
        "first_failed_at": _instant(item.first_failed_at),
        "last_failed_at": _instant(item.last_failed_at),
        "attempts": item.attempts,
        "fingerprint": item.fingerprint,
        "group": item.group_label,
        "order_numbers": list(item.order_numbers),
        "idempotency_key": item.idempotency_key,
        "replay_of": item.replay_of,
        "resolved_at": _instant(item.resolved_at),
        "resolution": item.resolution,
    }


def _emit_json(value: object) -> None:
    click.echo(json.dumps(value, ensure_ascii=False, indent=2))


def _table(rows: Sequence[Sequence[str]], *, right: frozenset[int] = frozenset()) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
    return lines


def _report(outcomes: Sequence[ActionResult], *, verb: str) -> NoReturn:
    for outcome in outcomes:
        seq = f" (audit entry {outcome.audit_seq})" if outcome.audit_seq else ""
        if outcome.ok:
            click.echo(f"{outcome.failure_id}: {outcome.detail}{seq}")
        else:
            click.echo(f"{outcome.failure_id}: not {verb}: {outcome.detail}", err=True)
    done = sum(1 for outcome in outcomes if outcome.ok)
    click.echo(f"{verb} {done} of {len(outcomes)}", err=True)
    raise SystemExit(EXIT_OK if done == len(outcomes) else EXIT_REFUSED)


# -- the commands -------------------------------------------------------------------------


@click.group()
def failed() -> None:
    """Parked messages: find them, see why they failed, replay, edit or discard them."""


@failed.command(name="list")
@click.option("--route", help="Only this route (e.g. process-order).")
@click.option("--status", type=_STATUS, help="Only this status (default: every status).")
@click.option(
    "--since",
    callback=_parse_since,
    metavar="T",
    help="Only failures at or after T: 30m, 12h, 7d, or ISO 8601 (without a zone, UTC).",
)
@click.option("--order", metavar="N", help="Only messages about process order N (zeros optional).")
@click.option("--group", callback=_check_group, metavar="G", help="Only failure group G.")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=DEFAULT_LIMIT,
    show_default=True,
    help="At most this many, the most recent first (the count of the rest is reported).",
)
@click.option("--json", "as_json", is_flag=True, help="A JSON list of objects on stdout.")
@click.pass_obj
def list_failed(
    components: Components,
    *,
    route: str | None,
    status: str | None,
    since: datetime | None,
    order: str | None,
    group: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """List failed messages, the most recent failure first."""
    filters: dict[str, Any] = {
        "route": route,
        "status": _status(status),
        "since": since,
        "order": order,
        "group": group,
    }
    with _failed_messages(components) as store:
        items = store.find(**filters, limit=limit)
        total = store.count(**filters) if len(items) == limit else len(items)
    if total > len(items):
        click.echo(
            f"showing the {len(items)} most recent of {total}; use --limit or filters for more",
            err=True,
        )
    if as_json:
        _emit_json([_summary_json(item) for item in items])
        return
    if not items:
        click.echo("no failed messages match", err=True)
        return
    header = ("ID", "STATUS", "ROUTE", "CONTRACT", "FIRST FAILED (UTC)", "ATT", "GROUP")
    rows = [
        (
            str(item.id),
            item.status.value,
            _safe(item.route),
            _safe(item.contract or "-"),
            _shown(item.first_failed_at),
            str(item.attempts),
            item.fingerprint,
        )
        for item in items
    ]
    lines = _table([header, *rows], right=frozenset({0, 5}))
    click.echo(lines[0])
    for line, item in zip(lines[1:], items, strict=True):
        click.echo(line)
        click.echo(f"    {item.error_class}: {_safe(item.error_summary)}")


@failed.command()
@click.option("--route", help="Only this route.")
@click.option("--status", type=_STATUS, help="Only this status (default: every status).")
@click.option("--since", callback=_parse_since, metavar="T", help="As for `failed list`.")
@click.option("--json", "as_json", is_flag=True, help="A JSON list of objects on stdout.")
@click.pass_obj
def groups(
    components: Components,
    route: str | None,
    status: str | None,
    since: datetime | None,
    as_json: bool,
) -> None:
    """Failures grouped by fingerprint (error class + contract + field), the largest first."""
    with _failed_messages(components) as store:
        found = store.groups(route=route, status=_status(status), since=since)
    if as_json:
        _emit_json([_group_json(group) for group in found])
        return
    if not found:
        click.echo("no failed messages match", err=True)
        return
    header = ("GROUP", "COUNT", "STATUSES", "LAST FAILED (UTC)", "ROUTES")
    rows = [
        (
            group.fingerprint,
            str(group.count),
            ", ".join(f"{name} {n}" for name, n in group.statuses.items()),
            _shown(group.last_failed_at),
            _safe(", ".join(group.routes)),
        )
        for group in found
    ]
    lines = _table([header, *rows], right=frozenset({1}))
    click.echo(lines[0])
    for line, group in zip(lines[1:], found, strict=True):
        click.echo(line)
        click.echo(f"    {_safe(group.label)}")


def _group_json(group: FailureGroup) -> dict[str, object]:
    return {
        "fingerprint": group.fingerprint,
        "label": group.label,
        "count": group.count,
        "statuses": dict(group.statuses),
        "routes": list(group.routes),
        "first_failed_at": _instant(group.first_failed_at),
        "last_failed_at": _instant(group.last_failed_at),
    }


@failed.command()
@click.argument("failure_id", metavar="ID", type=click.IntRange(min=1))
@click.option("--full", is_flag=True, help="Show every payload line, however long.")
@click.option(
    "--save",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write the message's current bytes (the newest edited copy, else the original) to FILE.",
)
@click.option("--json", "as_json", is_flag=True, help="The message, its edits and history as JSON.")
@click.pass_obj
def show(
    components: Components, failure_id: int, full: bool, save: Path | None, as_json: bool
) -> None:
    """Show why a message failed, its payload with the offending lines marked, its history."""
    with _failed_messages(components) as store:
        detail = store.get(failure_id)
        history = [] if detail is None else _history(store, detail)
    if detail is None:
        click.echo(f"mesbridge failed show: no failed message {failure_id}", err=True)
        raise SystemExit(EXIT_REFUSED)
    if save is not None:
        save.write_bytes(detail.current_body)
        click.echo(f"saved {len(detail.current_body)} bytes to {save}", err=True)
    if as_json:
        _emit_json(_detail_json(detail, history))
        return
    for line in _render_detail(detail, history, full=full):
        click.echo(line)


@dataclass(frozen=True, slots=True)
class _Event:
    at: datetime
    text: str


def _history(store: FailedMessages, detail: FailureDetail) -> list[_Event]:
    summary = detail.summary
    events = [_Event(summary.first_failed_at, f"failed: {summary.error_class}, attempt 1")]
    if summary.attempts > 1 or summary.last_failed_at != summary.first_failed_at:
        events.append(_Event(summary.last_failed_at, f"failed, attempt {summary.attempts}"))
    subject = subject_of(summary.id)
    for entry in audit_entries(store.engine, since=summary.first_failed_at):
        if entry.subject == subject:
            events.append(_Event(entry.recorded_at, _audit_text(entry)))
    for later in detail.replay_failures:
        events.append(
            _Event(
                later.first_failed_at,
                f"its replay failed again as failed message {later.id} ({later.status.value}): "
                f"{later.error_class}: {later.error_summary}",
            )
        )
    if summary.resolved_at is not None:
        events.append(_Event(summary.resolved_at, f"resolved: {summary.resolution}"))
    events.sort(key=lambda event: event.at)
    return events


def _audit_text(entry: AuditEntry) -> str:
    details = entry.details
    text = f"{entry.action.value} by {entry.actor} (audit entry {entry.seq}): {entry.reason}"
    revision = details.get("revision")
    if entry.action.value == "edit":
        text += f"; kept as revision {revision}"
        fields = details.get("fields")
        if isinstance(fields, list):
            for change in fields:
                if isinstance(change, dict):
                    text += (
                        f"\n      {change.get('where')}: {change.get('old')!r} → "
                        f"{change.get('new')!r}"
                    )
    elif entry.action.value == "replay":
        sent = f"edited copy (revision {revision})" if revision else "original"
        text += f"; sent the {sent} to {details.get('exchange')} {details.get('routing_key')}"
    return text


def _detail_json(detail: FailureDetail, history: Sequence[_Event]) -> dict[str, object]:
    text, encoding = decode_for_display(detail.body)
    return {
        **_summary_json(detail.summary),
        "headers": dict(detail.headers),
        "body_sha256": detail.body_sha256,
        "body_encoding": encoding,
        "body": text,
        "revisions": [
            {
                "id": revision.id,
                "created_at": _instant(revision.created_at),
                "actor": revision.actor,
                "reason": revision.reason,
                "sha256": revision.sha256,
                "diff": revision.diff,
                "replayed_at": _instant(revision.replayed_at),
            }
            for revision in detail.revisions
        ],
        "replay_failures": [item.id for item in detail.replay_failures],
        "history": [{"at": _instant(event.at), "event": event.text} for event in history],
    }


def _render_detail(detail: FailureDetail, history: Sequence[_Event], *, full: bool) -> list[str]:
    summary = detail.summary
    lines = [f"Failed message {summary.id}: {summary.status.value}"]
    facts = [
        ("route", f"{summary.route} (routing key {detail.headers.get('routing_key', '?')})"),
        ("contract", summary.contract or "(not identified)"),
        ("group", f"{summary.fingerprint}  {summary.group_label}"),
        ("orders", ", ".join(summary.order_numbers) or "-"),
        ("idempotency key", summary.idempotency_key or "-"),
        ("attempts", str(summary.attempts)),
        ("first failed", _shown(summary.first_failed_at)),
        ("last failed", _shown(summary.last_failed_at)),
    ]
    if summary.replay_of is not None:
        facts.append(("replay of", f"failed message {summary.replay_of}"))
    if detail.replay_failures:
        ids = ", ".join(str(item.id) for item in detail.replay_failures)
        facts.append(("failed again as", ids))
    if summary.resolved_at is not None:
        facts.append(("resolved", f"{_shown(summary.resolved_at)}: {summary.resolution}"))
    lines += [f"  {name:<16} {_safe(value)}" for name, value in facts]
    lines += ["", f"Error ({summary.error_class})"]
    lines += [f"  {line}" for line in _safe(summary.error_text, newlines=True).splitlines()]
    lines += ["", "Headers"]
    lines += [f"  {_safe(key)}: {_safe(value)}" for key, value in sorted(detail.headers.items())]
    text, encoding = decode_for_display(detail.body)
    lines += [
        "",
        f"Payload (original, {len(detail.body)} bytes, {encoding}, sha256 {detail.body_sha256})",
    ]
    lines += _payload(text, summary.findings, full=full)
    for revision in detail.revisions:
        replayed = f", replayed {_shown(revision.replayed_at)}" if revision.replayed_at else ""
        lines += [
            "",
            f"Edited copy: revision {revision.id} by {_safe(revision.actor)}, "
            f"{_shown(revision.created_at)}{replayed} (sha256 {revision.sha256})",
            f"  reason: {_safe(revision.reason)}",
        ]
        lines += [f"  {line}" for line in _safe(revision.diff, newlines=True).splitlines()]
    lines += ["", "History (UTC)"]
    for event in history:
        lines.append(f"  {_shown(event.at)}  {_safe(event.text, newlines=True)}")
    return lines


def _payload(text: str, findings: Sequence[Finding], *, full: bool) -> list[str]:
    source = text.splitlines() or [""]
    marks: dict[int, list[Finding]] = {}
    for finding in findings:
        if finding.line is not None and 1 <= finding.line <= len(source):
            marks.setdefault(finding.line, []).append(finding)
    shown = set(range(1, len(source) + 1))
    if not full and len(source) > _FULL_PAYLOAD_LINES:
        shown = set(range(1, 21))
        for marked in marks:
            shown |= set(range(marked - _CONTEXT_LINES, marked + _CONTEXT_LINES + 1))
        shown &= set(range(1, len(source) + 1))
    width = len(str(len(source)))
    out: list[str] = []
    skipped = 0
    for number, line in enumerate(source, start=1):
        if number not in shown:
            skipped += 1
            continue
        if skipped:
            out.append(f"     … {skipped} line(s) not shown (--full shows every line)")
            skipped = 0
        marker = ">>" if number in marks else "  "
        out.append(f"  {marker} {number:>{width}}  {_safe(line)}")
        for finding in marks.get(number, ()):
            out.append(f"  {'':>2} {'':>{width}}  ^ {_safe(str(finding))}")
    if skipped:
        out.append(f"     … {skipped} line(s) not shown (--full shows every line)")
    unplaced = [f for f in findings if f.line is None or f.line not in marks]
    for finding in unplaced:
        out.append(f"  (no line) {_safe(str(finding))}")
    return out


@failed.command()
@_targets
@_reason_option
@click.option(
    "--force",
    is_flag=True,
    help="Also replay messages replayed before (a message that took effect has no second effect).",
)
@click.option("--broker", "broker_url", help="Broker URL (default: MESBRIDGE_BROKER_URL).")
@click.pass_obj
def replay(
    components: Components,
    *,
    ids: tuple[int, ...],
    group: str | None,
    reason: str,
    force: bool,
    broker_url: str | None,
) -> None:
    """Republish failed messages to the inbound exchange with x-replay-of.

    The original bytes are sent (or the newest edited copy), with the original routing key
    and message id; the status becomes replayed once the broker confirmed, and resolved when
    the service has settled the replay.
    """
    _ids_or_group(ids, group)
    settings = components.settings
    url = broker_url or settings.broker_url
    check_broker_url(url)
    key = load_audit_key(settings)
    with _failed_messages(components) as store:
        wanted = list(ids)
        if group is not None:
            wanted = store.ids(group=group, status=FailureStatus.PARKED)
            if force:
                wanted += store.ids(group=group, status=FailureStatus.REPLAYED)
            if not wanted:
                click.echo(f"mesbridge failed replay: no parked message in group {group}", err=True)
                raise SystemExit(EXIT_REFUSED)
        actions = _actions(components, store, key)
        outcomes = _replay(
            actions,
            sorted(wanted) if group else wanted,
            url,
            prefix=settings.topology_prefix,
            reason=reason,
            force=force,
            group=group,
        )
    _report(outcomes, verb="replayed")


def _replay(
    actions: FailureActions,
    ids: Sequence[int],
    url: str,
    *,
    prefix: str,
    reason: str,
    force: bool,
    group: str | None = None,
) -> list[ActionResult]:
    topology = inbound_topology(prefix)

    def publish(
        envelopes: Sequence[Envelope], on_batch: Callable[[int, Sequence[PublishResult]], None]
    ) -> None:
        with inbound_publisher(url, topology) as publisher:
            publish_with_progress(
                publisher,
                envelopes,
                label=f"replaying {len(envelopes)}",
                file=sys.stderr,
                on_batch=on_batch,
            )

    try:
        return actions.replay(
            ids,
            exchange=topology.inbound_exchange,
            publish=publish,
            reason=reason,
            force=force,
            details={"group": group} if group else None,
        )
    except TransientError as exc:
        # What the broker confirmed before is recorded (status and audit entry, per batch).
        click.echo(
            f"mesbridge failed replay: {exc}; messages confirmed before this are recorded, "
            "run the replay again for the rest (`mesbridge failed list --status parked`)",
            err=True,
        )
        raise SystemExit(EXIT_REFUSED) from None


@failed.command()
@click.argument("failure_id", metavar="ID", type=click.IntRange(min=1))
@click.option(
    "--file",
    "new_file",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The corrected message (e.g. from `failed show ID --save FILE`, then edited).",
)
@_reason_option
@click.option("--force", is_flag=True, help="Also edit a message that was replayed before.")
@click.option("--broker", "broker_url", help="Broker URL (default: MESBRIDGE_BROKER_URL).")
@click.pass_obj
def edit(
    components: Components,
    *,
    failure_id: int,
    new_file: Path,
    reason: str,
    force: bool,
    broker_url: str | None,
) -> None:
    """Keep a corrected copy beside the original (with the diff), then replay it.

    The copy must pass the checks the service makes first (guard, contract, schema);
    otherwise nothing is kept. The original bytes are never changed.
    """
    settings = components.settings
    url = broker_url or settings.broker_url
    check_broker_url(url)
    key = load_audit_key(settings)
    body = new_file.read_bytes()
    try:
        components.translator().accept(
            read_message(body, source=str(new_file), limits=components.limits)
        )
    except MesbridgeError as exc:
        click.echo(
            f"mesbridge failed edit: {new_file} would fail again; nothing kept:\n"
            f"{_safe(str(exc), newlines=True)}",
            err=True,
        )
        raise SystemExit(EXIT_REFUSED) from None
    with _failed_messages(components) as store:
        actions = _actions(components, store, key)
        kept = actions.edit(
            failure_id, body=body, reason=reason, source_name=str(new_file), force=force
        )
        if not kept.ok:
            _report([kept], verb="edited")
        click.echo(f"{failure_id}: {kept.detail} (audit entry {kept.audit_seq})")
        outcomes = _replay(
            actions,
            [failure_id],
            url,
            prefix=settings.topology_prefix,
            reason=reason,
            force=force,
        )
    _report(outcomes, verb="replayed")


@failed.command()
@_targets
@_reason_option
@click.pass_obj
def discard(components: Components, ids: tuple[int, ...], group: str | None, reason: str) -> None:
    """Close parked messages without replay (final); the reason is required and audited."""
    _ids_or_group(ids, group)
    key = load_audit_key(components.settings)
    with _failed_messages(components) as store:
        wanted = list(ids) if group is None else store.ids(group=group, status=FailureStatus.PARKED)
        if not wanted:
            click.echo(f"mesbridge failed discard: no parked message in group {group}", err=True)
            raise SystemExit(EXIT_REFUSED)
        actions = _actions(components, store, key)
        outcomes = [actions.discard(i, reason=reason) for i in dict.fromkeys(wanted)]
    _report(outcomes, verb="discarded")
