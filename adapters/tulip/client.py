"""Tulip Tables API client: the sink of flow F2 (one Work Order record per process order).

Endpoint: ``https://<instance>.tulip.co/api/v3/`` (``TulipSettings.base_url``), HTTP
Basic auth with an API key id (``apikey.2_…``) and its secret; the key needs the
scopes ``tables:read`` and ``tables:write``. Every request sends
``X-Tulip-Number-Format: decimal`` so numbers come back as decimal strings, and
record values go out through :mod:`adapters.tulip.values` (decimals as strings,
never floats). Sync, on ``httpx``; tests inject a transport or use
:class:`adapters.tulip.fake.FakeTulip`.

Calls:

- ``column_ids_by_label()``: ``GET /tables/{id}``; column label → internal column id
  (hidden columns left out; two visible columns with one label are a ConfigurationError).
  Call it once at start-up: it also tells upsert which columns are timestamps.
- ``get_record(id)``: ``GET /tables/{id}/records/{recordId}``; ``None`` if absent.
- ``upsert_record(record)``: keyed by ``record["id"]`` (the order number). The rule:
  read the record; absent → ``POST`` it; present and equal on every column we send →
  no write at all (``UNCHANGED``; a timestamp column compares instants, not texts);
  present and different → ``PUT`` every column we send. A ``POST`` answered 409
  (created meanwhile: another instance, or our own earlier attempt whose answer was
  lost) and a ``PUT`` answered 404 (deleted meanwhile) start the round again, at
  most three rounds. So a resend after a
  crash, a retried timeout or two instances racing all end in one record with the
  wanted values, and a resend of unchanged data writes nothing (no ``_updatedAt``
  bump, no Tulip automation fired twice). Columns the record does not name are
  never touched by an update.

Rate limiting: a write bucket (``writes_per_second``, default 10 = Tulip's limit per
table) and a read bucket (``reads_per_second``, default 50) pace this process. A
429 is honoured: ``Retry-After`` (seconds or HTTP date) pauses the bucket for every
thread, then the request is retried; without the header, exponential backoff from
``backoff_s``. One client per table per process is the intended use, so the
bucket is the table's.

Failure modes (all declared as data below; httpx errors never escape):

- network errors, timeouts, 408, 5xx: retried ``max_retries`` times, then ``TransientError``;
- 429: retried likewise, then ``TulipRateLimited`` (a ``TransientError``); a
  ``Retry-After`` above ``max_retry_after_s`` fails at once so no worker sleeps for minutes;
- 401/403: ``TulipAuthError``; 404 on the table: ``TulipTableNotFound``; a redirect or
  an unsupported URL scheme: ``ConfigurationError`` (the route cannot work);
- 400/422 on a write: ``TulipRecordRejected`` (a ``PermanentError``) with Tulip's
  message, the record id and the column(s) the message names;
- a value that cannot be sent unchanged (float, naive datetime, …): ``MappingError``,
  raised before any request;
- any other unexpected status: ``PermanentError``.

The API key secret appears in no error, no ``repr`` and no log.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import Enum
from types import TracebackType
from typing import Self
from urllib.parse import quote

import httpx

from adapters.tulip.errors import (
    TulipAuthError,
    TulipRateLimited,
    TulipRecordRejected,
    TulipTableNotFound,
)
from adapters.tulip.ratelimit import TokenBucket, parse_retry_after
from adapters.tulip.settings import TulipSettings
from adapters.tulip.values import JsonScalar, changed_columns, encode_record, record_id_of
from contracts.errors import (
    ConfigurationError,
    Finding,
    MesbridgeError,
    PermanentError,
    TransientError,
)

__all__ = [
    "CONFIGURATION_TRANSPORT_ERRORS",
    "TRANSIENT_TRANSPORT_ERRORS",
    "TulipTablesClient",
    "UpsertOutcome",
    "UpsertResult",
]

# httpx errors, by what the caller must do next (kombu's ``connection_errors`` idea).
TRANSIENT_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)
CONFIGURATION_TRANSPORT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.UnsupportedProtocol,
)

# Statuses retried inside one call (besides every 5xx).
_RETRY_STATUSES = frozenset({408, 429})
_AUTH_STATUSES = frozenset({401, 403})
_REJECTED_STATUSES = frozenset({400, 422})
# What Tulip answers to a POST of an id that exists. 409 is the HTTP meaning of it;
# the stored public docs do not show Tulip's code, so it is declared here, once.
_ALREADY_EXISTS_STATUSES = frozenset({409})
_MAX_UPSERT_ROUNDS = 3
_MAX_MESSAGE_CHARS = 300
_NUMBER_FORMAT_HEADER = "X-Tulip-Number-Format"


class UpsertOutcome(Enum):
    CREATED = "created"
    UPDATED = "updated"
    # Tulip already held exactly these values (also when an earlier attempt whose
    # answer was lost had written them): nothing was written.
    UNCHANGED = "unchanged"


@dataclass(frozen=True, slots=True, kw_only=True)
class UpsertResult:
    record_id: str
    outcome: UpsertOutcome
    # Columns written because they were new or differed (all sent columns on CREATED).
    changed: tuple[str, ...]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class TulipTablesClient:
    """One Tulip table, read and upserted safely under retries, races and the rate limit."""

    def __init__(
        self,
        settings: TulipSettings,
        *,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.settings = settings
        self._sleep = sleep
        self._now = now
        self.write_bucket = TokenBucket(settings.writes_per_second, clock=clock, sleep=sleep)
        self.read_bucket = TokenBucket(settings.reads_per_second, clock=clock, sleep=sleep)
        self._http = httpx.Client(
            base_url=settings.api_root,
            auth=httpx.BasicAuth(settings.api_key_id, settings.api_key_secret),
            headers={
                _NUMBER_FORMAT_HEADER: "decimal",
                "Accept": "application/json",
                "User-Agent": "mesbridge-tulip",
            },
            timeout=settings.timeout_s,
            transport=transport,
            follow_redirects=False,
        )
        table = quote(settings.table_id, safe="")
        self._table_path = f"tables/{table}"
        self._records_path = f"tables/{table}/records"
        # Filled by column_ids_by_label(); lets upsert see that Tulip's "…Z" text of a
        # sent "…+02:00" timestamp is the same instant. Empty: compare texts strictly.
        self._timestamp_columns: frozenset[str] = frozenset()

    # -- public calls -------------------------------------------------------------------

    def column_ids_by_label(self) -> dict[str, str]:
        """Label → internal column id of the table's visible columns (``GET /tables/{id}``)."""
        what = f"GET table {self.settings.table_id} schema"
        response = self._request("GET", self._table_path, bucket=None, what=what)
        if response.status_code != 200:
            raise self._error_for(response, what, record_id=None, sent={})
        columns = self._json_object(response, what).get("columns")
        if not isinstance(columns, list):
            raise TransientError(f"Tulip {what}: the answer has no 'columns' list")
        by_label: dict[str, str] = {}
        clashes: dict[str, list[str]] = {}
        timestamps: set[str] = set()
        for column in columns:
            if not isinstance(column, dict) or column.get("hidden") is True:
                continue
            label, name = column.get("label"), column.get("name")
            if not isinstance(label, str) or not isinstance(name, str):
                continue
            data_type = column.get("dataType")
            if isinstance(data_type, dict) and data_type.get("type") == "timestamp":
                timestamps.add(name)
            if label in by_label:
                clashes.setdefault(label, [by_label[label]]).append(name)
            by_label[label] = name
        if clashes:
            raise ConfigurationError(
                f"Tulip table {self.settings.table_id} has several visible columns with one label, "
                "so a label cannot name a column",
                findings=[
                    Finding(
                        where=f"Tulip table {self.settings.table_id}, label {label!r}",
                        value=", ".join(names),
                        expected="one column per label (rename one in Tulip, or map the column id)",
                    )
                    for label, names in sorted(clashes.items())
                ],
            )
        self._timestamp_columns = frozenset(timestamps)
        return by_label

    def get_record(self, record_id: str) -> dict[str, object] | None:
        """The stored record (numbers as decimal strings), or ``None`` if there is none."""
        record_id = record_id_of({"id": record_id})
        what = f"GET record {record_id} of table {self.settings.table_id}"
        response = self._request(
            "GET", self._record_path(record_id), bucket=self.read_bucket, what=what
        )
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise self._error_for(response, what, record_id=record_id, sent={})
        return self._json_object(response, what)

    def upsert_record(self, record: Mapping[str, object]) -> UpsertResult:
        """Create or update the record keyed by ``record["id"]``; see the module docstring."""
        wanted = encode_record(record)
        record_id = record_id_of(wanted)
        update_body = {column: value for column, value in wanted.items() if column != "id"}
        for _ in range(_MAX_UPSERT_ROUNDS):
            stored = self.get_record(record_id)
            if stored is None:
                if self._create(record_id, wanted):
                    return UpsertResult(
                        record_id=record_id,
                        outcome=UpsertOutcome.CREATED,
                        changed=tuple(update_body),
                    )
                continue  # created meanwhile: compare with what is there now
            changed = changed_columns(wanted, stored, timestamp_columns=self._timestamp_columns)
            if not changed:
                return UpsertResult(
                    record_id=record_id, outcome=UpsertOutcome.UNCHANGED, changed=()
                )
            if self._update(record_id, update_body):
                return UpsertResult(
                    record_id=record_id, outcome=UpsertOutcome.UPDATED, changed=tuple(changed)
                )
            # deleted meanwhile: create it again
        raise TransientError(
            f"Tulip record {record_id} in table {self.settings.table_id} was created or deleted "
            f"by someone else during each of {_MAX_UPSERT_ROUNDS} upsert rounds; try again later"
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- writes ---------------------------------------------------------------------------

    def _create(self, record_id: str, wanted: dict[str, JsonScalar]) -> bool:
        """POST the record; False if it exists already."""
        what = f"POST record {record_id} to table {self.settings.table_id}"
        response = self._request(
            "POST", self._records_path, bucket=self.write_bucket, what=what, body=wanted
        )
        if response.status_code in (200, 201):
            return True
        if response.status_code in _ALREADY_EXISTS_STATUSES:
            return False
        if response.status_code == 404:
            raise self._table_not_found(response)
        raise self._error_for(response, what, record_id=record_id, sent=wanted)

    def _update(self, record_id: str, body: dict[str, JsonScalar]) -> bool:
        """PUT the columns; False if the record does not exist (any more)."""
        what = f"PUT record {record_id} in table {self.settings.table_id}"
        response = self._request(
            "PUT", self._record_path(record_id), bucket=self.write_bucket, what=what, body=body
        )
        if response.status_code == 200:
            return True
        if response.status_code == 404:
            return False
        raise self._error_for(response, what, record_id=record_id, sent=body)

    # -- one request, with pacing and bounded retries ---------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        bucket: TokenBucket | None,
        what: str,
        body: Mapping[str, JsonScalar] | None = None,
    ) -> httpx.Response:
        attempts = self.settings.max_retries + 1
        for attempt in range(1, attempts + 1):
            if bucket is not None:
                bucket.acquire()
            try:
                response = self._http.request(method, path, json=body)
            except CONFIGURATION_TRANSPORT_ERRORS as exc:
                raise ConfigurationError(
                    f"Tulip {what}: the base URL cannot be used ({exc}); "
                    "expected https://<instance>.tulip.co/api/v3"
                ) from exc
            except TRANSIENT_TRANSPORT_ERRORS as exc:
                if attempt == attempts:
                    raise TransientError(
                        f"Tulip {what}: {_describe_transport_error(exc)} "
                        f"(after {attempts} attempt(s)); Tulip may be unreachable or slow"
                    ) from exc
                self._sleep(self._backoff(attempt))
                continue
            status = response.status_code
            if status not in _RETRY_STATUSES and status < 500:
                return response
            retry_after = parse_retry_after(response.headers.get("Retry-After"), now=self._now())
            delay = retry_after if retry_after is not None else self._backoff(attempt)
            too_long = retry_after is not None and retry_after > self.settings.max_retry_after_s
            if attempt == attempts or too_long:
                raise self._gave_up(response, what, attempt=attempt, retry_after=retry_after)
            if status == 429 and bucket is not None:
                bucket.pause(delay)  # holds every thread writing to this table, not only this one
            else:
                self._sleep(delay)
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _backoff(self, attempt: int) -> float:
        return float(self.settings.backoff_s * 2 ** (attempt - 1))

    def _gave_up(
        self, response: httpx.Response, what: str, *, attempt: int, retry_after: float | None
    ) -> TransientError:
        said = _tulip_message(response)
        detail = f" (Tulip says: {said})" if said else ""
        if response.status_code != 429:
            return TransientError(
                f"Tulip {what}: HTTP {response.status_code} after {attempt} attempt(s){detail}"
            )
        if retry_after is not None and retry_after > self.settings.max_retry_after_s:
            summary = (
                f"Tulip {what}: rate limited (HTTP 429) and asked to wait {retry_after:g} s, "
                f"longer than max_retry_after_s={self.settings.max_retry_after_s:g} s; "
                "the retry is left to the service"
            )
        else:
            summary = f"Tulip {what}: still rate limited (HTTP 429) after {attempt} attempt(s)"
        return TulipRateLimited(summary + detail, retry_after_s=retry_after)

    # -- answers --------------------------------------------------------------------------

    def _error_for(
        self,
        response: httpx.Response,
        what: str,
        *,
        record_id: str | None,
        sent: Mapping[str, JsonScalar],
    ) -> MesbridgeError:
        """The error for an answer the caller did not expect, by what must happen next."""
        status = response.status_code
        said = _tulip_message(response)
        detail = f" (Tulip says: {said})" if said else ""
        if status in _AUTH_STATUSES:
            meaning = (
                "the API key id or secret is wrong, or the key was revoked"
                if status == 401
                else "the API key lacks a scope (tables:read, tables:write) or access to the table"
            )
            return TulipAuthError(
                f"Tulip {what}: HTTP {status}, {meaning}; API key id {self.settings.api_key_id!r}"
                f"{detail}. Fix MESBRIDGE_TULIP_API_KEY_ID / MESBRIDGE_TULIP_API_KEY_SECRET"
            )
        if status == 404 and record_id is None:
            return self._table_not_found(response)
        if status in _REJECTED_STATUSES and record_id is not None:
            return TulipRecordRejected(
                f"Tulip rejected record {record_id} in table {self.settings.table_id} "
                f"(HTTP {status}){detail}",
                findings=_findings_for(said, record_id, self.settings.table_id, sent),
            )
        if 300 <= status < 400:
            return ConfigurationError(
                f"Tulip {what}: HTTP {status} redirect to {response.headers.get('Location')!r}; "
                "expected the API root itself as base URL (https://<instance>.tulip.co/api/v3)"
            )
        return PermanentError(f"Tulip {what}: unexpected HTTP {status}{detail}")

    def _table_not_found(self, response: httpx.Response) -> TulipTableNotFound:
        said = _tulip_message(response)
        detail = f" (Tulip says: {said})" if said else ""
        return TulipTableNotFound(
            f"Tulip table {self.settings.table_id!r} does not exist at {self.settings.api_root} "
            f"or the API key cannot see it{detail}. Fix MESBRIDGE_TULIP_TABLE_ID"
        )

    def _json_object(self, response: httpx.Response, what: str) -> dict[str, object]:
        try:
            # parse_float: a float never enters mesbridge, even if Tulip ignores the header.
            data = json.loads(response.content, parse_float=Decimal)
        except ValueError as exc:
            raise TransientError(
                f"Tulip {what}: HTTP {response.status_code} but the body is not JSON "
                "(a proxy page?)"
            ) from exc
        if not isinstance(data, dict):
            raise TransientError(f"Tulip {what}: expected a JSON object, got {type(data).__name__}")
        return data

    def _record_path(self, record_id: str) -> str:
        return f"{self._records_path}/{quote(record_id, safe='')}"


def _describe_transport_error(exc: httpx.TransportError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def _tulip_message(response: httpx.Response) -> str:
    """Tulip's own words from an error body, shortened; '' if it said nothing readable."""
    text = response.text.strip()
    try:
        data = json.loads(text) if text else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        parts = [
            str(data[key])
            for key in ("errorCode", "message", "error", "details", "detail")
            if data.get(key) not in (None, "", [], {})
        ]
        text = ": ".join(parts) if parts else text
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE_CHARS:
        text = text[:_MAX_MESSAGE_CHARS] + "…"
    return text


def _findings_for(
    said: str, record_id: str, table_id: str, sent: Mapping[str, JsonScalar]
) -> list[Finding]:
    """One finding per sent column Tulip's message names; one for the record if it names none."""
    tulip = f"a value Tulip accepts (Tulip says: {said or 'nothing'})"
    findings = [
        Finding(
            where=f"Tulip table {table_id}, record {record_id}, column {column}",
            value=value if isinstance(value, str) else json.dumps(value),
            expected=tulip,
        )
        for column, value in sent.items()
        if column != "id" and re.search(rf"(?<![\w]){re.escape(column)}(?![\w])", said)
    ]
    if findings:
        return findings
    return [Finding(where=f"Tulip table {table_id}, record {record_id}", expected=tulip)]
