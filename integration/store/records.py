"""The values that go into the store and come out of it (frozen dataclasses, no database code).

Failure modes: constructing a record with a naive timestamp, an empty key or
a content hash that is not 64 lowercase hex digits raises ``ValueError``:
those are caller bugs, found before any database work.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum, StrEnum
from typing import NamedTuple

from contracts.errors import Finding, MesbridgeError
from transforms.order_context import OrderContext

from .fingerprint import Fingerprint, failure_fingerprint
from .order_numbers import order_numbers_in

__all__ = [
    "Destination",
    "FailedMessage",
    "InboundRecord",
    "InboxEntry",
    "OrderContextRow",
    "OutboundMessage",
    "OutboxRow",
    "SettleOutcome",
]

_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


def _require_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} {value.isoformat()} has no time zone; the store keeps instants")


def _require_text(name: str, value: str) -> None:
    if not value:
        raise ValueError(f"{name} is empty")


class Destination(StrEnum):
    """Where an outbox row goes: the outbound exchange, or the Tulip Tables API."""

    AMQP = "amqp"
    TULIP = "tulip"


class OrderContextRow(NamedTuple):
    """An order context as the store keeps it: the order, its plant and the context as JSON.

    Serialised where it is made (a pipeline worker): a row crosses to the consumer
    process as three strings, where the ``OrderContext`` with its components would
    cost ~50 µs to pickle and unpickle, and its JSON again to write.
    """

    order_number: str
    plant: str
    context_json: str

    @classmethod
    def of(cls, context: OrderContext) -> OrderContextRow:
        return cls(context.order_number, context.plant, json.dumps(context.to_json()))


class SettleOutcome(Enum):
    """What ``Store.settle_batch`` did with one input."""

    ACCEPTED = "accepted"  # first time seen: inbox row and outbox rows written
    DUPLICATE = "duplicate"  # key seen before with the same content: ack and count it
    CONFLICT = "conflict"  # key seen before with different content: park it for review
    # A new key, but an output's message id was made before (by another input, or earlier
    # in this one): an IDoc sent again inside another packet, or twice in one. Parked for
    # review, so that it takes effect once.
    REPEATED_OUTPUT = "repeated-output"


@dataclass(frozen=True, kw_only=True)
class OutboundMessage:
    """One output to deliver, written to the outbox with its input."""

    message_id: str  # deterministic (derived from the input): a resend is recognisable
    destination: str  # "amqp", "tulip", ...
    exchange: str | None
    routing_key: str
    headers: Mapping[str, str]
    body: bytes
    content_type: str

    def __post_init__(self) -> None:
        _require_text("OutboundMessage.message_id", self.message_id)
        _require_text("OutboundMessage.destination", self.destination)


@dataclass(frozen=True, kw_only=True)
class InboundRecord:
    """One input to settle: its identity, its content hash and the outputs it produced."""

    idempotency_key: str  # built by the caller, e.g. "sap-idoc:ERPCLNT200:LOIPRO:0000000000815001"
    content_sha256: str  # lowercase hex of the input's bytes
    route: str
    contract: str
    source_message_id: str | None
    received_at: datetime
    outputs: Sequence[OutboundMessage] = ()
    # What a process order teaches about its orders: kept for the goods movements that follow.
    order_contexts: Sequence[OrderContextRow] = ()
    # The failed_message row this input replays (header x-replay-of): settling it resolves that row.
    replay_of: int | None = None

    def __post_init__(self) -> None:
        _require_text("InboundRecord.idempotency_key", self.idempotency_key)
        if not _SHA256_HEX.fullmatch(self.content_sha256):
            raise ValueError(
                f"InboundRecord {self.idempotency_key}: content_sha256 "
                f"{self.content_sha256!r} is not 64 lowercase hex digits"
            )
        _require_aware("InboundRecord.received_at", self.received_at)


@dataclass(frozen=True, kw_only=True)
class InboxEntry:
    """An inbox row: the first input that took effect under its key."""

    id: int
    idempotency_key: str
    content_sha256: str
    route: str
    contract: str
    source_message_id: str | None
    received_at: datetime
    settled_at: datetime


@dataclass(frozen=True, kw_only=True)
class OutboxRow:
    """A pending outbox row as handed to a relay, claimed until ``claimed_until``."""

    id: int
    inbox_id: int
    message_id: str
    destination: str
    exchange: str | None
    routing_key: str
    headers: Mapping[str, str]
    body: bytes
    content_type: str
    created_at: datetime
    claimed_by: str | None
    claimed_until: datetime | None


@dataclass(frozen=True, kw_only=True)
class FailedMessage:
    """A parked input, kept whole for an analyst: bytes, headers, what failed and where."""

    body: bytes
    headers: Mapping[str, str]
    route: str
    contract: str | None
    error_class: str
    error_text: str
    findings: Sequence[Finding] = ()
    attempts: int = 1
    first_failed_at: datetime
    last_failed_at: datetime
    status: str = "parked"
    idempotency_key: str | None = None
    # As SAP shows them (no leading zeros), for ``mesbridge failed list --order``.
    order_numbers: tuple[str, ...] = ()
    # The failed_message row whose replay failed again with this failure.
    replay_of: int | None = None

    def __post_init__(self) -> None:
        _require_aware("FailedMessage.first_failed_at", self.first_failed_at)
        _require_aware("FailedMessage.last_failed_at", self.last_failed_at)
        if self.attempts < 1:
            raise ValueError(f"FailedMessage.attempts is {self.attempts}; at least 1 expected")

    @property
    def fingerprint(self) -> Fingerprint:
        """The failure group: error class + contract + first finding's field (``fingerprint.py``).

        Derived from the record itself, so every producer of failures gets the same one.
        """
        return failure_fingerprint(self.error_class, self.contract, self.findings)

    @classmethod
    def from_error(
        cls,
        error: MesbridgeError,
        *,
        body: bytes,
        headers: Mapping[str, str],
        route: str,
        contract: str | None,
        attempts: int,
        first_failed_at: datetime,
        last_failed_at: datetime,
        idempotency_key: str | None = None,
        replay_of: int | None = None,
        order_numbers: Sequence[str] | None = None,
    ) -> FailedMessage:
        """The record for a message that failed with ``error``: its class, text and findings.

        ``order_numbers`` None: read from ``body`` through the intake guard, best effort
        (``order_numbers.py``); a body the guard refuses has none.
        """
        return cls(
            body=body,
            headers=headers,
            route=route,
            # A contract violation knows its contract although the caller never learnt it.
            contract=contract or getattr(error, "contract", None),
            error_class=type(error).__name__,
            error_text=error.render(),
            findings=error.findings,
            attempts=attempts,
            first_failed_at=first_failed_at,
            last_failed_at=last_failed_at,
            idempotency_key=idempotency_key,
            order_numbers=tuple(order_numbers_in(body) if order_numbers is None else order_numbers),
            replay_of=replay_of,
        )


def findings_to_json(findings: Sequence[Finding]) -> list[dict[str, str | int | None]]:
    """The JSON form kept in ``failed_message.findings``: ``{where, line, value, expected}``."""
    return [
        {"where": f.where, "line": f.line, "value": f.value, "expected": f.expected}
        for f in findings
    ]


def findings_from_json(raw: object) -> tuple[Finding, ...]:
    if not isinstance(raw, list):
        raise ValueError(f"failed_message.findings is {type(raw).__name__}, a JSON list expected")
    found: list[Finding] = []
    for item in raw:
        if not isinstance(item, dict):
            raise ValueError(f"failed_message.findings holds {item!r}, an object expected")
        line = item.get("line")
        value = item.get("value")
        found.append(
            Finding(
                where=str(item["where"]),
                expected=str(item["expected"]),
                value=None if value is None else str(value),
                line=None if line is None else int(line),
            )
        )
    return tuple(found)
