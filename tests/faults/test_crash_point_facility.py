"""The crash-point switch itself: what arms it, what it refuses, when it fires.

The real path (a ``mesbridge run`` process ending itself at each point) is
tested in test_crash_points.py; here ``os._exit`` is replaced so that the
counting can be seen from inside one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from contracts.errors import ConfigurationError
from integration import faults
from integration.cli import cli
from integration.settings import Settings


class Exited(Exception):
    pass


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    seen: list[int] = []

    def fake_exit(status: int) -> None:
        seen.append(status)
        raise Exited

    monkeypatch.setattr(faults.os, "_exit", fake_exit)
    yield seen
    faults.disarm()


def test_unarmed_points_do_nothing(exits: list[int]) -> None:
    faults.arm_from({})
    for name in sorted(faults.POINTS):
        faults.crash_point(name)
    assert exits == []


def test_fires_on_the_nth_pass_of_its_own_point_only(
    exits: list[int], capfd: pytest.CaptureFixture[str]
) -> None:
    faults.arm_from({faults.CRASH_AT_VARIABLE: "after-commit-before-ack:3"})
    faults.crash_point("mid-batch")
    faults.crash_point("after-commit-before-ack")
    faults.crash_point("after-publish-before-mark-sent")
    faults.crash_point("after-commit-before-ack")
    assert exits == []
    with pytest.raises(Exited):
        faults.crash_point("after-commit-before-ack")
    assert exits == [137]
    assert "crash point after-commit-before-ack reached (pass 3)" in capfd.readouterr().err


def test_without_a_count_fires_on_the_first_pass(exits: list[int]) -> None:
    faults.arm("mid-batch")
    with pytest.raises(Exited):
        faults.crash_point("mid-batch")
    assert exits == [faults.EXIT_STATUS]


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("before-lunch", "no crash point 'before-lunch'; the points are after-commit-before-ack"),
        ("mid-batch:0", "'0' is not a positive whole number"),
        ("mid-batch:two", "'two' is not a positive whole number"),
    ],
)
def test_a_bad_spec_is_refused_naming_the_points(spec: str, expected: str) -> None:
    with pytest.raises(ConfigurationError, match="MESBRIDGE_TEST_CRASH_AT") as caught:
        faults.arm(spec)
    assert expected in str(caught.value)


def test_the_variable_is_not_taken_for_an_unknown_setting() -> None:
    settings = Settings.load({faults.CRASH_AT_VARIABLE: "mid-batch", "MESBRIDGE_BATCH_SIZE": "7"})
    assert settings.batch_size == 7


def test_run_refuses_a_bad_spec_before_starting(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["run"],
        env={
            faults.CRASH_AT_VARIABLE: "mid-bach",
            "MESBRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "MESBRIDGE_HTTP_PORT": "0",
        },
    )
    assert result.exit_code == 2, result.output
    assert "cannot start" in result.stderr
    assert "no crash point 'mid-bach'" in result.stderr
    assert not (tmp_path / "db.sqlite").exists()


def test_the_outbox_lease_the_crash_tests_shorten_is_a_checked_setting() -> None:
    assert Settings.load({"MESBRIDGE_OUTBOX_LEASE_S": "3"}).outbox_lease_s == 3
    assert Settings().outbox_lease_s == 60
    with pytest.raises(ConfigurationError, match="outbox_lease_s: 0 is too small"):
        Settings(outbox_lease_s=0)
