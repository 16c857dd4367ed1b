"""Crash points: a test facility that kills the service, as ``kill -9`` would, at a named moment.

The fault tests (``tests/faults/``, docs/operations.md "Fault tests") prove that
a crash at the worst moments neither loses nor doubles an effect. Random
``kill -9`` rarely lands exactly in the narrow windows that matter, so the code
marks them with ``crash_point(name)``, and a process started with

    MESBRIDGE_TEST_CRASH_AT=<name>[:<nth>]

ends itself with ``os._exit(137)`` the ``nth`` time (default: the first)
execution passes that point: no ``finally``, no ``atexit``, no flush, no
connection closed politely. The broker and the database see the peer vanish,
as after SIGKILL (137 is the exit status a shell reports for it).

Points (``POINTS``):

- ``mid-batch``: consumer loop, after the pipeline step of a batch, before it is settled.
- ``after-commit-before-ack``: consumer loop, the batch's inbox + outbox transaction
  committed (and failures recorded), the deliveries not yet acknowledged.
- ``after-publish-before-mark-sent``: outbox relay, outputs published and confirmed
  by the broker, their outbox rows not yet marked sent.

A second variable kills a pipeline worker process on one message:

    MESBRIDGE_TEST_CRASH_ON=<text>

makes every pipeline worker process (``integration/workers.py``, not the main process)
end itself with ``os._exit(137)`` when it is about to process a delivery whose body
contains ``text``: a message that kills the process working on it, as a crash in native
code or the kernel's out-of-memory killer would.

The variable is read once, by the composition root (``mesbridge run`` calls
``arm_from``), never at import and never per call: an unarmed process pays one
global lookup per ``crash_point``. It is not a setting (``Settings`` ignores it)
and has no place in a production environment; a process that has it logs a
warning at start.

Failure modes: an unknown point name or an ``nth`` that is not a positive whole
number raises ``ConfigurationError`` at start-up, naming the known points.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field

from contracts.errors import ConfigurationError

__all__ = [
    "CRASH_AT_VARIABLE",
    "CRASH_ON_VARIABLE",
    "EXIT_STATUS",
    "POINTS",
    "arm",
    "arm_from",
    "arm_message_crash_from",
    "crash_on_message",
    "crash_point",
    "disarm",
]

log = logging.getLogger("mesbridge.faults")

CRASH_AT_VARIABLE = "MESBRIDGE_TEST_CRASH_AT"
CRASH_ON_VARIABLE = "MESBRIDGE_TEST_CRASH_ON"
EXIT_STATUS = 137
POINTS = frozenset({"mid-batch", "after-commit-before-ack", "after-publish-before-mark-sent"})


@dataclass(slots=True, kw_only=True)
class _Plan:
    point: str
    nth: int
    passed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


_plan: _Plan | None = None
_crash_marker: bytes | None = None


def crash_point(name: str) -> None:
    """End the process at once if it was armed for ``name`` and this is the nth pass."""
    plan = _plan
    if plan is None or plan.point != name:
        return
    with plan.lock:
        plan.passed += 1
        if plan.passed < plan.nth:
            return
        # os.write, not logging: nothing buffered survives os._exit.
        os.write(2, f"mesbridge: crash point {name} reached (pass {plan.passed}): exit\n".encode())
        os._exit(EXIT_STATUS)


def crash_on_message(body: bytes) -> None:
    """End this (pipeline worker) process at once if ``body`` holds the armed marker."""
    marker = _crash_marker
    if marker is None or marker not in body:
        return
    os.write(2, f"mesbridge: worker {os.getpid()} hit {CRASH_ON_VARIABLE}: exit\n".encode())
    os._exit(EXIT_STATUS)


def arm_message_crash_from(environ: Mapping[str, str]) -> None:
    """Arm ``crash_on_message`` from ``MESBRIDGE_TEST_CRASH_ON`` (a pipeline worker's start)."""
    global _crash_marker  # noqa: PLW0603 - one process-wide switch, set once at start-up
    marker = environ.get(CRASH_ON_VARIABLE, "")
    _crash_marker = marker.encode("utf-8") if marker else None
    if marker:
        log.warning("TEST FACILITY: this worker ends itself on a message containing %r", marker)


def arm(spec: str) -> None:
    """Arm the crash point ``<name>[:<nth>]``; an empty ``spec`` disarms."""
    global _plan  # noqa: PLW0603 - one process-wide switch, set once at start-up
    if not spec:
        _plan = None
        return
    name, _, count = spec.partition(":")
    if name not in POINTS:
        raise ConfigurationError(
            f"{CRASH_AT_VARIABLE}={spec!r}: no crash point {name!r}; "
            f"the points are {', '.join(sorted(POINTS))}"
        )
    try:
        nth = int(count) if count else 1
    except ValueError:
        nth = 0
    if nth < 1:
        raise ConfigurationError(
            f"{CRASH_AT_VARIABLE}={spec!r}: {count!r} is not a positive whole number of passes"
        )
    _plan = _Plan(point=name, nth=nth)
    log.warning("TEST FACILITY: this process ends itself at crash point %s, pass %d", name, nth)


def arm_from(environ: Mapping[str, str]) -> None:
    """Arm from ``MESBRIDGE_TEST_CRASH_AT`` if ``environ`` has it (the composition root)."""
    spec = environ.get(CRASH_AT_VARIABLE, "")
    if spec:
        arm(spec)


def disarm() -> None:
    arm("")
