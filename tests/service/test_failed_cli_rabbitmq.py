"""``mesbridge failed`` end to end: the service on RabbitMQ, the CLI in processes of its own.

The in-process broker lives inside one process, so this needs RabbitMQ: the
analyst's commands run as ``python -m integration failed …`` against the
service's database and broker, as on a real installation.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from integration.store import FailedMessages, FailureStatus
from tests.service.conftest import Harness
from tests.service.test_failed_replay import (
    INVALID,
    _orders_in,
    _park_one,
    _status,
    park_fixed_order,
)
from tests.store.conftest import pg_admin, postgres_schema_url  # noqa: F401 - fixtures

pytestmark = pytest.mark.rabbitmq

REPO = Path(__file__).resolve().parents[2]
XXE = REPO / "tests" / "fixtures" / "hostile" / "refused" / "xxe-file-passwd.xml"


@pytest.fixture
def broker_url(amqp_url: str) -> str:
    """RabbitMQ only (overrides the memory/RabbitMQ parameter of tests/service)."""
    return amqp_url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, str]:
    """Settings for the store: the service's SQLite default, or PostgreSQL with a key file."""
    if request.param == "sqlite":
        return {}
    key = tmp_path / "audit.key"
    key.write_bytes(os.urandom(32))
    key.chmod(0o600)
    url: str = request.getfixturevalue("postgres_schema_url")
    return {"database_url": url, "audit_key_file": str(key)}


def _env(harness: Harness) -> dict[str, str]:
    """The service's settings, and none of the developer's MESBRIDGE_* variables."""
    settings = harness.service.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("MESBRIDGE_")}
    return env | {
        "MESBRIDGE_DATABASE_URL": settings.database_url,
        "MESBRIDGE_BROKER_URL": settings.broker_url,
        "MESBRIDGE_TOPOLOGY_PREFIX": settings.topology_prefix,
        "MESBRIDGE_AUDIT_KEY_FILE": settings.audit_key_file,
    }


def _cli(harness: Harness) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = _env(harness)

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "integration", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    return run


def _popen(harness: Harness, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "integration", *args],
        env=_env(harness),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_the_analysts_morning(
    database: dict[str, str], make_service: Callable[..., Harness], tmp_path: Path
) -> None:
    # ``database`` first: its schema must outlive the service (teardown runs in reverse).
    harness = make_service(**database)
    cli = _cli(harness)
    charg = _park_one(harness, INVALID)
    xxe = _park_one(harness, XXE.read_bytes())

    listed = cli("failed", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    items = {item["id"]: item for item in json.loads(listed.stdout)}
    assert items[charg]["status"] == "parked"
    assert items[charg]["field"] == "/LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG"
    assert "found 'FAR_TOO_LONG_BATCH', expected at most 10 characters" in items[charg]["error"]
    assert items[xxe]["error_class"] == "HostileInput"
    assert "DOCTYPE" in items[xxe]["error"]

    no_reason = cli("failed", "discard", str(xxe))
    assert no_reason.returncode == 2
    assert "Missing option '--reason'" in no_reason.stderr

    copy = tmp_path / "order.xml"
    shown = cli("failed", "show", str(charg), "--save", str(copy))
    assert shown.returncode == 0, shown.stderr
    assert any(
        line.lstrip().startswith(">>") and "FAR_TOO_LONG_BATCH" in line
        for line in shown.stdout.splitlines()
    )
    copy.write_bytes(copy.read_bytes().replace(b"FAR_TOO_LONG_BATCH", b"P26L0001"))

    edited = cli("failed", "edit", str(charg), "--file", str(copy), "--reason", "batch fixed")
    assert edited.returncode == 0, edited.stderr
    assert "edited copy kept as revision" in edited.stdout
    assert "replayed the edited copy" in edited.stdout

    harness.wait_for(lambda: _status(harness, charg) is FailureStatus.RESOLVED)
    assert _orders_in(harness.outputs(1)) == ["000000600777"]
    again = cli("failed", "replay", str(charg), "--reason", "once more")
    assert again.returncode == 1
    assert "it is resolved" in again.stderr
    assert harness.outputs(0, timeout_s=1.0) == []

    discarded = cli("failed", "discard", str(xxe), "--reason", "probe, reported to IT security")
    assert discarded.returncode == 0, discarded.stderr
    history = cli("failed", "show", str(charg))
    assert "edit by" in history.stdout
    assert "replay by" in history.stdout
    assert "resolved: the replay took effect" in history.stdout
    assert cli("audit", "verify").returncode == 0


def test_concurrent_replays_from_two_terminals_take_effect_once(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service()
    store = harness.service.store
    assert store is not None
    # A message parked for a gap that has since been fixed (e.g. a unit added to the profile).
    failure_id = park_fixed_order(store)
    reason = "unit KGX added to the mapping profile"
    runs = [
        _popen(harness, "failed", "replay", str(failure_id), "--reason", reason) for _ in range(2)
    ]
    finished = [run.communicate(timeout=120) for run in runs]

    codes = [run.returncode for run in runs]
    assert 0 in codes, finished
    assert set(codes) <= {0, 1}, finished
    harness.wait_for(lambda: _status(harness, failure_id) is FailureStatus.RESOLVED)
    harness.wait_for(harness.settled(inputs=1))
    assert _orders_in(harness.outputs(1)) == ["000000600777"]
    assert harness.count("inbox") == 1
    detail = FailedMessages(store.engine).get(failure_id)
    assert detail is not None
    assert detail.summary.resolution
