"""How many CPUs this process may really use: the default number of pipeline workers.

``os.cpu_count()`` counts the host's CPUs. A container limited to two CPUs on a
64-CPU node would start 64 workers of ~100 MB each and be killed for memory, or
throttled. The answer here is the affinity mask (``taskset``, cpusets), bounded
by the cgroup CPU quota (Kubernetes ``resources.limits.cpu``; cgroup v2
``cpu.max``, v1 ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us``), rounded up.
The cgroup files are read where a container sees its own cgroup: at the root of
``/sys/fs/cgroup``.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

__all__ = ["CGROUP_ROOT", "usable_cpus"]

CGROUP_ROOT = Path("/sys/fs/cgroup")


def usable_cpus(cgroup_root: Path = CGROUP_ROOT) -> int:
    """CPUs in this process's affinity mask, at most its cgroup quota; at least 1."""
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        allowed = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup_root)
    if quota is not None:
        allowed = min(allowed, math.ceil(quota))
    return max(1, allowed)


def _cgroup_quota(root: Path) -> float | None:
    """The CPU quota in CPUs (1.5 = one and a half), or None where there is none."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return _ratio(quota, period)
    quota_us = _read(root / "cpu" / "cpu.cfs_quota_us")
    period_us = _read(root / "cpu" / "cpu.cfs_period_us")
    if quota_us is None or period_us is None:
        return None
    return _ratio(quota_us, period_us)


def _ratio(quota: str, period: str) -> float | None:
    # "max" (v2) and -1 (v1) mean no quota; anything unreadable is treated the same way,
    # since the affinity mask still bounds the answer.
    try:
        quota_value, period_value = int(quota), int(period)
    except ValueError:
        return None
    if quota_value <= 0 or period_value <= 0:
        return None
    return quota_value / period_value


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
