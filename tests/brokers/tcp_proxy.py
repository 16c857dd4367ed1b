"""A TCP proxy on loopback whose connections a test can cut: a network failure on demand.

``cut()`` shuts down every proxied connection in both directions, as a failing
switch or a killed load balancer would; the client sees the socket die and the
broker sees its peer go away (and requeues unacknowledged deliveries). New
connections are still accepted afterwards. ``stall()`` stops forwarding while the
sockets stay open: a link that silently eats traffic. ``down()`` cuts every connection
and closes new ones at once until ``up()``: the broker is away for a while.
"""

from __future__ import annotations

import contextlib
import socket
import threading

_CHUNK = 65536


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self._upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._closed = False
        self._flowing = threading.Event()
        self._flowing.set()
        self._refusing = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="tcp-proxy-accept")
        self._acceptor.start()

    def stall(self) -> None:
        """Stop forwarding bytes (connections stay open, nothing arrives) until ``cut()``."""
        self._flowing.clear()

    def cut(self) -> None:
        """Kill every proxied connection (both directions)."""
        self._flowing.set()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def down(self) -> None:
        """Cut every connection and close new ones as soon as they arrive, until ``up()``."""
        self._refusing.set()
        self.cut()

    def up(self) -> None:
        self._refusing.clear()

    def close(self) -> None:
        self._closed = True
        self.cut()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._acceptor.join(5)
        for thread in list(self._threads):
            thread.join(5)

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self._refusing.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            # As the clients do (pika sets it): otherwise Nagle and delayed ACKs add ~40 ms
            # to every small request/answer pair that passes the proxy.
            for sock in (client, upstream):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._sockets += [client, upstream]
            for source, target in ((client, upstream), (upstream, client)):
                pump = threading.Thread(target=self._pump, args=(source, target), daemon=True)
                self._threads.append(pump)
                pump.start()

    def _pump(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while chunk := source.recv(_CHUNK):
                self._flowing.wait()
                target.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            # Each socket is pumped from by one thread, which closes it when done.
            source.close()
