"""Shared fixtures: where the real services and the official schemas are, and what if not.

Tests that need RabbitMQ, PostgreSQL or the official MESA schemas are marked.
On a laptop without the service they skip with a loud reason; with ``CI`` set
they fail instead, so CI can never pass by skipping (dramatiq's approach).
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from urllib.parse import urlsplit

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SHARED = REPO_ROOT.parent / "shared"

AMQP_URL = os.environ.get("MESBRIDGE_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
POSTGRES_URL = os.environ.get(
    "MESBRIDGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() not in {"", "0", "false", "no"}


def unavailable(reason: str) -> None:
    """Skip loudly on a developer machine; fail under CI, where every service must be there."""
    if _in_ci():
        pytest.fail(f"CI is set and {reason}", pytrace=False)
    pytest.skip(f"SKIPPED, NOT TESTED: {reason}")


def _reachable(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or default_port
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def official_b2mml_dir() -> Path:
    """The official MESA B2MML schemas (V0600/, V7/): the conformance oracle."""
    configured = os.environ.get("MESBRIDGE_B2MML_DIR")
    directory = Path(configured) if configured else SHARED / "b2mml"
    if not (directory / "V0600").is_dir() or not (directory / "V7").is_dir():
        unavailable(
            f"the official MESA B2MML schemas are not at {directory} (set MESBRIDGE_B2MML_DIR)"
        )
    return directory


@pytest.fixture(scope="session")
def amqp_url() -> str:
    if not _reachable(AMQP_URL, 5672):
        unavailable(
            f"RabbitMQ is not reachable at {AMQP_URL} (start it: rabbitmq-server -detached)"
        )
    return AMQP_URL


@pytest.fixture(scope="session")
def postgres_url() -> str:
    if not _reachable(POSTGRES_URL, 5432):
        unavailable(
            f"PostgreSQL is not reachable at {POSTGRES_URL} "
            "(start it: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start)"
        )
    return POSTGRES_URL


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES
