"""HTTP ingest of Tulip events: ``POST /ingest/tulip/events`` (flow F4, receiving side).

A Tulip app calls an HTTP connector function that posts one event (contract
``tulip/completion/1``, docs/tulip-events.md) to this endpoint. The endpoint checks the
caller, guards and validates the event, publishes it to the inbound exchange
(``<prefix>.in``, routing key ``tulip.<event>``) and answers **202 only after the broker
confirmed it**: a persistent, ``mandatory`` publish with publisher confirms, so an
accepted event is on a durable queue before Tulip hears "accepted", and nothing
acknowledged can be lost. Everything else is answered without taking the event:

====  =====================================================================================
401   no ``Authorization: Bearer <token>``, or the wrong token (``WWW-Authenticate`` says so)
413   body larger than ``IntakeLimits.max_bytes``; refused from ``Content-Length`` or while
      reading, before the whole body is held in memory
415   ``Content-Type`` is not ``application/json`` (UTF-8)
400   not one well-formed JSON document (intake guard: malformed, duplicate keys, NaN, ...)
422   well-formed, but not a valid event: not a JSON object (one event per request), no
      Tulip contract identifies it, it violates its contract, or it cannot be mapped
      (unknown unit, yield without phase, ...); ``findings`` lists each problem
503   the broker is unreachable, nacked or did not confirm in time, or no queue is bound
      for the event: nothing was accepted; ``Retry-After`` says when to send it again
====  =====================================================================================

Error bodies are JSON: ``{"status": "refused" | "unauthorized" | "unavailable", "error":
<class>, "reason": <text>, "findings": [{"where", "value", "expected", "line"}]}``. A
503 never shows broker details (URL, driver text); those go to the log.

Sending an event again is always safe: its ``event_id`` is the AMQP message id and the
idempotency key, so the service gives a repeat no second effect.

Publishing: HTTP requests run in worker threads. :class:`BrokerEventPublisher` gives the
endpoint its own publisher connection, used by one request at a time (a lock; waiting
for it is bounded by the publish timeout), and replaces it after any broker error, so
the first request after an outage reconnects. One confirmed publish per request, in the
order the lock is taken.

The token is compared in constant time (``hmac.compare_digest``) and never logged.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from contracts.errors import (
    ConfigurationError,
    ContractViolation,
    Finding,
    MappingError,
    MesbridgeError,
    OversizedMessage,
    TransientError,
    UnknownContract,
    UnusableInput,
)
from contracts.registry import ContractRegistry
from integration.broker import Broker, BrokerPublisher, Envelope, PublishResult
from integration.intake import IntakeLimits, JsonMessage, read_json
from integration.metrics import IngestResult, Metrics
from integration.routes import inbound_routing_key
from transforms.mapping import MappingProfile
from transforms.tulip_completion import completion_report

__all__ = [
    "DEFAULT_PUBLISH_TIMEOUT_S",
    "DEFAULT_RETRY_AFTER_S",
    "MIN_TOKEN_LENGTH",
    "TULIP_EVENTS_PATH",
    "BrokerEventPublisher",
    "EventPublisher",
    "check_ingest_token",
    "tulip_ingest_route",
]

log = logging.getLogger("mesbridge.ingest")

TULIP_EVENTS_PATH = "/ingest/tulip/events"
DEFAULT_PUBLISH_TIMEOUT_S = 5.0
DEFAULT_RETRY_AFTER_S = 5
MIN_TOKEN_LENGTH = 32
_FAMILY = "tulip"
_SOURCE = f"POST {TULIP_EVENTS_PATH}"
_NO_CACHE = {"Cache-Control": "no-store"}
_REALM = 'Bearer realm="mesbridge"'
# Readers that map an event further than its schema can check (units, phase rules): an
# event they refuse is answered 422 now rather than parked later. By contract type.
_READERS: Mapping[str, Callable[[Mapping[str, object], str, MappingProfile], object]] = {
    "completion": completion_report,
}


class EventPublisher(Protocol):
    """Publishes one event and says what the broker did with it; safe from many threads."""

    def publish(self, envelope: Envelope, *, timeout_s: float) -> PublishResult:
        """``TransientError`` (or another ``MesbridgeError``) when the broker cannot take it."""
        ...

    def close(self) -> None: ...


class BrokerEventPublisher:
    """One publisher of ``broker`` for all HTTP threads: serialised, replaced after a failure."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._lock = threading.Lock()
        self._publisher: BrokerPublisher | None = None
        self._closed = False

    def publish(self, envelope: Envelope, *, timeout_s: float) -> PublishResult:
        """Waiting for the lock and for the confirm share one ``timeout_s`` budget."""
        deadline = time.monotonic() + timeout_s
        if not self._lock.acquire(timeout=timeout_s):
            raise TransientError(
                f"the event publisher was busy for {timeout_s:g} s (the broker is slow or "
                "reconnecting)"
            )
        try:
            if self._closed:
                raise TransientError("the event publisher is closed (the service is stopping)")
            # A publisher that died while idle fails at once: make a new one and try again
            # within what is left of the budget. A failure of a fresh publisher is the answer.
            while True:
                fresh = self._publisher is None
                if self._publisher is None:
                    self._publisher = self._broker.publisher()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TransientError(f"no time left for a confirm within {timeout_s:g} s")
                try:
                    [result] = self._publisher.publish_batch([envelope], timeout_s=remaining)
                except MesbridgeError:
                    self._discard()
                    if fresh or deadline <= time.monotonic():
                        raise
                    continue
                return result
        finally:
            self._lock.release()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._discard()

    def _discard(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            try:
                publisher.close()
            except Exception:  # closing a dead connection; nothing to save
                log.debug("closing the event publisher failed", exc_info=True)


def check_ingest_token(token: str) -> None:
    """``ConfigurationError`` for a token that is too short to be a secret or cannot be sent."""
    if len(token) < MIN_TOKEN_LENGTH or not all("!" <= char <= "~" for char in token):
        raise ConfigurationError(
            f"setting tulip_ingest_token: the token must be at least {MIN_TOKEN_LENGTH} "
            "printable ASCII characters without blanks (e.g. from: openssl rand -hex 32); "
            f"the one set has {len(token)} characters"
        )


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    result: IngestResult
    body: dict[str, object]
    headers: Mapping[str, str]

    def response(self) -> Response:
        return JSONResponse(
            self.body, status_code=self.status, headers={**_NO_CACHE, **self.headers}
        )


def tulip_ingest_route(
    *,
    publisher: EventPublisher,
    token: str,
    registry: ContractRegistry,
    exchange: str,
    profile: MappingProfile | None = None,
    limits: IntakeLimits | None = None,
    metrics: Metrics | None = None,
    publish_timeout_s: float = DEFAULT_PUBLISH_TIMEOUT_S,
    retry_after_s: int = DEFAULT_RETRY_AFTER_S,
    path: str = TULIP_EVENTS_PATH,
) -> Route:
    """The Starlette route; add it with ``create_app(extra_routes=[...])``.

    ``profile``: also run the event's reader (units, phase rules) before accepting it.
    ``limits``: the intake guard's (default ``IntakeLimits()``); ``max_bytes`` caps the body.
    """
    check_ingest_token(token)
    if not publish_timeout_s > 0 or retry_after_s < 1:
        raise ValueError("publish_timeout_s must be > 0 and retry_after_s at least 1 second")
    ingest = _Ingest(
        publisher=publisher,
        token=token.encode("ascii"),
        registry=registry,
        exchange=exchange,
        profile=profile,
        limits=limits or IntakeLimits(),
        metrics=metrics,
        publish_timeout_s=publish_timeout_s,
        retry_after_s=retry_after_s,
    )
    return Route(path, ingest.endpoint, methods=["POST"], name="tulip-events")


class _Ingest:
    def __init__(
        self,
        *,
        publisher: EventPublisher,
        token: bytes,
        registry: ContractRegistry,
        exchange: str,
        profile: MappingProfile | None,
        limits: IntakeLimits,
        metrics: Metrics | None,
        publish_timeout_s: float,
        retry_after_s: int,
    ) -> None:
        self._publisher = publisher
        self._token = token
        self._registry = registry
        self._exchange = exchange
        self._profile = profile
        self._limits = limits
        self._metrics = metrics
        self._timeout_s = publish_timeout_s
        self._retry_after_s = retry_after_s

    async def endpoint(self, request: Request) -> Response:
        answer = self._authorize(request) or self._check_content_type(request)
        if answer is None:
            body = await self._read_body(request)
            if isinstance(body, _Answer):
                answer = body
            else:
                # Validation and the confirmed publish block: off the event loop.
                answer = await run_in_threadpool(self._take, body)
        if self._metrics is not None:
            self._metrics.ingested(answer.result)
        return answer.response()

    # -- before the body is read ----------------------------------------------------------

    def _authorize(self, request: Request) -> _Answer | None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        client = request.client.host if request.client else "unknown"
        if scheme.lower() != "bearer" or not given.strip():
            log.warning("Tulip event from %s refused: no bearer token", client)
            return _Answer(
                401,
                IngestResult.UNAUTHORIZED,
                {"status": "unauthorized", "reason": "send Authorization: Bearer <token>"},
                {"WWW-Authenticate": _REALM},
            )
        if not hmac.compare_digest(given.strip().encode("utf-8"), self._token):
            log.warning("Tulip event from %s refused: wrong bearer token", client)
            return _Answer(
                401,
                IngestResult.UNAUTHORIZED,
                {"status": "unauthorized", "reason": "the bearer token is not valid"},
                {"WWW-Authenticate": f'{_REALM}, error="invalid_token"'},
            )
        return None

    def _check_content_type(self, request: Request) -> _Answer | None:
        media, _, params = request.headers.get("content-type", "").partition(";")
        charset = next(
            (
                value.strip().strip('"').lower()
                for key, _, value in (p.partition("=") for p in params.split(";"))
                if key.strip().lower() == "charset"
            ),
            "utf-8",
        )
        if media.strip().lower() == "application/json" and charset in ("utf-8", "utf8"):
            return None
        return self._refused(
            415,
            IngestResult.UNSUPPORTED,
            "the body must be JSON: Content-Type: application/json (UTF-8)",
            error="UnsupportedMediaType",
        )

    async def _read_body(self, request: Request) -> bytes | _Answer:
        cap = self._limits.max_bytes
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                return self._refused(
                    400, IngestResult.MALFORMED, f"Content-Length {declared!r} is not a number"
                )
            if int(declared) > cap:
                return self._too_large(int(declared))
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                return self._too_large(size, at_least=True)
            chunks.append(chunk)
        return b"".join(chunks)

    def _too_large(self, size: int, *, at_least: bool = False) -> _Answer:
        # A body without Content-Length is read only up to the cap: its size stays unknown.
        found = f"more than {self._limits.max_bytes:,}" if at_least else f"{size:,}"
        return self._refused(
            413,
            IngestResult.TOO_LARGE,
            f"the event is too large: {found} bytes, the cap is {self._limits.max_bytes:,} bytes "
            "(MESBRIDGE_MAX_MESSAGE_BYTES)",
            error="OversizedMessage",
        )

    # -- in a worker thread -----------------------------------------------------------------

    def _take(self, body: bytes) -> _Answer:
        try:
            data = read_json(body, source=_SOURCE, limits=self._limits)
        except OversizedMessage as exc:
            return self._refused_by(413, IngestResult.TOO_LARGE, exc)
        except UnusableInput as exc:
            return self._refused_by(400, IngestResult.MALFORMED, exc)
        if not isinstance(data, dict):
            return self._refused(
                422,
                IngestResult.INVALID,
                f"one event per request: a JSON object, not a JSON {_json_type(data)}",
                error="UnknownContract",
            )
        try:
            contract = self._registry.identify_json(data)
            if contract.key.family != _FAMILY:
                raise UnknownContract(
                    f"{contract.key} is not a Tulip event; this endpoint takes Tulip events only"
                )
            self._registry.validate_json(data, contract)
            reader = _READERS.get(contract.key.type)
            if reader is not None and self._profile is not None:
                reader(data, str(contract.key), self._profile)
        except (UnknownContract, ContractViolation, MappingError) as exc:
            return self._refused_by(422, IngestResult.INVALID, exc)
        event_id = data.get("event_id")
        if not isinstance(event_id, str) or not event_id:
            return self._refused(
                422, IngestResult.INVALID, "the event has no event_id", error="ContractViolation"
            )
        message = JsonMessage(data=data, raw=body, sha256="", source=_SOURCE)
        envelope = Envelope(
            exchange=self._exchange,
            routing_key=inbound_routing_key(message),
            body=body,  # the original bytes are the message of record
            message_id=event_id,
            content_type="application/json",
        )
        return self._publish(envelope, str(contract.key))

    def _publish(self, envelope: Envelope, contract: str) -> _Answer:
        try:
            result = self._publisher.publish(envelope, timeout_s=self._timeout_s)
        except MesbridgeError as exc:
            log.error(
                "Tulip event %s not accepted, the broker did not take it: %s",
                envelope.message_id,
                exc.summary,
            )
            return self._unavailable("the broker is not reachable")
        if result is PublishResult.CONFIRMED:
            log.info(
                "Tulip event %s accepted (%s, %s)",
                envelope.message_id,
                contract,
                envelope.routing_key,
            )
            return _Answer(
                202,
                IngestResult.ACCEPTED,
                {"status": "accepted", "event_id": envelope.message_id, "contract": contract},
                {},
            )
        log.error(
            "Tulip event %s not accepted: the broker answered %s for %s/%s%s",
            envelope.message_id,
            result.value,
            envelope.exchange,
            envelope.routing_key,
            " (no queue is bound for it: check the topology)"
            if result is PublishResult.UNROUTABLE
            else "",
        )
        return self._unavailable(f"the broker did not take the event ({result.value})")

    # -- answers ----------------------------------------------------------------------------

    def _unavailable(self, reason: str) -> _Answer:
        return _Answer(
            503,
            IngestResult.UNAVAILABLE,
            {
                "status": "unavailable",
                "reason": f"{reason}; nothing was accepted, send the event again",
                "retry_after_s": self._retry_after_s,
            },
            {"Retry-After": str(self._retry_after_s)},
        )

    def _refused_by(self, status: int, result: IngestResult, error: MesbridgeError) -> _Answer:
        return self._refused(
            status,
            result,
            error.summary,
            error=type(error).__name__,
            findings=error.findings,
            message_ref=error.message_ref,
        )

    def _refused(
        self,
        status: int,
        result: IngestResult,
        reason: str,
        *,
        error: str = "",
        findings: Sequence[Finding] = (),
        message_ref: str | None = None,
    ) -> _Answer:
        log.warning(
            "Tulip event refused (%d %s): %s%s",
            status,
            error,
            reason,
            "".join(f"; {finding}" for finding in findings[:5]),
        )
        body: dict[str, object] = {"status": "refused", "error": error, "reason": reason}
        if message_ref and message_ref != _SOURCE:
            body["message"] = message_ref
        body["findings"] = [
            {"where": f.where, "value": f.value, "expected": f.expected, "line": f.line}
            for f in findings
        ]
        return _Answer(status, result, body, {})


def _json_type(data: object) -> str:
    if isinstance(data, list):
        return "array"
    if isinstance(data, str):
        return "string"
    if isinstance(data, bool):
        return "boolean"
    if data is None:
        return "null"
    return "number"
