"""``mesbridge audit verify | export`` and ``mesbridge purge`` as an operator runs them.

Run on SQLite and PostgreSQL (``database_url`` is parametrised); settings come
from the environment, as in production.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from integration.audit import AuditAction, AuditTrail
from integration.cli import cli
from integration.store import Store

from .conftest import KEY, StepClock, Tamper, fill
from .test_retention import _settle

Invoke = Callable[..., Result]


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "audit.key"
    path.write_bytes(KEY)
    path.chmod(0o600)
    return path


@pytest.fixture
def invoke(database_url: str, key_file: Path) -> Invoke:
    def run(*args: str, input: str | None = None) -> Result:
        env = {"MESBRIDGE_DATABASE_URL": database_url, "MESBRIDGE_AUDIT_KEY_FILE": str(key_file)}
        return CliRunner().invoke(cli, list(args), env=env, input=input)

    return run


def test_verify_passes_on_an_untouched_trail(trail: AuditTrail, invoke: Invoke) -> None:
    fill(trail, 4)

    result = invoke("audit", "verify")

    assert result.exit_code == 0, result.output
    assert "audit trail intact: 4 entries, head seq 4" in result.stdout
    assert f"head mac {trail.head()[1]}" in result.stdout  # type: ignore[index]


TAMPERING = {
    "edited": ("UPDATE audit_entry SET reason = 'rewritten' WHERE seq = 2",),
    "deleted": ("DELETE FROM audit_entry WHERE seq = 2",),
    "reordered": (
        "UPDATE audit_entry SET seq = 1000 WHERE seq = 2",
        "UPDATE audit_entry SET seq = 2 WHERE seq = 3",
        "UPDATE audit_entry SET seq = 3 WHERE seq = 1000",
    ),
}


@pytest.mark.parametrize("kind", sorted(TAMPERING))
def test_verify_fails_after_the_trail_was_changed_in_the_database(
    trail: AuditTrail, tamper: Tamper, invoke: Invoke, kind: str
) -> None:
    fill(trail, 4)

    tamper(*TAMPERING[kind])
    result = invoke("audit", "verify")

    assert result.exit_code == 1, result.output
    assert "audit trail broken at entry 2: " in result.stderr
    assert "intact" not in result.stdout


def test_verify_expect_at_least_sees_a_removed_tail(
    trail: AuditTrail, tamper: Tamper, invoke: Invoke
) -> None:
    fill(trail, 4)
    tamper("DELETE FROM audit_entry WHERE seq = 4")

    assert invoke("audit", "verify").exit_code == 0
    result = invoke("audit", "verify", "--expect-at-least", "4")
    assert result.exit_code == 1
    assert "audit trail broken at entry 4: missing" in result.stderr


def test_an_unreadable_key_file_is_a_configuration_error(tmp_path: Path) -> None:
    env = {
        "MESBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'mesbridge.db'}",
        "MESBRIDGE_AUDIT_KEY_FILE": str(tmp_path / "missing.key"),
    }
    for args in (["audit", "verify"], ["purge", "--reason", "retention", "--yes"]):
        result = CliRunner().invoke(cli, args, env=env)
        assert result.exit_code == 2, result.output
        assert "missing.key" in result.stderr


def test_export_csv_and_json(store: Store, invoke: Invoke, tmp_path: Path) -> None:
    trail = AuditTrail(store.engine, KEY, clock=StepClock())
    fill(trail, 3)  # 08:00:00, 08:00:01, 08:00:02 UTC

    as_csv = invoke("audit", "export", "--since", "2026-05-09T10:00:01+02:00")
    assert as_csv.exit_code == 0, as_csv.output
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [r["seq"] for r in rows] == ["2", "3"]
    assert rows[0]["recorded_at"] == "2026-05-09T08:00:01.000000Z"
    assert rows[0]["details"] == '{"n":2,"note":"größe"}'
    assert rows[1]["after_sha256"] == ""
    assert rows[0]["mac"] == list(trail.entries())[1].mac
    assert "exported 2 audit entries" in as_csv.stderr

    out = tmp_path / "trail.json"
    as_json = invoke("audit", "export", "--format", "json", "--out", str(out))
    assert as_json.exit_code == 0, as_json.output
    exported = json.loads(out.read_text("utf-8"))
    assert [e["seq"] for e in exported] == [1, 2, 3]
    assert exported[0]["details"] == {"n": 1, "note": "größe"}
    assert set(exported[0]) == {
        "seq", "recorded_at", "actor", "action", "subject", "reason",
        "before_sha256", "after_sha256", "details", "prev_mac", "mac",
    }  # fmt: skip

    naive = invoke("audit", "export", "--since", "2026-05-09 08:00:02", "--format", "json")
    assert [e["seq"] for e in json.loads(naive.stdout)] == [3]  # no zone: UTC
    bad = invoke("audit", "export", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "not an ISO 8601" in bad.stderr


def _inbox_keys(store: Store) -> set[str]:
    with store.engine.connect() as connection:
        return set(connection.execute(text("SELECT idempotency_key FROM inbox")).scalars())


@pytest.fixture
def aged(store: Store, database_url: str) -> Store:
    now = datetime.now(UTC)
    _settle(database_url, now - timedelta(days=401), ["old-1", "old-2"], send=True)
    _settle(database_url, now - timedelta(days=500), ["old-unsent"], send=False)
    _settle(database_url, now - timedelta(days=399), ["in-window"], send=True)
    return store


def test_purge_needs_a_reason(aged: Store, invoke: Invoke) -> None:
    for args in (["purge", "--yes"], ["purge", "--yes", "--reason", "  "]):
        result = invoke(*args)
        assert result.exit_code == 2, result.output
        assert "reason" in result.stderr
    assert len(_inbox_keys(aged)) == 4


def test_purge_dry_run_and_declined_change_nothing(aged: Store, invoke: Invoke) -> None:
    dry = invoke("purge", "--reason", "annual retention", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "would purge 2 processed inbox keys" in dry.stdout
    assert "and 4 sent outputs" in dry.stdout
    assert "kept 1 keys whose outputs are not sent yet: old-unsent" in dry.stderr

    declined = invoke("purge", "--reason", "annual retention", input="n\n")
    assert declined.exit_code == 1

    assert len(_inbox_keys(aged)) == 4
    assert AuditTrail(aged.engine, KEY).head() is None


def test_purge_deletes_and_is_audited(aged: Store, invoke: Invoke) -> None:
    result = invoke("purge", "--reason", "annual retention SOP-042", "--yes")

    assert result.exit_code == 0, result.output
    assert "purged 2 processed inbox keys" in result.stdout
    assert "recorded as audit entry 1" in result.stdout
    assert _inbox_keys(aged) == {"old-unsent", "in-window"}
    trail = AuditTrail(aged.engine, KEY)
    (entry,) = trail.entries()
    assert (entry.action, entry.subject, entry.reason) == (
        AuditAction.PURGE,
        "inbox",
        "annual retention SOP-042",
    )
    assert entry.before_sha256 is not None and entry.after_sha256 is None
    assert entry.details["inbox_rows"] == 2
    assert entry.details["outbox_rows"] == 4
    assert entry.details["kept_unsent_keys"] == ["old-unsent"]
    assert entry.details["replay_window_days"] == 400
    assert invoke("audit", "verify").exit_code == 0

    nothing = invoke("purge", "--reason", "again", "--yes")
    assert nothing.exit_code == 0
    assert "nothing to purge" in nothing.stdout
    assert len(list(trail.entries())) == 1
