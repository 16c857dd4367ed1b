"""HttpServer: a real uvicorn in a thread; a taken port is a ConfigurationError; stop frees it."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from contracts.errors import ConfigurationError
from integration.http import HttpServer, create_app


def _app(*routes: Route) -> Starlette:
    return create_app(metrics_registry=CollectorRegistry(), checks=[], extra_routes=routes)


def _get(port: int, path: str = "/healthz", timeout: float = 5.0) -> httpx.Response:
    with httpx.Client(timeout=timeout, trust_env=False) as client:
        return client.get(f"http://127.0.0.1:{port}{path}")


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """Another process's server, as far as mesbridge can tell: a socket listening on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield sock


def test_start_returns_once_listening_on_the_real_ephemeral_port() -> None:
    server = HttpServer(_app(), port=0)
    server.start()
    try:
        assert server.port > 0
        assert server.running
        assert _get(server.port).json() == {"status": "alive"}
        assert any(thread.name == "mesbridge-http" for thread in threading.enumerate())
    finally:
        server.stop()
    assert not server.running


def test_a_taken_port_is_a_configuration_error_naming_it(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    server = HttpServer(_app(), host="127.0.0.1", port=port)

    with pytest.raises(ConfigurationError) as refused:
        server.start()

    message = str(refused.value)
    assert f"cannot listen on 127.0.0.1:{port}" in message
    assert f"another process (or another mesbridge) is using port {port}" in message
    assert not server.running
    server.stop()  # harmless after a failed start


def test_a_port_taken_by_another_mesbridge_is_refused_and_the_first_keeps_serving() -> None:
    first = HttpServer(_app(), port=0)
    first.start()
    try:
        second = HttpServer(_app(), port=first.port)
        with pytest.raises(ConfigurationError, match=f"127.0.0.1:{first.port}"):
            second.start()
        assert _get(first.port).status_code == 200
    finally:
        first.stop()


def test_an_unknown_host_is_a_configuration_error() -> None:
    server = HttpServer(_app(), host="no-such-host.invalid", port=0)

    with pytest.raises(ConfigurationError, match=r"cannot resolve host 'no-such-host\.invalid'"):
        server.start()


def test_stop_frees_the_port_for_a_new_server() -> None:
    first = HttpServer(_app(), port=0)
    first.start()
    port = first.port
    assert _get(port).status_code == 200

    first.stop()

    assert first.port == port  # still tells which port it had
    with pytest.raises(httpx.ConnectError):
        _get(port)
    second = HttpServer(_app(), port=port)
    second.start()
    try:
        assert _get(port).json() == {"status": "alive"}
    finally:
        second.stop()


def test_stop_does_not_wait_forever_for_a_stuck_request() -> None:
    entered = threading.Event()

    async def stuck(request: Request) -> Response:
        entered.set()
        await asyncio.sleep(30)
        return PlainTextResponse("too late")

    server = HttpServer(_app(Route("/stuck", stuck)), port=0)
    server.start()
    port = server.port
    outcome: list[BaseException | httpx.Response] = []

    def call() -> None:
        try:
            outcome.append(_get(port, "/stuck", timeout=20))
        except httpx.HTTPError as exc:
            outcome.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    assert entered.wait(5)

    started = time.monotonic()
    server.stop(timeout_s=0.3)
    elapsed = time.monotonic() - started
    caller.join(5)

    assert 0.3 <= elapsed < 3.0
    assert not server.running
    assert len(outcome) == 1
    # Cut off: the connection dropped or a 500 from the cancelled request, never "too late".
    answer = outcome[0]
    if isinstance(answer, httpx.Response):
        assert answer.status_code == 500
    else:
        assert isinstance(answer, httpx.HTTPError)
    with pytest.raises(httpx.ConnectError):
        _get(port)


def test_misuse_is_reported() -> None:
    server = HttpServer(_app(), port=0)
    with pytest.raises(RuntimeError, match="port=0 is chosen by the system at start"):
        _ = server.port
    assert HttpServer(_app(), port=8080).port == 8080
    server.stop()  # before start: nothing to do

    server.start()
    try:
        with pytest.raises(RuntimeError, match="already started"):
            server.start()
    finally:
        server.stop()
        server.stop()  # twice: still fine
