"""Fixtures for the fault tests: a ``FaultRig`` per test, and the broker restart kept for last.

The RabbitMQ restart test stops the whole broker for a few seconds, so it runs
after every other test of the session (``pytest_collection_modifyitems``), and
it can be picked on its own with ``-k rabbitmq_restart``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.rig import FaultRig

RESTART_MARK = "rabbitmq_restart"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    last = [item for item in items if RESTART_MARK in item.name]
    if last:
        items[:] = [item for item in items if RESTART_MARK not in item.name] + last


@pytest.fixture(scope="session")
def figures_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the fault tests write their figures (also printed: run with ``-s``)."""
    return tmp_path_factory.getbasetemp() / "fault-figures.json"


@pytest.fixture
def rig(amqp_url: str, postgres_url: str, tmp_path: Path, figures_path: Path) -> Iterator[FaultRig]:
    made = FaultRig(
        amqp_url=amqp_url, postgres_url=postgres_url, tmp_path=tmp_path, figures_path=figures_path
    )
    try:
        yield made
    finally:
        made.close()
