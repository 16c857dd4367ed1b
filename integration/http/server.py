"""Serve an ASGI app with uvicorn in a background thread, for ``mesbridge run``.

The socket is bound here, before uvicorn starts, so a port that is taken is reported
at once as a ``ConfigurationError`` naming the address (uvicorn itself would log and
call ``sys.exit`` inside its thread). ``port=0`` takes an ephemeral port; :attr:`port`
tells which. uvicorn's signal handlers are switched off: the service owns SIGTERM and
calls :meth:`HttpServer.stop`. uvicorn logs through the standard ``uvicorn.*`` loggers
at WARNING and up, into whatever logging the service configured (no access log).

Failure modes:

- ``start``: ``ConfigurationError`` if the address cannot be bound (port taken, no
  permission, unknown host) or the server dies while starting; ``TimeoutError`` if it
  is not serving within ``timeout_s``; ``RuntimeError`` if started twice.
- ``stop``: asks uvicorn to finish open requests, forces it after ``timeout_s``, and
  raises ``TimeoutError`` if the thread is still alive after that. The listening
  socket is closed in every case. Calling ``stop`` again, or before ``start``, is a no-op.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

from contracts.errors import ConfigurationError

__all__ = ["HttpServer"]

_log = logging.getLogger(__name__)
_FORCED_EXIT_GRACE_S = 2.0
_POLL_S = 0.01
_BIND_HINTS = {
    errno.EADDRINUSE: "; another process (or another mesbridge) is using port {port}",
    errno.EACCES: "; ports below 1024 need privileges, choose another port than {port}",
    errno.EADDRNOTAVAIL: "; the host is not an address of this machine",
}


class _ThreadServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to the service."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:  # uvicorn >= 0.29
        yield

    def install_signal_handlers(self) -> None:  # older uvicorn
        return None


class HttpServer:
    """uvicorn serving ``app`` on ``host:port`` in a daemon thread."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 8080) -> None:
        self._app = app
        self._host = host
        self._requested_port = port
        self._socket: socket.socket | None = None
        self._bound_port: int | None = None
        self._server: _ThreadServer | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def port(self) -> int:
        """The port it listens on; with ``port=0``, known once started."""
        if self._bound_port is not None:
            return self._bound_port
        if self._requested_port == 0:
            raise RuntimeError("HTTP server: port=0 is chosen by the system at start()")
        return self._requested_port

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, timeout_s: float = 10.0) -> None:
        """Return once the server is accepting requests."""
        if self._thread is not None:
            raise RuntimeError(f"HTTP server on {self._address()} was already started")
        sock = self._bind()
        self._socket = sock
        self._bound_port = int(sock.getsockname()[1])
        config = uvicorn.Config(
            self._app,
            host=self._host,
            port=self.port,
            log_level="warning",
            # No dictConfig of the process's logging: the service configures logging.
            log_config=None,
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            loop="asyncio",
        )
        server = _ThreadServer(config)
        self._server = server
        self._thread = threading.Thread(
            target=self._serve, args=(server, sock), name="mesbridge-http", daemon=True
        )
        self._thread.start()

        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not self._thread.is_alive():
                self._close_socket()
                raise ConfigurationError(
                    f"HTTP server on {self._address()} stopped while starting: {self._failure!r}"
                ) from self._failure
            if time.monotonic() >= deadline:
                self.stop()
                raise TimeoutError(
                    f"HTTP server on {self._address()} was not serving within {timeout_s:g} s"
                )
            time.sleep(_POLL_S)
        _log.info("HTTP endpoints on http://%s", self._address())

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and free the port; open requests get ``timeout_s`` to finish."""
        server, thread = self._server, self._thread
        try:
            if server is None or thread is None:
                return
            server.should_exit = True
            thread.join(timeout_s)
            if thread.is_alive():
                _log.warning(
                    "HTTP server on %s: requests still open after %g s, closing them",
                    self._address(),
                    timeout_s,
                )
                server.force_exit = True
                thread.join(_FORCED_EXIT_GRACE_S)
            if thread.is_alive():
                raise TimeoutError(
                    f"HTTP server on {self._address()} did not stop within "
                    f"{timeout_s + _FORCED_EXIT_GRACE_S:g} s"
                )
        finally:
            self._close_socket()

    def _bind(self) -> socket.socket:
        address = self._address()
        try:
            infos = socket.getaddrinfo(
                self._host,
                self._requested_port,
                type=socket.SOCK_STREAM,
                flags=socket.AI_PASSIVE,
            )
        except OSError as exc:
            raise ConfigurationError(
                f"HTTP server: cannot resolve host {self._host!r} (setting http_host): {exc}"
            ) from exc
        family, kind, proto, _, sockaddr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            # As asyncio does: a restart may rebind while old connections sit in
            # TIME_WAIT; a port another process listens on is still refused.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(sockaddr)
            sock.listen(128)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            hint = _BIND_HINTS.get(exc.errno or 0, "")
            raise ConfigurationError(
                f"HTTP server cannot listen on {address} (settings http_host, http_port): "
                f"{exc.strerror or exc}{hint.format(port=self._requested_port)}"
            ) from exc
        return sock

    def _serve(self, server: _ThreadServer, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # uvicorn calls sys.exit on start-up failures
            self._failure = exc
            _log.exception("HTTP server on %s failed", self._address())

    def _address(self) -> str:
        port = self._requested_port if self._bound_port is None else self._bound_port
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"{host}:{port}"

    def _close_socket(self) -> None:
        if self._socket is not None:
            self._socket.close()
