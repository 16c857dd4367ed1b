"""The operations endpoints of the service as a Starlette app: liveness, readiness, metrics.

- ``GET /healthz``: ``200 {"status": "alive"}`` while the process serves HTTP. It checks no
  dependency, so an orchestrator restarts the process only when it is truly stuck.
- ``GET /readyz``: runs every :class:`ReadinessCheck` (each in its own thread, all at once,
  each given ``check_timeout_s``) and answers ``200 {"status": "ready", "checks": {name:
  "ok"}}`` or ``503 {"status": "not ready", "checks": {name: "<error class>: <reason>"}}``.
  A check that does not answer in time counts as failed (``TimeoutError: no answer after
  N s``), so ``/readyz`` never hangs. A check still hanging from an earlier call is not
  started again: the next call waits on the same run, so a stuck dependency costs one
  thread per check, not one per probe.
- ``GET /metrics``: the Prometheus text exposition of the injected registry.

The reason shown for a failed check is the first line of the error (a
``MesbridgeError``'s summary), at most 200 characters, with any ``user:password@``
in a URL replaced by ``***@``: the endpoint is unauthenticated.

Failure modes: ``create_app`` raises ``ValueError`` for an empty or repeated check name,
a non-positive timeout, or an extra route that would shadow one of the three paths.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, wait
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from contracts.errors import MesbridgeError

__all__ = ["DEFAULT_CHECK_TIMEOUT_S", "ReadinessCheck", "create_app"]

DEFAULT_CHECK_TIMEOUT_S = 2.0
_RESERVED_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_MAX_REASON = 200
_NO_CACHE = {"Cache-Control": "no-store"}
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)[^/\s@]+@")


@dataclass(frozen=True, slots=True)
class ReadinessCheck:
    """One dependency the service needs to do its work; ``check`` raises when it cannot."""

    name: str
    check: Callable[[], None]


def create_app(
    *,
    metrics_registry: CollectorRegistry,
    checks: Sequence[ReadinessCheck],
    extra_routes: Sequence[BaseRoute] = (),
    check_timeout_s: float = DEFAULT_CHECK_TIMEOUT_S,
) -> Starlette:
    """The Starlette app serving ``/healthz``, ``/readyz``, ``/metrics`` and ``extra_routes``."""
    if not check_timeout_s > 0:
        raise ValueError(f"check_timeout_s must be > 0 seconds, found {check_timeout_s!r}")
    probes = _probes(checks)
    for route in extra_routes:
        path = getattr(route, "path", None)
        if path in _RESERVED_PATHS:
            raise ValueError(f"extra route {path!r} would shadow a built-in endpoint")

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "alive"}, headers=_NO_CACHE)

    # Plain functions: Starlette runs them in its thread pool, so waiting on checks or
    # collecting metrics never blocks the event loop.
    def readyz(request: Request) -> Response:
        running = [(probe, probe.start()) for probe in probes]
        wait([future for _, future in running], timeout=check_timeout_s)
        verdicts = {probe.name: probe.verdict(future) for probe, future in running}
        ready = all(verdict == "ok" for verdict in verdicts.values())
        return JSONResponse(
            {"status": "ready" if ready else "not ready", "checks": verdicts},
            status_code=200 if ready else 503,
            headers=_NO_CACHE,
        )

    def metrics(request: Request) -> Response:
        return Response(
            generate_latest(metrics_registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST, **_NO_CACHE},
        )

    routes: list[BaseRoute] = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        *extra_routes,
    ]
    return Starlette(routes=routes)


def _probes(checks: Sequence[ReadinessCheck]) -> list[_Probe]:
    seen: set[str] = set()
    for check in checks:
        if not check.name.strip():
            raise ValueError(f"a readiness check needs a name, found {check.name!r}")
        if check.name in seen:
            raise ValueError(f"readiness check {check.name!r} is given twice")
        seen.add(check.name)
    return [_Probe(check) for check in checks]


class _Probe:
    """Runs one check in a daemon thread; at most one run of it is in flight at a time."""

    def __init__(self, check: ReadinessCheck) -> None:
        self.name = check.name
        self._check = check.check
        self._lock = threading.Lock()
        self._future: Future[None] | None = None
        self._started = 0.0

    def start(self) -> Future[None]:
        with self._lock:
            if self._future is None or self._future.done():
                self._future = Future()
                self._started = time.monotonic()
                # Daemon: a check stuck in a driver call must not keep the process alive.
                threading.Thread(
                    target=self._run,
                    args=(self._future,),
                    name=f"mesbridge-readyz-{self.name}",
                    daemon=True,
                ).start()
            return self._future

    def verdict(self, future: Future[None]) -> str:
        if not future.done():
            return f"TimeoutError: no answer after {time.monotonic() - self._started:.1f} s"
        error = future.exception()
        return "ok" if error is None else _describe(error)

    def _run(self, future: Future[None]) -> None:
        future.set_running_or_notify_cancel()
        try:
            self._check()
        except BaseException as exc:  # a check's failure, whatever it is, is the verdict
            future.set_exception(exc)
        else:
            future.set_result(None)


def _describe(error: BaseException) -> str:
    text = error.summary if isinstance(error, MesbridgeError) else str(error)
    lines = text.strip().splitlines()
    reason = _URL_USERINFO.sub(r"\g<scheme>***@", lines[0].strip() if lines else "")
    if len(reason) > _MAX_REASON:
        reason = reason[:_MAX_REASON] + "…"
    name = type(error).__name__
    return f"{name}: {reason}" if reason else name
