"""``mesbridge audit verify | export`` and ``mesbridge purge``: the audit trail and retention.

Exit codes: 0 success (the trail is intact); 1 the trail is broken, or the
operator declined; 2 misconfigured (no audit key with PostgreSQL, an
unreadable key file) or a wrong option (``--reason`` missing, bad ``--since``).
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import click
from sqlalchemy import Connection

from integration.audit import (
    AuditAction,
    AuditEntry,
    AuditTrail,
    audit_entries,
    canonical_json,
    current_actor,
    load_audit_key,
)
from integration.bootstrap import Components
from integration.store import Store
from integration.store.retention import PurgeResult, purge_processed

__all__ = ["EXPORT_FIELDS", "audit", "purge"]

EXPORT_FIELDS = (
    "seq",
    "recorded_at",
    "actor",
    "action",
    "subject",
    "reason",
    "before_sha256",
    "after_sha256",
    "details",
    "prev_mac",
    "mac",
)


@contextmanager
def _store(components: Components) -> Iterator[Store]:
    store = Store.connect(components.settings.database_url)
    try:
        yield store
    finally:
        store.close()


@click.group()
def audit() -> None:
    """The GMP audit trail: verify its HMAC chain, export it for review."""


@audit.command()
@click.option(
    "--expect-at-least",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Fail unless the trail holds at least N entries (a removed tail is otherwise unseen).",
)
@click.pass_obj
def verify(components: Components, expect_at_least: int) -> None:
    """Check every entry's MAC and its link to the one before.

    Exit 0 when intact, 1 naming the first broken entry when a row was changed,
    deleted or reordered.
    """
    key = load_audit_key(components.settings)
    with _store(components) as store:
        result = AuditTrail(store.engine, key).verify(expect_at_least=expect_at_least)
    if not result.ok:
        click.echo(
            f"audit trail broken at entry {result.first_broken_seq}: {result.problem}", err=True
        )
        raise SystemExit(1)
    click.echo(f"audit trail intact: {result.checked} entries, head seq {result.head_seq or 0}")
    if result.head_mac is not None:
        click.echo(f"head mac {result.head_mac}")


def _parse_since(
    _ctx: click.Context, _param: click.Parameter, value: str | None
) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 date or time, e.g. 2026-05-01 or 2026-05-01T08:00:00Z"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # documented: a time without zone is UTC
    return parsed.astimezone(UTC)


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "seq": entry.seq,
        "recorded_at": entry.recorded_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": entry.actor,
        "action": entry.action.value,
        "subject": entry.subject,
        "reason": entry.reason,
        "before_sha256": entry.before_sha256,
        "after_sha256": entry.after_sha256,
        "details": dict(entry.details),
        "prev_mac": entry.prev_mac,
        "mac": entry.mac,
    }


def _write_csv(entries: Iterator[AuditEntry], out: IO[str]) -> int:
    writer = csv.DictWriter(out, fieldnames=EXPORT_FIELDS, lineterminator="\n")
    writer.writeheader()
    count = 0
    for entry in entries:
        row = _row(entry)
        row["details"] = canonical_json(row["details"])
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
        count += 1
    return count


def _write_json(entries: Iterator[AuditEntry], out: IO[str]) -> int:
    count = 0
    out.write("[")
    for entry in entries:
        out.write(",\n  " if count else "\n  ")
        out.write(json.dumps(_row(entry), ensure_ascii=False, sort_keys=True))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


@audit.command()
@click.option(
    "--since",
    callback=_parse_since,
    metavar="T",
    help="Only entries recorded at or after T (ISO 8601; without a zone, UTC).",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write to FILE instead of standard output.",
)
@click.pass_obj
def export(components: Components, since: datetime | None, fmt: str, out: Path | None) -> None:
    """Write the trail for review: CSV with a header, or a JSON list of objects.

    Reading needs no key; run `mesbridge audit verify` to check the chain.
    """
    write = _write_csv if fmt == "csv" else _write_json
    with _store(components) as store:
        entries = audit_entries(store.engine, since=since)
        if out is None:
            count = write(entries, sys.stdout)
            sys.stdout.flush()
        else:
            with out.open("w", encoding="utf-8", newline="") as handle:
                count = write(entries, handle)
    click.echo(f"exported {count} audit entries" + (f" to {out}" if out else ""), err=True)


def _require_reason(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    if not value.strip():
        raise click.BadParameter("give the reason for the purge (it goes into the audit trail)")
    return value


def _describe(result: PurgeResult) -> str:
    verb = "would purge" if result.dry_run else "purged"
    return (
        f"{verb} {result.inbox_rows} processed inbox keys settled before "
        f"{result.cutoff.isoformat()} and {result.outbox_rows} sent outputs"
    )


@click.command()
@click.option(
    "--reason",
    required=True,
    callback=_require_reason,
    help="Why (recorded in the audit trail); required.",
)
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def purge(components: Components, reason: str, dry_run: bool, yes: bool) -> None:
    """Delete processed inbox keys older than the replay window, with their sent outputs.

    Keys settled before now minus MESBRIDGE_REPLAY_WINDOW_DAYS (default 400) go;
    a key whose output is not sent yet stays (reported). Failed messages and the
    audit trail are never purged. One `purge` entry goes into the audit trail.
    """
    settings = components.settings
    key = None if dry_run else load_audit_key(settings)
    window = settings.replay_window_days
    cutoff = datetime.now(UTC) - timedelta(days=window)
    with _store(components) as store:
        plan = purge_processed(store.engine, before=cutoff, dry_run=True)
        click.echo(_describe(plan))
        _report_kept(plan)
        if dry_run:
            return
        assert key is not None
        if plan.inbox_rows == 0:
            click.echo("nothing to purge; nothing recorded")
            return
        if not yes:
            click.confirm(f"purge these {plan.inbox_rows} inbox keys?", abort=True)
        trail = AuditTrail(store.engine, key)
        recorded: list[int] = []

        def record(connection: Connection, result: PurgeResult) -> None:
            if result.inbox_rows == 0:
                return
            entry = trail.record(
                actor=current_actor(),
                action=AuditAction.PURGE,
                subject="inbox",
                reason=reason,
                before_sha256=result.keys_sha256,
                after_sha256=None,
                details={
                    "cutoff": result.cutoff,
                    "replay_window_days": window,
                    "inbox_rows": result.inbox_rows,
                    "outbox_rows": result.outbox_rows,
                    "kept_unsent": result.kept_unsent,
                    "kept_unsent_keys": list(result.kept_unsent_keys),
                },
                connection=connection,
            )
            recorded.append(entry.seq)

        with click.progressbar(length=plan.inbox_rows, label="purging", file=sys.stderr) as bar:
            result = purge_processed(
                store.engine, before=cutoff, progress=bar.update, on_purged=record
            )
    click.echo(_describe(result))
    if recorded:
        click.echo(f"recorded as audit entry {recorded[0]}")


def _report_kept(result: PurgeResult) -> None:
    if result.kept_unsent:
        shown = ", ".join(result.kept_unsent_keys)
        more = "" if result.kept_unsent <= len(result.kept_unsent_keys) else ", …"
        click.echo(
            f"kept {result.kept_unsent} keys whose outputs are not sent yet: {shown}{more}",
            err=True,
        )
