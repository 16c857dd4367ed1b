"""How many pipeline workers the default setting (-1) starts: the CPUs this process may use."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from integration.cpus import usable_cpus
from integration.workers import worker_count

HOST_CPUS = len(os.sched_getaffinity(0))


def _cgroup_v2(root: Path, cpu_max: str) -> Path:
    root.mkdir(exist_ok=True)
    (root / "cpu.max").write_text(cpu_max + "\n", encoding="ascii")
    return root


def _cgroup_v1(root: Path, quota_us: str, period_us: str = "100000") -> Path:
    (root / "cpu").mkdir(parents=True)
    (root / "cpu" / "cpu.cfs_quota_us").write_text(quota_us + "\n", encoding="ascii")
    (root / "cpu" / "cpu.cfs_period_us").write_text(period_us + "\n", encoding="ascii")
    return root


def test_without_a_cgroup_quota_every_cpu_of_the_affinity_mask_counts(tmp_path: Path) -> None:
    assert usable_cpus(tmp_path) == HOST_CPUS
    assert usable_cpus(_cgroup_v2(tmp_path / "v2", "max 100000")) == HOST_CPUS
    assert usable_cpus(_cgroup_v1(tmp_path / "v1", "-1")) == HOST_CPUS


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [("100000 100000", 1), ("50000 100000", 1), ("150000 100000", 2), ("20000 10000", 2)],
)
def test_a_cgroup_v2_quota_bounds_the_count_rounded_up(
    tmp_path: Path, cpu_max: str, expected: int
) -> None:
    assert usable_cpus(_cgroup_v2(tmp_path, cpu_max)) == min(expected, HOST_CPUS)


def test_a_cgroup_v1_quota_bounds_the_count_rounded_up(tmp_path: Path) -> None:
    assert usable_cpus(_cgroup_v1(tmp_path, "50000")) == 1


def test_a_quota_above_the_affinity_mask_does_not_add_cpus(tmp_path: Path) -> None:
    assert usable_cpus(_cgroup_v2(tmp_path, f"{(HOST_CPUS + 8) * 100000} 100000")) == HOST_CPUS


def test_an_unreadable_quota_is_no_quota(tmp_path: Path) -> None:
    assert usable_cpus(_cgroup_v2(tmp_path, "garbage")) == HOST_CPUS


def test_the_default_starts_a_worker_per_usable_cpu_and_one_on_a_single_cpu() -> None:
    assert worker_count(-1, cpus=lambda: 4) == 4
    # One worker process, not the consumer thread: a message that crashes it is parked
    # instead of ending the service on every redelivery.
    assert worker_count(-1, cpus=lambda: 1) == 1
    assert worker_count(0, cpus=lambda: 4) == 0
    assert worker_count(3, cpus=lambda: 1) == 3
