"""CPU seconds per message, by process, read from ``/proc``: a figure other load cannot bend.

Wall-clock throughput on a shared two-core box moves with whatever else runs;
the CPU time each process spends on the messages does not. ``CpuMeter`` reads
``utime + stime`` of every process of interest from ``/proc/<pid>/stat`` when a
timed window opens and when it closes, and reports the difference per message:

- ``rabbitmq``: the Erlang VM (``beam.smp``); shared with anything else using
  the broker at the time, so an upper bound.
- ``postgres backends``: backends connected to the bench's own database (told
  apart by the database name in their process title).
- ``postgres background``: wal writer, checkpointer, background writer,
  autovacuum: shared with other databases, an upper bound.
- the service's own processes, by role (``main``, ``forkserver``, ``worker``),
  and the bench harness itself.
- ``other``: machine-wide busy time no process above accounts for (other load), and
  the time the hypervisor gave this VM's CPUs to others (steal), when there is any.

A process that starts inside the window counts from zero; one that ends inside
it is lost (none of the above does, in a bench run). Linux only.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuMeter", "CpuReport"]

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def _proc_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command may hold spaces and parentheses: fields start after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)


def _parent(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    return int(stat[stat.rindex(")") + 2 :].split()[1])


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""
    return raw.replace(b"\0", b" ").decode("utf-8", "replace").strip()


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


def _machine_ticks() -> tuple[int, int]:
    """(busy, steal) ticks of the whole machine since boot."""
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    values = [int(v) for v in fields]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is in user.
    steal = values[7] if len(values) > 7 else 0
    return sum(values[:7]) - values[3] - values[4], steal


def _all_pids() -> Iterable[int]:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            yield int(entry.name)


@dataclass(frozen=True, slots=True)
class CpuReport:
    messages: int
    wall_s: float
    seconds_by_role: dict[str, float]
    machine_busy_s: float
    steal_s: float = 0.0

    @property
    def attributed_s(self) -> float:
        return sum(self.seconds_by_role.values())

    def lines(self) -> list[str]:
        per = 1e6 / max(1, self.messages)
        rows = sorted(self.seconds_by_role.items(), key=lambda item: -item[1])
        out = [f"    {role:<22} {seconds * per:7.0f} µs/msg" for role, seconds in rows]
        out.append(f"    {'= total attributed':<22} {self.attributed_s * per:7.0f} µs/msg")
        other = max(0.0, self.machine_busy_s - self.attributed_s)
        out.append(
            f"    {'(other load)':<22} {other * per:7.0f} µs/msg   "
            f"machine busy {self.machine_busy_s / max(self.wall_s, 1e-9):.2f} of "
            f"{os.cpu_count()} CPUs over {self.wall_s:.1f} s"
            + (
                f", {self.steal_s / max(self.wall_s, 1e-9):.2f} CPU stolen by the host"
                if self.steal_s
                else ""
            )
        )
        return out


class CpuMeter:
    """Snapshot CPU ticks by role at ``start()``; ``stop(messages)`` gives a ``CpuReport``.

    ``service_trees`` returns, for each running service instance, its pids, main process
    first (the mains of several instances add up in "mesbridge main").
    """

    def __init__(
        self, *, database: str | None, service_trees: Callable[[], list[list[int]]]
    ) -> None:
        self._database = database
        self._service_trees = service_trees
        self._start: dict[int, tuple[str, int]] = {}
        self._start_busy = 0
        self._start_steal = 0
        self._start_wall = 0.0

    def _roles(self) -> dict[int, str]:
        roles: dict[int, str] = {}
        for tree in self._service_trees():
            for index, pid in enumerate(tree):
                command = _cmdline(pid)
                if index == 0:
                    roles[pid] = "mesbridge main"
                elif "resource_tracker" in command:
                    roles[pid] = "mesbridge other"
                elif "forkserver" in command and _parent(pid) == tree[0]:
                    roles[pid] = "mesbridge forkserver"
                else:  # forked by the forkserver, or spawned by the main process
                    roles[pid] = "mesbridge worker"
        roles[os.getpid()] = "bench harness"
        for pid in _all_pids():
            if pid in roles:
                continue
            comm = _comm(pid)
            if comm == "beam.smp":
                roles[pid] = "rabbitmq"
            elif comm == "postgres" or comm.startswith("postgres"):
                title = _cmdline(pid)
                if "(" in title and ")" in title:  # "user db host(port) state": a backend
                    if self._database and f" {self._database} " in f" {title} ":
                        roles[pid] = "postgres backends"
                else:
                    roles[pid] = "postgres background"
        return roles

    def _snapshot(self) -> dict[int, tuple[str, int]]:
        snapshot: dict[int, tuple[str, int]] = {}
        for pid, role in self._roles().items():
            ticks = _proc_ticks(pid)
            if ticks is not None:
                snapshot[pid] = (role, ticks)
        return snapshot

    def start(self, wall: float) -> None:
        self._start = self._snapshot()
        self._start_busy, self._start_steal = _machine_ticks()
        self._start_wall = wall

    def stop(self, wall: float, messages: int) -> CpuReport:
        end = self._snapshot()
        busy, steal = _machine_ticks()
        busy, steal = busy - self._start_busy, steal - self._start_steal
        seconds: dict[str, float] = {}
        for pid, (role, ticks) in end.items():
            before = self._start.get(pid)
            delta = ticks - (before[1] if before is not None else 0)
            seconds[role] = seconds.get(role, 0.0) + delta * _TICK_S
        return CpuReport(
            messages=messages,
            wall_s=wall - self._start_wall,
            seconds_by_role=seconds,
            machine_busy_s=busy * _TICK_S,
            steal_s=steal * _TICK_S,
        )
