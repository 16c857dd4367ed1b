"""/healthz, /readyz and the app's set-up checks, against a real uvicorn over loopback."""

from __future__ import annotations

import threading
import time

import pytest
from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from contracts.errors import ConfigurationError, TransientError
from integration.http import ReadinessCheck, create_app
from tests.http.conftest import Serve


def _ok() -> None:
    return None


def _database_down() -> None:
    raise TransientError("database unreachable")


def test_healthz_says_alive_without_running_any_check(serve: Serve) -> None:
    called: list[str] = []
    app = create_app(
        metrics_registry=CollectorRegistry(),
        checks=[ReadinessCheck("database", lambda: called.append("database"))],
    )
    client = serve(app)

    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "alive"}
    assert response.headers["cache-control"] == "no-store"
    assert called == []


def test_readyz_is_200_when_every_check_passes(serve: Serve) -> None:
    app = create_app(
        metrics_registry=CollectorRegistry(),
        checks=[ReadinessCheck("database", _ok), ReadinessCheck("broker", _ok)],
    )

    response = serve(app).get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok", "broker": "ok"}}


def test_readyz_with_no_checks_is_ready(serve: Serve) -> None:
    response = serve(create_app(metrics_registry=CollectorRegistry(), checks=[])).get("/readyz")

    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {}}


def test_readyz_is_503_naming_the_failed_check_and_its_error_class(serve: Serve) -> None:
    app = create_app(
        metrics_registry=CollectorRegistry(),
        checks=[ReadinessCheck("database", _database_down), ReadinessCheck("broker", _ok)],
    )

    response = serve(app).get("/readyz")

    assert response.status_code == 503
    assert response.json() == {
        "status": "not ready",
        "checks": {"database": "TransientError: database unreachable", "broker": "ok"},
    }


def test_readyz_shows_one_short_line_without_credentials(serve: Serve) -> None:
    def broker_down() -> None:
        raise ConnectionRefusedError(
            "cannot reach amqp://mesbridge:s3cret@rabbit:5672/ (refused)\ntraceback details"
        )

    def long_reason() -> None:
        raise ConfigurationError("x" * 500, message_ref="not shown")

    app = create_app(
        metrics_registry=CollectorRegistry(),
        checks=[ReadinessCheck("broker", broker_down), ReadinessCheck("config", long_reason)],
    )

    checks = serve(app).get("/readyz").json()["checks"]

    assert checks["broker"] == (
        "ConnectionRefusedError: cannot reach amqp://***@rabbit:5672/ (refused)"
    )
    assert "s3cret" not in checks["broker"]
    assert checks["config"] == "ConfigurationError: " + "x" * 200 + "…"


def test_a_hanging_check_makes_readyz_503_within_the_timeout(serve: Serve) -> None:
    release = threading.Event()
    calls: list[float] = []

    def hangs() -> None:
        calls.append(time.monotonic())
        release.wait(30)

    app = create_app(
        metrics_registry=CollectorRegistry(),
        checks=[ReadinessCheck("tulip", hangs), ReadinessCheck("database", _ok)],
        check_timeout_s=0.3,
    )
    client = serve(app)
    try:
        started = time.monotonic()
        first = client.get("/readyz")
        elapsed = time.monotonic() - started

        assert first.status_code == 503
        assert 0.3 <= elapsed < 2.0
        checks = first.json()["checks"]
        assert checks["database"] == "ok"
        assert checks["tulip"].startswith("TimeoutError: no answer after 0.")

        # Still hanging: the next probe waits on the same run instead of starting another.
        second = client.get("/readyz")
        assert second.status_code == 503
        assert second.json()["checks"]["tulip"].startswith("TimeoutError: no answer after ")
        assert len(calls) == 1
    finally:
        release.set()

    deadline = time.monotonic() + 5
    while True:
        third = client.get("/readyz")
        if third.status_code == 200 or time.monotonic() > deadline:
            break
    # Released: whether the old run or a new one answers, the dependency is ready again.
    assert third.json() == {"status": "ready", "checks": {"tulip": "ok", "database": "ok"}}


def test_extra_routes_are_served_beside_the_built_in_ones(serve: Serve) -> None:
    async def console(request: Request) -> Response:
        return PlainTextResponse("console")

    app = create_app(
        metrics_registry=CollectorRegistry(),
        checks=[],
        extra_routes=[Route("/console", console)],
    )
    client = serve(app)

    assert client.get("/console").text == "console"
    assert client.get("/healthz").status_code == 200
    assert client.get("/nothing-here").status_code == 404
    assert client.post("/healthz").status_code == 405


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"checks": [ReadinessCheck("db", _ok), ReadinessCheck("db", _ok)]}, "'db' is given twice"),
        ({"checks": [ReadinessCheck(" ", _ok)]}, "needs a name"),
        ({"checks": [], "check_timeout_s": 0}, "check_timeout_s must be > 0"),
        (
            {"checks": [], "extra_routes": [Route("/metrics", lambda request: Response())]},
            "'/metrics' would shadow",
        ),
    ],
)
def test_create_app_refuses_a_wrong_set_up(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        create_app(metrics_registry=CollectorRegistry(), **kwargs)  # type: ignore[arg-type]
