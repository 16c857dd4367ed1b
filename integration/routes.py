"""Routes: from an accepted input message to validated output documents, one step at a time.

``Translator.accept`` identifies the input's contract and validates it;
``Translator.outputs`` maps it to the canonical model, transforms it for one
target and validates every output against its own contract before anyone can
deliver it. Both the offline CLI and the service use this, so what
``mesbridge transform`` prints is exactly what the service would send.

Each output carries a deterministic message id derived from the input, so a
resend after a crash is recognisable downstream (DESIGN §4).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from lxml import etree

from contracts.errors import (
    ConfigurationError,
    MappingError,
    MesbridgeError,
    RetryLater,
    UnusableInput,
)
from contracts.registry import Contract, ContractRegistry, describe_message
from integration import lockstep
from integration.intake import JsonMessage, XmlMessage
from transforms.b2mml_performance import performance_report
from transforms.b2mml_schedule import (
    B2MML_VERSIONS,
    B2mmlVersion,
    write_pasx_schedule,
)
from transforms.loipro import parse_loipro
from transforms.mapping import MappingProfile
from transforms.mbgmcr import IdocSender, goods_movement_idocs
from transforms.model import PerformanceReport, ProcessOrder
from transforms.order_context import OrderContext, complete_report, order_context
from transforms.procordconf import CONTRACT as _SAP_CONFIRMATION
from transforms.procordconf import ROUTING_KEY as _CONFIRMATION_ROUTING_KEY
from transforms.procordconf import order_confirmations
from transforms.tulip_completion import completion_report
from transforms.tulip_workorder import order_to_tulip_record

__all__ = [
    "Accepted",
    "OrderContextLookup",
    "Output",
    "Target",
    "Translation",
    "Translator",
    "inbound_routing_key",
]

# The order context SAP sent for an order number (``None``: mesbridge never saw the order).
# May raise ``TransientError`` when the store that keeps it is unreachable.
OrderContextLookup = Callable[[str], OrderContext | None]

# Namespace for the deterministic ids of outputs (uuid5), fixed forever.
_OUTPUT_ID_NAMESPACE = uuid.UUID("5f6b2a0e-3c61-4d7e-9a55-1f2d0c8e7b41")

_PASX_OUTPUTS = {
    "V0600": ("b2mml/ProductionSchedule/V0600", "pasx.ProductionSchedule", "ProductionSchedule"),
    "V7": ("b2mml/OperationsSchedule/V7", "pasx.OperationsSchedule", "OperationsSchedule"),
}
_TULIP_OUTPUT = ("tulip/workorder/1", "tulip.workorders")
_SAP_GOODS_MOVEMENT = "sap-idoc/MBGMCR03/1"
_PERFORMANCE_TYPES = frozenset({"ProductionPerformance", "OperationsPerformance"})


_B2MML_VERBS = ("Process", "Sync", "Show", "Get", "Acknowledge", "Change", "Cancel", "Respond")


def inbound_routing_key(message: XmlMessage | JsonMessage) -> str:
    """``sap.<MESTYP>``, ``pasx.<noun>`` or ``tulip.<event>`` (DESIGN §5), read from the message."""
    if isinstance(message, JsonMessage):
        event = message.data.get("event") if isinstance(message.data, dict) else None
        if isinstance(event, str) and event:
            return f"tulip.{event}"
        raise UnusableInput("a JSON message without an 'event' field", message_ref=message.source)
    root = message.root
    mestyp = root.findtext("IDOC/EDI_DC40/MESTYP")
    if mestyp:
        return f"sap.{mestyp.strip()}"
    name = etree.QName(root).localname
    for verb in _B2MML_VERBS:
        if name.startswith(verb) and len(name) > len(verb):
            return f"pasx.{name[len(verb) :]}"
    raise UnusableInput(
        f"cannot tell where {name!r} goes; give --routing-key", message_ref=message.source
    )


class Target(StrEnum):
    PASX = "pasx"
    TULIP = "tulip"
    SAP = "sap"


@dataclass(frozen=True, slots=True, kw_only=True)
class Accepted:
    """An input message whose contract is known and whose content satisfies it."""

    message: XmlMessage | JsonMessage
    contract: Contract
    message_ref: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    target: Target
    contract: str
    message_id: str
    routing_key: str
    body: bytes
    content_type: str
    file_name: str
    order_numbers: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Translation:
    """Everything one input makes: its idempotency key, its outputs, the order facts it teaches."""

    idempotency_key: str
    outputs: tuple[Output, ...]
    order_contexts: tuple[OrderContext, ...] = ()


class Translator:
    """Identify, validate, transform and validate again; raises ``contracts.errors`` classes."""

    def __init__(
        self,
        registry: ContractRegistry,
        profile: MappingProfile,
        *,
        pasx_version: str = "V0600",
        order_contexts: OrderContextLookup | None = None,
    ) -> None:
        if pasx_version not in B2MML_VERSIONS:
            raise ConfigurationError(
                f"PAS-X profile {pasx_version!r} is not supported; "
                f"supported: {', '.join(B2MML_VERSIONS)}"
            )
        self._registry = registry
        self._profile = profile
        self._pasx_version: B2mmlVersion = "V7" if pasx_version == "V7" else "V0600"
        self._idoc_sender = _idoc_sender(profile)
        self._order_contexts = order_contexts

    @property
    def mapping_version(self) -> str:
        """The ``version`` of the mapping profile the outputs are made with."""
        return self._profile.version

    def accept(self, message: XmlMessage | JsonMessage) -> Accepted:
        if isinstance(message, XmlMessage):
            message_ref = f"{message.source}: {describe_message(message.root)}"
            try:
                contract = self._registry.validate_xml(message.root)
            except MesbridgeError as exc:
                raise exc.with_message_ref(message_ref) from exc
        else:
            message_ref = message.source
            try:
                contract = self._registry.validate_json(message.data)
            except MesbridgeError as exc:
                raise exc.with_message_ref(message_ref) from exc
        return Accepted(message=message, contract=contract, message_ref=message_ref)

    def targets(self, accepted: Accepted) -> tuple[Target, ...]:
        """The targets this input can be transformed for."""
        if _is_process_order(accepted.contract):
            return (Target.PASX, Target.TULIP)
        if _is_performance(accepted.contract) or _is_completion(accepted.contract):
            return (Target.SAP,)
        return ()

    def translate(
        self, accepted: Accepted, targets: Iterable[Target], *, created_at: datetime
    ) -> Translation:
        """The service's step: every output of ``accepted`` for ``targets``, and its key.

        A target this input has nothing for is skipped (a route may serve several kinds
        of input); an input with no output at all for the route's targets is refused.
        """
        return lockstep.run(self.translate_steps(accepted, targets, created_at=created_at))

    def translate_steps(
        self, accepted: Accepted, targets: Iterable[Target], *, created_at: datetime
    ) -> lockstep.Steps[Translation]:
        """``translate``, yielding between mapping, rendering and validating (lockstep.py)."""
        wanted = [target for target in targets if target in self.targets(accepted)]
        if not wanted:
            raise MappingError(
                f"{accepted.contract.key} has no output for "
                f"{', '.join(t.value for t in targets) or 'this route'}",
                message_ref=accepted.message_ref,
            )
        if _is_process_order(accepted.contract):
            orders = self.orders(accepted)
            yield
            outputs: list[Output] = []
            for target in wanted:
                outputs += yield from self._output_steps(
                    accepted, target, created_at=created_at, orders=orders
                )
            return Translation(
                idempotency_key=_process_order_key(orders),
                outputs=tuple(outputs),
                order_contexts=tuple(order_context(order) for order in orders),
            )
        report = self.report(accepted)
        return Translation(
            idempotency_key=report.idempotency_key,
            outputs=(
                *self.goods_movements(accepted, created_at=created_at, report=report),
                *self.confirmations(accepted, report=report),
            ),
        )

    def report(self, accepted: Accepted) -> PerformanceReport:
        """What a performance message says the plant did, completed from the order context."""
        message, key = accepted.message, str(accepted.contract.key)
        try:
            if _is_performance(accepted.contract) and isinstance(message, XmlMessage):
                report = performance_report(message.root, key, self._profile)
            elif _is_completion(accepted.contract) and isinstance(message, JsonMessage):
                if not isinstance(message.data, Mapping):
                    raise MappingError("a completion event is a JSON object")
                report = completion_report(message.data, key, self._profile)
            else:
                raise MappingError(
                    f"{key} is not a production or operations performance "
                    "or a Tulip completion event"
                )
        except MesbridgeError as exc:
            raise exc.with_message_ref(accepted.message_ref) from exc
        if self._order_contexts is None:
            return complete_report(report, self._profile, None)
        context = self._order_contexts(report.order_number)
        completed = complete_report(report, self._profile, context)
        if context is None and any(not (a.plant or completed.plant) for a in completed.actuals):
            # PAS-X may report before SAP's process order reached mesbridge: wait for it
            # (delay queues), and park only when it never comes.
            raise RetryLater(
                f"order {report.order_number} has not been received from SAP yet, and the "
                f"message names no plant: waiting for the process order",
                message_ref=accepted.message_ref,
            )
        return completed

    def goods_movements(
        self,
        accepted: Accepted,
        *,
        created_at: datetime,
        report: PerformanceReport | None = None,
    ) -> list[Output]:
        """A performance message as MBGMCR03 IDocs, one per material document (GM_CODE)."""
        if report is None:
            report = self.report(accepted)
        contract = self._registry.get(_SAP_GOODS_MOVEMENT)
        try:
            idocs = goods_movement_idocs(
                report,
                self._profile,
                sender=self._idoc_sender,
                created_at=created_at,
                docnum_base=_docnum_base(report.idempotency_key),
            )
            for idoc in idocs:
                self._registry.validate_xml(idoc.element, contract)
        except MesbridgeError as exc:
            raise exc.with_message_ref(accepted.message_ref) from exc
        return [
            Output(
                target=Target.SAP,
                contract=_SAP_GOODS_MOVEMENT,
                message_id=str(idoc.message_id),
                routing_key="sap.MBGMCR",
                body=idoc.to_bytes(),
                content_type="application/xml",
                file_name=f"{report.order_number}-{idoc.docnum}.MBGMCR03.xml",
                order_numbers=(report.order_number,),
            )
            for idoc in idocs
        ]

    def confirmations(
        self, accepted: Accepted, *, report: PerformanceReport | None = None
    ) -> list[Output]:
        """The phase confirmations of a report, shaped for S/4HANA (``sap/procordconf/1``)."""
        if report is None:
            report = self.report(accepted)
        contract = self._registry.get(_SAP_CONFIRMATION)
        try:
            documents = order_confirmations(report, self._profile)
            for document in documents:
                self._registry.validate_json(document.to_json(), contract)
        except MesbridgeError as exc:
            raise exc.with_message_ref(accepted.message_ref) from exc
        return [
            Output(
                target=Target.SAP,
                contract=_SAP_CONFIRMATION,
                message_id=str(document.message_id),
                routing_key=_CONFIRMATION_ROUTING_KEY,
                body=document.to_bytes(),
                content_type="application/json",
                file_name=f"{report.order_number}-{document.phase}.procordconf.json",
                order_numbers=(report.order_number,),
            )
            for document in documents
        ]

    def orders(self, accepted: Accepted) -> list[ProcessOrder]:
        if not _is_process_order(accepted.contract) or not isinstance(accepted.message, XmlMessage):
            raise MappingError(
                f"{accepted.contract.key} is not a process order",
                message_ref=accepted.message_ref,
            )
        try:
            return parse_loipro(accepted.message.root, self._profile)
        except MesbridgeError as exc:
            # In a file of several IDocs, name the one that failed as well as the file.
            ref = accepted.message_ref
            if exc.message_ref and exc.message_ref not in ref:
                ref = f"{ref}, {exc.message_ref}"
            raise exc.with_message_ref(ref) from exc

    def outputs(
        self,
        accepted: Accepted,
        target: Target,
        *,
        created_at: datetime,
        combine: bool = False,
        orders: Sequence[ProcessOrder] | None = None,
    ) -> list[Output]:
        """One output per order; with ``combine``, one output holding every order of the input.

        ``orders`` saves parsing again when the caller already has ``self.orders(accepted)``.
        """
        return lockstep.run(
            self._output_steps(
                accepted, target, created_at=created_at, combine=combine, orders=orders
            )
        )

    def _output_steps(
        self,
        accepted: Accepted,
        target: Target,
        *,
        created_at: datetime,
        combine: bool = False,
        orders: Sequence[ProcessOrder] | None = None,
    ) -> lockstep.Steps[list[Output]]:
        supported = self.targets(accepted)
        if target is Target.SAP and target in supported:
            report = self.report(accepted)
            return [
                *self.goods_movements(accepted, created_at=created_at, report=report),
                *self.confirmations(accepted, report=report),
            ]
        if target not in supported:
            raise MappingError(
                f"{accepted.contract.key} cannot be transformed for {target.value}; "
                f"possible targets: {', '.join(t.value for t in supported) or 'none'}",
                message_ref=accepted.message_ref,
            )
        if orders is None:
            orders = self.orders(accepted)
        groups = [list(orders)] if combine else [[order] for order in orders]
        try:
            if target is Target.PASX:
                return (yield from self._pasx(groups, created_at))
            return [self._tulip(group) for group in groups]
        except MesbridgeError as exc:
            raise exc.with_message_ref(accepted.message_ref) from exc

    # -- renderers ----------------------------------------------------------------

    def _pasx(
        self, groups: Sequence[Sequence[ProcessOrder]], created_at: datetime
    ) -> lockstep.Steps[list[Output]]:
        contract_key, routing_key, noun = _PASX_OUTPUTS[self._pasx_version]
        written = [
            write_pasx_schedule(
                orders, self._profile, created_at=created_at, version=self._pasx_version
            )
            for orders in groups
        ]
        yield
        contract = self._registry.get(contract_key)
        for document in written:
            # The tree was parsed from the very bytes sent: valid tree, valid message.
            self._registry.validate_xml(document.root, contract)
        return [
            Output(
                target=Target.PASX,
                contract=contract_key,
                message_id=_bodid(document.root),
                routing_key=routing_key,
                body=document.body,
                content_type="application/xml",
                file_name=f"{_stem(orders)}.{noun}.{self._pasx_version}.xml",
                order_numbers=tuple(order.order_number for order in orders),
            )
            for orders, document in zip(groups, written, strict=True)
        ]

    def _tulip(self, orders: Sequence[ProcessOrder]) -> Output:
        contract_key, routing_key = _TULIP_OUTPUT
        contract = self._registry.get(contract_key)
        records = [order_to_tulip_record(order, self._profile) for order in orders]
        for record in records:
            self._registry.validate_json(record, contract)
        payload: object = records[0] if len(records) == 1 else records
        body = (json.dumps(payload, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
        return Output(
            target=Target.TULIP,
            contract=contract_key,
            message_id=_output_id(orders, contract_key),
            routing_key=routing_key,
            body=body,
            content_type="application/json",
            file_name=f"{_stem(orders)}.workorder.json",
            order_numbers=tuple(order.order_number for order in orders),
        )


def _bodid(document: etree._Element) -> str:
    # The writer derived it from the input (schedule_document_id): read it, don't derive again.
    ns = etree.QName(document).namespace
    bodid = document.findtext(f"{{{ns}}}ApplicationArea/{{{ns}}}BODID")
    assert bodid, "every schedule the writers produce carries a BODID"
    return bodid


def _is_process_order(contract: Contract) -> bool:
    return contract.key.family == "sap-idoc" and contract.key.type.startswith("LOIPRO")


def _is_performance(contract: Contract) -> bool:
    return contract.key.family == "b2mml" and contract.key.type in _PERFORMANCE_TYPES


def _is_completion(contract: Contract) -> bool:
    return contract.key.family == "tulip" and contract.key.type == "completion"


def _idoc_sender(profile: MappingProfile) -> IdocSender:
    sap = profile.sap
    return IdocSender(
        port=sap.sender_port,
        partner_type=sap.sender_partner_type,
        partner=sap.sender_partner,
        receiver_port=sap.receiver_port,
        receiver_partner_type=sap.receiver_partner_type,
        receiver_partner=sap.receiver_partner,
        timezone=ZoneInfo(sap.timezone) if sap.timezone else profile.default_timezone,
        client=sap.client,
    )


def _process_order_key(orders: Sequence[ProcessOrder]) -> str:
    """DESIGN §4: (SNDPRN, MESTYP, DOCNUM); a message of several IDocs is keyed by all of them."""
    first = orders[0].control
    docnums = "+".join(order.control.docnum for order in orders)
    return f"sap-idoc:{first.sender_partner}:{first.mestyp}:{docnums}"


def _docnum_base(idempotency_key: str) -> int:
    # Deterministic from the input: a replay or a resend after a crash rebuilds the same
    # DOCNUMs and message ids, so a double posting is recognisable on both sides. SAP gives
    # every inbound IDoc a number of its own; the sender's DOCNUM is a reference.
    digest = int(hashlib.sha256(idempotency_key.encode("utf-8")).hexdigest(), 16)
    return digest % 10**14


def _output_id(orders: Sequence[ProcessOrder], contract_key: str) -> str:
    parts = ["|".join((*order.control.idempotency_key, order.order_number)) for order in orders]
    return str(uuid.uuid5(_OUTPUT_ID_NAMESPACE, contract_key + "\n" + "\n".join(parts)))


def _stem(orders: Sequence[ProcessOrder]) -> str:
    first = orders[0]
    stem = f"{first.order_number}-{first.control.docnum}"
    return stem if len(orders) == 1 else f"{stem}+{len(orders) - 1}"
