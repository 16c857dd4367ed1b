"""One delivery through the steps of DESIGN §1, up to (not including) settling.

receive → guard → identify → validate in → transform → validate out, giving
either an ``InboundRecord`` (the input's identity and every output, for the
store to settle with deduplication) or a ``FailedMessage`` (a permanent error,
to park). Transient errors propagate: the consumer loop decides what to do.
Nothing here acknowledges, publishes or touches a channel.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from contracts.errors import PermanentError
from integration.broker import Delivery
from integration.intake import IntakeLimits, XmlMessage, read_message
from integration.routes import Accepted, Output, Target, Translator
from integration.store import Destination, FailedMessage, InboundRecord, OutboundMessage
from transforms.model import ProcessOrder

__all__ = ["Destination", "Pipeline", "PipelineResult", "RouteSpec"]


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
        now = self._clock()
        source = _describe_delivery(delivery)
        contract: str | None = None
        try:
            message = read_message(delivery.body, source=source, limits=self._limits)
            accepted = self._translator.accept(message)
            contract = str(accepted.contract.key)
            record = self._record(delivery, accepted, contract, now)
        except PermanentError as exc:
            failure = FailedMessage.from_error(
                exc,
                body=delivery.body,
                headers=_text_headers(delivery),
                route=self._route.name,
                contract=contract,
                attempts=1 + _previous_attempts(delivery),
                first_failed_at=now,
                last_failed_at=now,
            )
            return PipelineResult(
                delivery=delivery, route=self._route.name, failure=failure, contract=contract
            )
        return PipelineResult(
            delivery=delivery, route=self._route.name, record=record, contract=contract
        )

    def _record(
        self, delivery: Delivery, accepted: Accepted, contract: str, now: datetime
    ) -> InboundRecord:
        orders = self._translator.orders(accepted)
        key = _idempotency_key(orders)
        outputs: list[OutboundMessage] = []
        for target, destination in self._route.targets.items():
            for output in self._translator.outputs(accepted, target, created_at=now, orders=orders):
                outputs.append(self._outbound(output, destination, key))
        assert isinstance(accepted.message, XmlMessage)
        return InboundRecord(
            idempotency_key=key,
            content_sha256=accepted.message.sha256,
            route=self._route.name,
            contract=contract,
            source_message_id=delivery.message_id,
            received_at=now,
            outputs=outputs,
        )

    def _outbound(
        self, output: Output, destination: Destination, source_key: str
    ) -> OutboundMessage:
        headers = {
            "x-mesbridge-contract": output.contract,
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


def _idempotency_key(orders: Sequence[ProcessOrder]) -> str:
    """DESIGN §4: (SNDPRN, MESTYP, DOCNUM); a message of several IDocs is keyed by all of them."""
    first = orders[0].control
    docnums = "+".join(order.control.docnum for order in orders)
    return f"sap-idoc:{first.sender_partner}:{first.mestyp}:{docnums}"


def _describe_delivery(delivery: Delivery) -> str:
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


def _previous_attempts(delivery: Delivery) -> int:
    raw = delivery.headers.get("x-mesbridge-attempts")
    try:
        return max(0, int(raw)) if raw is not None else 0
    except (TypeError, ValueError):
        return 0
