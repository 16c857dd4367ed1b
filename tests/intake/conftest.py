"""Probes for the intake guard tests.

- ``secret_file``: a regular file holding a unique marker, for "the marker never shows up".
- ``secret_fifo``: a named pipe whose writer notices the moment anything opens it for
  reading, for "the file is not even opened" (a regular file cannot tell).
- ``listener``: a listening socket on 127.0.0.1 that counts connections, for "no
  connection is attempted".
- ``exception_texts``: every string reachable from an exception (text, args, attributes,
  findings, the cause/context chain), for leak checks.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest


@dataclass(frozen=True)
class Secret:
    path: Path
    marker: str

    @property
    def uri(self) -> str:
        return self.path.as_uri()


@dataclass(frozen=True)
class SecretFifo(Secret):
    opened: threading.Event

    def was_opened(self, grace_seconds: float = 0.2) -> bool:
        # A reader and the blocked writer meet in open(); give the writer thread a moment.
        return self.opened.wait(grace_seconds)


@pytest.fixture
def secret_file(tmp_path: Path) -> Secret:
    marker = f"MESBRIDGE-SECRET-{uuid.uuid4().hex}"
    path = tmp_path / "secret.txt"
    path.write_text(f"{marker}\nroot:x:0:0:{marker}:/root:/bin/sh\n", encoding="utf-8")
    return Secret(path=path, marker=marker)


@pytest.fixture
def secret_fifo(tmp_path: Path) -> Iterator[SecretFifo]:
    marker = f"MESBRIDGE-SECRET-{uuid.uuid4().hex}"
    path = tmp_path / "secret.fifo"
    os.mkfifo(path)
    opened = threading.Event()

    def writer() -> None:
        fd = os.open(path, os.O_WRONLY)  # blocks until someone opens the pipe for reading
        opened.set()
        try:
            os.write(fd, marker.encode())
        except BrokenPipeError:
            pass
        finally:
            os.close(fd)

    thread = threading.Thread(target=writer, name="secret-fifo-writer", daemon=True)
    thread.start()
    yield SecretFifo(path=path, marker=marker, opened=opened)
    if thread.is_alive():
        # Nobody opened it: open it ourselves so the writer thread can finish.
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            thread.join(timeout=5)
        finally:
            os.close(reader)
    thread.join(timeout=5)
    assert not thread.is_alive(), "the FIFO writer thread did not finish"


@dataclass
class Listener:
    sock: socket.socket

    @property
    def host_port(self) -> str:
        host, port = self.sock.getsockname()
        return f"{host}:{port}"

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def listener() -> Iterator[Listener]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.setblocking(False)
    try:
        yield Listener(sock)
    finally:
        sock.close()


def _texts(value: object, seen: set[int], depth: int = 0) -> Iterator[str]:
    if id(value) in seen or depth > 6:
        return
    seen.add(id(value))
    if isinstance(value, (str, bytes)):
        yield value.decode("utf-8", "replace") if isinstance(value, bytes) else value
        return
    yield repr(value)
    if isinstance(value, BaseException):
        yield str(value)
        yield from _texts(value.args, seen, depth + 1)
        yield from _texts(getattr(value, "__notes__", ()), seen, depth + 1)
        yield from _texts(value.__cause__, seen, depth + 1)
        yield from _texts(value.__context__, seen, depth + 1)
        error_log = getattr(value, "error_log", None)
        if error_log is not None:
            yield from (str(entry) for entry in error_log)
    if isinstance(value, (tuple, list, set, frozenset)):
        for item in value:
            yield from _texts(item, seen, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _texts(key, seen, depth + 1)
            yield from _texts(item, seen, depth + 1)
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict):
        yield from _texts(attributes, seen, depth + 1)
    for slot in getattr(type(value), "__slots__", ()):
        if isinstance(slot, str) and hasattr(value, slot):
            yield from _texts(getattr(value, slot), seen, depth + 1)


@pytest.fixture
def exception_texts() -> Callable[[BaseException], list[str]]:
    def collect(exc: BaseException) -> list[str]:
        return list(_texts(exc, set()))

    return collect
