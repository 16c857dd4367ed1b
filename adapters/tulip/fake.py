"""A fake Tulip that speaks the Tables API over real HTTP on loopback, for tests and the demo.

    with FakeTulip(tables={"WO": [tulip_column("qty", "Quantity", "float")]}) as fake:
        client = TulipTablesClient(fake.client_settings("WO"))

A stdlib ``ThreadingHTTPServer`` on ``127.0.0.1`` (or another 127.0.0.0/8 address)
with an ephemeral port, in a background thread. It serves ``/api/v3/``:

- ``GET /tables/{id}``: the schema (an ``id`` column first, then the given columns);
- ``GET /tables/{id}/records``: ``limit`` 1–100 (default 10; more is 400), ``offset``,
  ``filters`` (JSON list of ``{"field", "functionType": "equal", "arg"}``);
- ``GET /tables/{id}/records/{recordId}``: 200, or 404;
- ``POST /tables/{id}/records``: 201 with ``Location``; 409 if the id exists; 400 for a
  missing id, an unknown column or a value of the wrong type;
- ``PUT /tables/{id}/records/{recordId}``: 200 updating only the columns sent; 404 if
  the record does not exist.

Like Tulip: HTTP Basic auth (401 with ``WWW-Authenticate`` otherwise), 404 for an
unknown table, and a rate limit per table and operation (writes 10/s, single
reads 50/s, lists 10/s; a token bucket as deep as one second of budget) answered
with 429 and ``Retry-After`` in whole seconds. Knobs for tests: ``fail_next(n,
status)`` (5xx, 429 with a chosen ``Retry-After``, 401 …), ``delay_next(n,
seconds)`` (to provoke client timeouts), ``requests()`` (the log: method, path,
status, body, number-format header, arrival time, never the secret),
``records(table_id)``, ``seed_record`` and ``delete_record``.

Refuses to bind anything but an IPv4 loopback address, and answers 403 to a peer
that is not loopback. Not a security boundary and not fast: a test double.
"""

from __future__ import annotations

import base64
import hmac
import ipaddress
import json
import math
import socketserver
import sys
import threading
import time
from collections import deque
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self
from urllib.parse import parse_qs, quote, unquote, urlsplit

from adapters.tulip.fake_store import FakeTable, FakeTulipError, tulip_column
from adapters.tulip.settings import TulipSettings

__all__ = ["FakeTulip", "LoggedRequest", "tulip_column"]

_API_PREFIX = ("api", "v3", "tables")
_MAX_LIMIT = 100
_DEFAULT_LIMIT = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class LoggedRequest:
    method: str
    path: str
    query: str
    table_id: str | None
    record_id: str | None
    # The API key id the request authenticated with (None if absent/unreadable); never the secret.
    user: str | None
    number_format: str | None
    body: object
    status: int
    # time.monotonic() when the request arrived.
    at: float

    @property
    def is_write(self) -> bool:
        return self.method in {"POST", "PUT"}


@dataclass
class _Failure:
    status: int
    retry_after: str | None
    body: Mapping[str, object] | None
    methods: frozenset[str] | None


@dataclass
class _Delay:
    seconds: float
    methods: frozenset[str] | None


class _Bucket:
    """Tulip-side limit: ``rate`` tokens per second, ``rate`` deep (one second of budget).

    Written independently of the client's GCRA bucket so a test of one against the other
    does not pass by sharing a mistake.
    """

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.last = time.monotonic()

    def take(self, now: float) -> float | None:
        """None if a token was taken, else the seconds until one is available."""
        self.tokens = min(self.rate, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / self.rate


class FakeTulip:
    def __init__(
        self,
        *,
        tables: Mapping[str, Sequence[Mapping[str, object]]],
        api_key_id: str = "apikey.2_fake",
        api_key_secret: str = "fake-secret-do-not-use",  # noqa: S107 (a test double's own key)
        host: str = "127.0.0.1",
        write_limit_per_second: float = 10.0,
        read_limit_per_second: float = 50.0,
        list_limit_per_second: float = 10.0,
        log_size: int = 10_000,
    ) -> None:
        if not _is_ipv4_loopback(host):
            raise ValueError(f"FakeTulip serves IPv4 loopback only; {host!r} is not in 127.0.0.0/8")
        self.api_key_id = api_key_id
        self.api_key_secret = api_key_secret
        self._host = host
        self._tables = {
            table_id: FakeTable(table_id, columns) for table_id, columns in tables.items()
        }
        self._limits = {
            "write": write_limit_per_second,
            "read": read_limit_per_second,
            "list": list_limit_per_second,
        }
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()
        # Bounded so a long demo run does not grow without limit; the newest entries stay.
        self._log: deque[LoggedRequest] = deque(maxlen=log_size)
        self._failures: deque[_Failure] = deque()
        self._delays: deque[_Delay] = deque()
        self._closing = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._server = _Server((self._host, 0), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("FakeTulip is not started; use it as a context manager")
        return f"http://{self._host}:{int(self._server.server_address[1])}/api/v3"

    def client_settings(self, table_id: str, **changes: Any) -> TulipSettings:
        """Settings for a client of this fake's table (``changes`` override any field)."""
        values: dict[str, Any] = {
            "base_url": self.base_url,
            "api_key_id": self.api_key_id,
            "api_key_secret": self.api_key_secret,
            "table_id": table_id,
        }
        values.update(changes)
        return TulipSettings(**values)

    # -- knobs ----------------------------------------------------------------------------

    def fail_next(
        self,
        n: int,
        status: int,
        *,
        retry_after: str | None = None,
        body: Mapping[str, object] | None = None,
        methods: Collection[str] | None = None,
    ) -> None:
        """Answer the next ``n`` requests (of ``methods``, if given) with ``status``."""
        only = frozenset(m.upper() for m in methods) if methods else None
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, body, only) for _ in range(n))

    def delay_next(self, n: int, seconds: float, *, methods: Collection[str] | None = None) -> None:
        """Hold the next ``n`` requests (of ``methods``) for ``seconds`` before answering."""
        only = frozenset(m.upper() for m in methods) if methods else None
        with self._lock:
            self._delays.extend(_Delay(seconds, only) for _ in range(n))

    def requests(self) -> list[LoggedRequest]:
        with self._lock:
            return list(self._log)

    def records(self, table_id: str) -> list[dict[str, object]]:
        """The table's records as the API shows them with decimal number format."""
        with self._lock:
            table = self._tables[table_id]
            return table.list_records(limit=sys.maxsize, offset=0, equal={}, decimal=True)

    def seed_record(self, table_id: str, record: Mapping[str, object]) -> None:
        """Insert a record directly (no auth, no limit, not logged); ValueError if invalid."""
        with self._lock:
            try:
                self._tables[table_id].create(_as_json_values(record), decimal=True)
            except FakeTulipError as exc:
                raise ValueError(exc.message) from exc

    def delete_record(self, table_id: str, record_id: str) -> None:
        with self._lock:
            self._tables[table_id].delete(record_id)

    # -- serving (called from handler threads) ---------------------------------------------

    def _serve(self, request: _Request) -> tuple[int, dict[str, str], object]:
        failure = self._take(self._failures, request.method)
        delay = self._take(self._delays, request.method)
        if delay is not None:
            self._closing.wait(delay.seconds)
        if failure is not None:
            headers = {} if failure.retry_after is None else {"Retry-After": failure.retry_after}
            body = failure.body or {
                "errorCode": "Injected",
                "message": f"injected HTTP {failure.status}",
            }
            return failure.status, headers, body
        if not self._authenticated(request.authorization):
            return (
                401,
                {"WWW-Authenticate": 'Basic realm="Tulip"'},
                _error("Unauthorized", "bad credentials"),
            )
        return self._route(request)

    def _take(self, queue: deque[Any], method: str) -> Any:
        with self._lock:
            for index, item in enumerate(queue):
                if item.methods is None or method in item.methods:
                    del queue[index]
                    return item
        return None

    def _authenticated(self, authorization: str | None) -> bool:
        expected = f"{self.api_key_id}:{self.api_key_secret}".encode()
        presented = _basic_credentials(authorization)
        return presented is not None and hmac.compare_digest(presented, expected)

    def _route(self, request: _Request) -> tuple[int, dict[str, str], object]:
        segments = request.segments
        if tuple(segments[:3]) != _API_PREFIX or len(segments) not in (4, 5, 6):
            return 404, {}, _error("NotFound", f"no such endpoint {request.path}")
        table_id = segments[3]
        if len(segments) >= 5 and segments[4] != "records":
            return 404, {}, _error("NotFound", f"no such endpoint {request.path}")
        with self._lock:
            table = self._tables.get(table_id)
            if table is None:
                return 404, {}, _error("TableNotFound", f"table {table_id!r} not found")
            try:
                return self._dispatch(table, request, segments)
            except _RateLimited as limited:
                headers = {"Retry-After": str(limited.retry_after)}
                return 429, headers, _error(limited.error_code, limited.message)
            except FakeTulipError as exc:
                return exc.status, {}, _error(exc.error_code, exc.message)

    def _dispatch(
        self, table: FakeTable, request: _Request, segments: list[str]
    ) -> tuple[int, dict[str, str], object]:
        method, decimal = request.method, request.number_format == "decimal"
        if len(segments) == 4:
            if method != "GET":
                raise FakeTulipError(405, "MethodNotAllowed", f"{method} is not allowed here")
            return 200, {}, table.schema()
        if len(segments) == 5:
            if method == "GET":
                limit, offset, equal = _list_query(request.query)
                self._limit(table.table_id, "list")
                return (
                    200,
                    {},
                    table.list_records(limit=limit, offset=offset, equal=equal, decimal=decimal),
                )
            if method == "POST":
                self._limit(table.table_id, "write")
                record = table.create(request.json(), decimal=decimal)
                record_path = quote(str(record["id"]), safe="")
                location = f"/api/v3/tables/{quote(table.table_id)}/records/{record_path}"
                return 201, {"Location": location}, record
            raise FakeTulipError(405, "MethodNotAllowed", f"{method} is not allowed here")
        record_id = segments[5]
        if method == "GET":
            self._limit(table.table_id, "read")
            return 200, {}, table.get(record_id, decimal=decimal)
        if method == "PUT":
            self._limit(table.table_id, "write")
            return 200, {}, table.update(record_id, request.json(), decimal=decimal)
        raise FakeTulipError(405, "MethodNotAllowed", f"{method} is not allowed here")

    def _limit(self, table_id: str, operation: str) -> None:
        bucket = self._buckets.setdefault((table_id, operation), _Bucket(self._limits[operation]))
        wait = bucket.take(time.monotonic())
        if wait is not None:
            raise _RateLimited(math.ceil(wait), table_id, operation)

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)


class _RateLimited(FakeTulipError):
    def __init__(self, retry_after: int, table_id: str, operation: str) -> None:
        super().__init__(
            429, "TooManyRequests", f"rate limit for {operation}s on table {table_id} exceeded"
        )
        self.retry_after = retry_after


@dataclass
class _Request:
    method: str
    path: str
    query: str
    segments: list[str]
    authorization: str | None
    number_format: str | None
    raw_body: bytes

    def json(self) -> object:
        try:
            return json.loads(self.raw_body or b"null", parse_float=Decimal)
        except ValueError as exc:
            raise FakeTulipError(400, "InvalidRequest", "the body is not JSON") from exc


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], handler: type[_Handler], fake: FakeTulip) -> None:
        self.fake = fake
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would resolve the host name (socket.getfqdn), a DNS
        # round trip that can stall in a sandbox; loopback needs no name.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has closed its socket; that is the test, not an error.
        return


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the delayed ACK adds ~40 ms each.
    disable_nagle_algorithm = True
    server: _Server
    timeout = 30

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        return  # the request log is fake.requests(); stderr stays quiet

    def _handle(self) -> None:
        arrived = time.monotonic()
        fake = self.server.fake
        length = int(self.headers.get("Content-Length") or 0)
        raw_body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        segments = [unquote(s) for s in parts.path.split("/") if s]
        request = _Request(
            method=self.command,
            path=parts.path,
            query=parts.query,
            segments=segments,
            authorization=self.headers.get("Authorization"),
            number_format=self.headers.get("X-Tulip-Number-Format"),
            raw_body=raw_body,
        )
        status: int
        headers: dict[str, str]
        body: object
        if not _is_ipv4_loopback(str(self.client_address[0])):
            status, headers, body = 403, {}, _error("Forbidden", "loopback clients only")
        else:
            status, headers, body = fake._serve(request)
        fake._record(
            LoggedRequest(
                method=request.method,
                path=request.path,
                query=request.query,
                table_id=segments[3]
                if len(segments) > 3 and segments[:3] == list(_API_PREFIX)
                else None,
                record_id=segments[5] if len(segments) > 5 else None,
                user=_basic_user(request.authorization),
                number_format=request.number_format,
                body=_loaded(raw_body),
                status=status,
                at=arrived,
            )
        )
        payload = json.dumps(body, default=_json_default).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


def _list_query(query: str) -> tuple[int, int, dict[str, object]]:
    params = parse_qs(query)
    try:
        limit = int(params.get("limit", [str(_DEFAULT_LIMIT)])[0])
        offset = int(params.get("offset", ["0"])[0])
    except ValueError as exc:
        raise FakeTulipError(400, "InvalidRequest", "limit and offset must be integers") from exc
    if not 1 <= limit <= _MAX_LIMIT:
        raise FakeTulipError(
            400, "InvalidRequest", f"limit must be between 1 and {_MAX_LIMIT}, got {limit}"
        )
    if offset < 0:
        raise FakeTulipError(400, "InvalidRequest", f"offset must be 0 or more, got {offset}")
    equal: dict[str, object] = {}
    for raw in params.get("filters", []):
        try:
            filters = json.loads(raw)
        except ValueError as exc:
            raise FakeTulipError(400, "InvalidRequest", "filters must be a JSON array") from exc
        for item in filters if isinstance(filters, list) else [None]:
            if not isinstance(item, dict) or item.get("functionType") != "equal":
                raise FakeTulipError(400, "InvalidRequest", f"unsupported filter {item!r}")
            equal[str(item.get("field"))] = item.get("arg")
    return limit, offset, equal


def _basic_credentials(authorization: str | None) -> bytes | None:
    if not authorization or not authorization.startswith("Basic "):
        return None
    try:
        return base64.b64decode(authorization[6:], validate=True)
    except ValueError:
        return None


def _basic_user(authorization: str | None) -> str | None:
    credentials = _basic_credentials(authorization)
    if credentials is None or b":" not in credentials:
        return None
    return credentials.split(b":", 1)[0].decode("utf-8", "replace")


def _loaded(raw_body: bytes) -> object:
    if not raw_body:
        return None
    try:
        return json.loads(raw_body, parse_float=Decimal)
    except ValueError:
        return raw_body.decode("utf-8", "replace")


def _as_json_values(record: Mapping[str, object]) -> dict[str, object]:
    return {key: format(v, "f") if isinstance(v, Decimal) else v for key, v in record.items()}


def _error(code: str, message: str) -> dict[str, object]:
    return {"errorCode": code, "message": message}


def _json_default(value: object) -> object:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _is_ipv4_loopback(host: str) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.version == 4 and address.is_loopback
