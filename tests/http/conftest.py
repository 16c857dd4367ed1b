"""Fixtures for the HTTP tests: a real uvicorn on an ephemeral loopback port, and a client."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from starlette.types import ASGIApp

from integration.http import HttpServer

Serve = Callable[[ASGIApp], httpx.Client]


@pytest.fixture
def serve() -> Iterator[Serve]:
    """Serve ``app`` on 127.0.0.1:<ephemeral>; give an httpx client for it; stop at teardown."""
    servers: list[HttpServer] = []
    clients: list[httpx.Client] = []

    def _serve(app: ASGIApp) -> httpx.Client:
        server = HttpServer(app, host="127.0.0.1", port=0)
        server.start()
        servers.append(server)
        # trust_env=False: an HTTP(S)_PROXY in the environment must not catch loopback calls.
        client = httpx.Client(
            base_url=f"http://127.0.0.1:{server.port}", timeout=10.0, trust_env=False
        )
        clients.append(client)
        return client

    yield _serve
    for client in clients:
        client.close()
    for server in servers:
        server.stop()
