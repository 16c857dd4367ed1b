"""One delivery through the steps of DESIGN §1, up to (not including) settling.

receive → guard → identify → validate in → transform → validate out, giving
either an ``InboundRecord`` (the input's identity and every output, for the
store to settle with deduplication) or a ``FailedMessage`` (a permanent error,
to park), or the ``RetryLater`` that says this message cannot take effect yet
(the consumer loop sends it through a delay queue, integration/retry.py). Other
transient errors (a dependency away) and configuration errors propagate: the
consumer loop backs off. An exception mesbridge did not raise on purpose (a
defect) fails this message only: it becomes a ``ProcessingFailure`` to park,
named with where it was raised, so the messages behind it flow (a deterministic
defect would otherwise return the whole batch to the queue forever).
Nothing here acknowledges, publishes or touches a channel.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from contracts.errors import (
    ContractViolation,
    MesbridgeError,
    PermanentError,
    ProcessingFailure,
    RetryLater,
)
from integration import lockstep
from integration.broker import Delivery
from integration.intake import IntakeLimits, read_message
from integration.replay import REPLAY_HEADER
from integration.retry import RetryState
from integration.routes import Accepted, Output, Target, Translation, Translator
from integration.store import (
    Destination,
    FailedMessage,
    InboundRecord,
    OrderContextRow,
    OutboundMessage,
)

__all__ = [
    "Destination",
    "PendingResults",
    "Pipeline",
    "PipelineResult",
    "RouteSpec",
    "describe_delivery",
    "failed_message",
    "parked_result",
]

log = logging.getLogger("mesbridge.pipeline")

_MAX_EXCEPTION_TEXT = 500

# A lockstep group's parsed trees are all in memory, and all walked by each step: the
# group is small enough for the trees to stay in the CPU cache beside the schema (about
# five realistic 9 KB orders, sixteen minimal ones). A message larger than the bound goes
# alone, so a 100 MB IDoc (~1 GB parsed) never shares memory with others.
_LOCKSTEP_MESSAGES = 16
_LOCKSTEP_BYTES = 48 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteSpec:
    """A route: what it consumes and where each target's outputs go."""

    name: str
    queue: str
    bindings: tuple[str, ...]
    targets: Mapping[Target, Destination]


@dataclass(frozen=True, slots=True, kw_only=True)
class PipelineResult:
    delivery: Delivery
    route: str
    record: InboundRecord | None = None
    failure: FailedMessage | None = None
    contract: str | None = None
    # This message cannot take effect yet: retry it through a delay queue.
    retry: RetryLater | None = None
    # Its exact bytes took effect before, under this idempotency key (ConsumerLoop): a
    # duplicate, found before the pipeline step.
    duplicate_of: str | None = None
    # Seconds of the pipeline step spent on it (its share of its lockstep group's time);
    # None when it did not go through the step.
    processing_s: float | None = None


# A batch handed to the pipeline step: called, it waits for its results, in delivery order.
PendingResults = Callable[[], list[PipelineResult]]


class Pipeline:
    """Turns deliveries of one route into records to settle or failures to park."""

    def __init__(
        self,
        route: RouteSpec,
        translator: Translator,
        *,
        limits: IntakeLimits,
        outbound_exchange: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._route = route
        self._translator = translator
        self._limits = limits
        self._outbound_exchange = outbound_exchange
        self._clock = clock

    @property
    def route(self) -> RouteSpec:
        return self._route

    def process(self, delivery: Delivery) -> PipelineResult:
        return lockstep.run(self._steps(delivery))

    def process_many(self, deliveries: Sequence[Delivery]) -> list[PipelineResult]:
        """``process`` for each delivery, in lockstep groups (integration/lockstep.py)."""
        results: list[PipelineResult] = []
        for group in _lockstep_groups(deliveries):
            started = time.perf_counter()
            done = lockstep.in_lockstep([self._steps(delivery) for delivery in group])
            share = (time.perf_counter() - started) / len(group)
            results += [replace(result, processing_s=share) for result in done]
        return results

    def _steps(self, delivery: Delivery) -> lockstep.Steps[PipelineResult]:
        now = self._clock()
        source = describe_delivery(delivery)
        contract: str | None = None
        try:
            message = read_message(delivery.body, source=source, limits=self._limits)
            yield
            accepted = self._translator.accept(message)
            contract = str(accepted.contract.key)
            yield
            translation = yield from self._translator.translate_steps(
                accepted, self._route.targets.keys(), created_at=now
            )
            record = self._record(delivery, accepted, translation, contract, now)
        except RetryLater as exc:
            return PipelineResult(
                delivery=delivery, route=self._route.name, retry=exc, contract=contract
            )
        except PermanentError as exc:
            if contract is None and isinstance(exc, ContractViolation):
                contract = exc.contract  # identified, then failed its schema
            return self._parked(delivery, exc, contract, now)
        except MesbridgeError:
            raise  # a dependency away, or the installation is wrong: not this message's fault
        except Exception as exc:
            log.exception("%s: unexpected error in the pipeline step; parking the message", source)
            return self._parked(delivery, _unexpected_failure(exc, source), contract, now)
        return PipelineResult(
            delivery=delivery, route=self._route.name, record=record, contract=contract
        )

    def _parked(
        self, delivery: Delivery, error: MesbridgeError, contract: str | None, now: datetime
    ) -> PipelineResult:
        return parked_result(delivery, error, route=self._route.name, contract=contract, now=now)

    def _record(
        self,
        delivery: Delivery,
        accepted: Accepted,
        translation: Translation,
        contract: str,
        now: datetime,
    ) -> InboundRecord:
        key = translation.idempotency_key
        outputs = [
            self._outbound(output, self._route.targets[output.target], key, contract)
            for output in translation.outputs
        ]
        return InboundRecord(
            idempotency_key=key,
            content_sha256=accepted.message.sha256,
            route=self._route.name,
            contract=contract,
            source_message_id=delivery.message_id,
            received_at=now,
            outputs=outputs,
            order_contexts=[OrderContextRow.of(c) for c in translation.order_contexts],
            replay_of=_replay_of(delivery),
        )

    def _outbound(
        self, output: Output, destination: Destination, source_key: str, input_contract: str
    ) -> OutboundMessage:
        # Traceability (GMP): every output names the input, its contract and the mapping
        # profile version that made it.
        headers = {
            "x-mesbridge-contract": output.contract,
            "x-mesbridge-input-contract": input_contract,
            "x-mesbridge-mapping": self._translator.mapping_version,
            "x-mesbridge-source": source_key,
            "x-mesbridge-orders": ",".join(output.order_numbers),
            "x-mesbridge-route": self._route.name,
        }
        return OutboundMessage(
            message_id=output.message_id,
            destination=destination.value,
            exchange=self._outbound_exchange if destination is Destination.AMQP else None,
            routing_key=output.routing_key,
            headers=headers,
            body=output.body,
            content_type=output.content_type,
        )


def _lockstep_groups(deliveries: Sequence[Delivery]) -> Iterator[Sequence[Delivery]]:
    start, size = 0, 0
    for index, delivery in enumerate(deliveries):
        if index > start and (
            index - start == _LOCKSTEP_MESSAGES or size + len(delivery.body) > _LOCKSTEP_BYTES
        ):
            yield deliveries[start:index]
            start, size = index, 0
        size += len(delivery.body)
    if start < len(deliveries):
        yield deliveries[start:]


def parked_result(
    delivery: Delivery, error: MesbridgeError, *, route: str, contract: str | None, now: datetime
) -> PipelineResult:
    """The result that parks ``delivery`` for ``error``."""
    # A message that went through the delay queues first keeps its history.
    earlier = RetryState.of(delivery)
    failure = failed_message(
        delivery,
        error,
        route=route,
        contract=contract,
        attempts=1 + earlier.attempts,
        first_failed_at=min(earlier.first_seen or now, now),
        last_failed_at=now,
    )
    return PipelineResult(delivery=delivery, route=route, failure=failure, contract=contract)


def failed_message(
    delivery: Delivery,
    error: MesbridgeError,
    *,
    route: str,
    contract: str | None,
    attempts: int,
    first_failed_at: datetime,
    last_failed_at: datetime,
) -> FailedMessage:
    """The record that parks ``delivery``: its bytes, its headers as text, the error."""
    return FailedMessage.from_error(
        error,
        body=delivery.body,
        headers=_text_headers(delivery),
        route=route,
        contract=contract,
        attempts=attempts,
        first_failed_at=first_failed_at,
        last_failed_at=last_failed_at,
        replay_of=_replay_of(delivery),
    )


def _unexpected_failure(exc: BaseException, message_ref: str) -> ProcessingFailure:
    """The ``ProcessingFailure`` for an exception mesbridge did not raise on purpose."""
    text = str(exc).strip()
    if len(text) > _MAX_EXCEPTION_TEXT:
        text = text[:_MAX_EXCEPTION_TEXT] + f"… ({len(text)} characters; the log has all)"
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else ""
    return ProcessingFailure(
        f"mesbridge failed on this message: unexpected {type(exc).__name__}"
        f"{': ' + text if text else ''}{where}. This is a defect in mesbridge; the traceback "
        "is in the service log. Replay the message once it is fixed",
        message_ref=message_ref,
    )


def describe_delivery(delivery: Delivery) -> str:
    """How errors name a delivery: where it came from and its message id (or tag)."""
    ident = delivery.message_id or f"delivery {delivery.delivery_tag}"
    return f"AMQP {delivery.exchange or '(default)'}/{delivery.routing_key} message {ident}"


def _text_headers(delivery: Delivery) -> dict[str, str]:
    headers = {key: _header_text(value) for key, value in delivery.headers.items()}
    headers["routing_key"] = delivery.routing_key
    if delivery.message_id:
        headers["message_id"] = delivery.message_id
    if delivery.content_type:
        headers["content_type"] = delivery.content_type
    return headers


def _header_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def _replay_of(delivery: Delivery) -> int | None:
    """The failed_message id in header ``x-replay-of`` (``mesbridge failed replay``), if valid."""
    raw = delivery.headers.get(REPLAY_HEADER)
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", errors="replace")
    text = str(raw).strip() if raw is not None else ""
    if not (text.isascii() and text.isdigit() and len(text) <= 18):
        return None
    return int(text) or None
