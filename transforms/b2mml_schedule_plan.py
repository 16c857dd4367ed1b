"""What a PAS-X schedule says, decided once for both B2MML versions (docs/b2mml.md).

``plan_schedule`` turns process orders into a version-neutral plan: one request
per order, one segment per phase, one material line per active component plus
the produced material. Every mapping decision and every value check happens
here; ``b2mml_schedule_v0600`` and ``b2mml_schedule_v7`` only write the plan in
their version's element names and order.

Failure modes (all ``MappingError`` naming the IDoc, the order, the field and the
value): no orders; an order without phases; a value that cannot be written
unchanged (see ``b2mml_common``); a unit without a PAS-X code; two orders with
the same number, two phases with the same number, or two material lines with the
same id in one phase (the receiver could not tell them apart).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from zoneinfo import ZoneInfo

from contracts.errors import MappingError
from transforms.b2mml_common import OrderContext
from transforms.mapping import MappingProfile
from transforms.model import Component, ComponentRole, Phase, ProcessOrder, Quantity

__all__ = [
    "MaterialLine",
    "MaterialUse",
    "RequestPlan",
    "SchedulePlan",
    "SegmentPlan",
    "plan_schedule",
    "schedule_document_id",
]

PASX_PARTNER = "pasx"

# Fixed forever: changing it changes every document id, and PAS-X would see resends as new.
_DOCUMENT_ID_NAMESPACE = uuid.UUID("6f3c2a1e-8d4b-5c7a-9e0f-1b2c3d4e5f60")


class MaterialUse(Enum):
    CONSUMED = "consumed"
    BY_PRODUCT = "by-product"
    PRODUCED = "produced"


@dataclass(frozen=True, slots=True, kw_only=True)
class MaterialLine:
    id: str
    material: str
    lot: str | None
    use: MaterialUse
    quantity: str
    unit: str
    properties: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class SegmentPlan:
    id: str
    description: str | None
    process_segment_id: str | None
    earliest_start: str | None
    latest_end: str | None
    work_center: str | None
    materials: tuple[MaterialLine, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestPlan:
    context: OrderContext
    id: str
    description: str
    plant: str
    start: str | None
    end: str | None
    recipe_id: str | None
    segments: tuple[SegmentPlan, ...]

    @property
    def definition_id(self) -> str:
        """The operations definition PAS-X executes: the master recipe, else the order itself."""
        return self.recipe_id or self.id


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulePlan:
    document_id: str
    requests: tuple[RequestPlan, ...]


def schedule_document_id(orders: Sequence[ProcessOrder]) -> str:
    """A deterministic document id (BODID): uuid5 over each order's IDoc key and order number.

    The same input always gives the same id, so a resend after a crash is
    recognisable downstream; a different IDoc (new DOCNUM) gives a new id.
    """
    key = [[*order.control.idempotency_key, order.order_number] for order in orders]
    return str(uuid.uuid5(_DOCUMENT_ID_NAMESPACE, json.dumps(key, ensure_ascii=False)))


def plan_schedule(orders: Sequence[ProcessOrder], profile: MappingProfile) -> SchedulePlan:
    if not orders:
        raise MappingError(
            "no process orders to schedule: a B2MML schedule needs at least one order"
        )
    requests = tuple(_plan_request(order, profile) for order in orders)
    _reject_duplicates(
        [(request.id, request.context, "order number (E1AFKOL/AUFNR)") for request in requests],
        "ProductionRequest/OperationsRequest ID",
    )
    return SchedulePlan(document_id=schedule_document_id(orders), requests=requests)


def _plan_request(order: ProcessOrder, profile: MappingProfile) -> RequestPlan:
    ctx = OrderContext(order)
    zone = profile.plant_timezone(order.plant)
    if not order.phases:
        raise ctx.error(
            "E1AFVOL (phases)",
            None,
            "at least one phase: PAS-X needs a segment to execute and to receive the "
            "produced material",
        )
    order_number = ctx.identifier(order.order_number, "E1AFKOL/AUFNR")
    producing = _producing_phase(order.phases)
    segments = tuple(
        _plan_segment(ctx, profile, phase, zone, produced=phase is producing)
        for phase in order.phases
    )
    _reject_duplicates(
        [(segment.id, ctx, "phase number (E1AFVOL/VORNR)") for segment in segments],
        "SegmentRequirement ID",
    )
    control = order.control
    # The SAP source of the request, readable in PAS-X: V0600 has no other place for it.
    source = ctx.text(
        f"SAP process order {order_number}, {control.mestyp} IDoc {control.docnum} "
        f"from {control.sender_partner}",
        "EDI_DC40/MESTYP, DOCNUM, SNDPRN → Description",
    )
    assert source is not None  # it holds the checked order number
    return RequestPlan(
        context=ctx,
        id=order_number,
        description=source,
        plant=ctx.identifier(order.plant, "E1AFKOL/WERKS"),
        start=ctx.timestamp(order.start, zone, "E1AFKOL/GSTRS (or GSTRP) → StartTime"),
        end=ctx.timestamp(order.finish, zone, "E1AFKOL/GLTRS (or GLTRP) → EndTime"),
        recipe_id=_recipe_id(ctx, order),
        segments=segments,
    )


def _producing_phase(phases: Sequence[Phase]) -> Phase:
    # ISA-95 places the produced material in the segment that yields it: the last phase of
    # the standard sequence (the first sequence SAP sends), not of a parallel one.
    standard = phases[0].sequence
    return [phase for phase in phases if phase.sequence == standard][-1]


def _recipe_id(ctx: OrderContext, order: ProcessOrder) -> str | None:
    recipe = order.recipe
    if recipe is None or not recipe.task_list:
        return None
    # Positional, so a missing type or counter cannot make two recipes look alike.
    parts = (
        ctx.optional_identifier(recipe.task_list_type, "E1AFKOL/PLNTY") or "",
        ctx.identifier(recipe.task_list, "E1AFKOL/PLNNR"),
        ctx.optional_identifier(recipe.counter, "E1AFKOL/PLNAL") or "",
    )
    return "/".join(parts)


def _plan_segment(
    ctx: OrderContext,
    profile: MappingProfile,
    phase: Phase,
    zone: ZoneInfo,
    *,
    produced: bool,
) -> SegmentPlan:
    number = ctx.identifier(phase.number, "E1AFVOL/VORNR")
    where = f"phase {number}"
    materials: list[MaterialLine] = []
    for position, component in enumerate(phase.components, start=1):
        if component.deleted:
            continue
        materials.append(_component_line(ctx, profile, number, position, component))
    if produced:
        materials.append(_produced_line(ctx, profile))
    _reject_duplicates(
        [(line.id, ctx, f"{where}: MaterialRequirement ID") for line in materials],
        f"MaterialRequirement ID in phase {number}",
    )
    return SegmentPlan(
        id=number,
        description=ctx.text(phase.description, f"{where}: E1AFVOL/LTXA1 → Description"),
        process_segment_id=ctx.optional_identifier(
            phase.control_key, f"{where}: E1AFVOL/STEUS → ProcessSegmentID"
        ),
        earliest_start=ctx.timestamp(
            phase.earliest_start, zone, f"{where}: E1AFVOL/FSAVD → EarliestStartTime"
        ),
        latest_end=ctx.timestamp(
            phase.earliest_finish, zone, f"{where}: E1AFVOL/FSEDD → LatestEndTime"
        ),
        work_center=ctx.optional_identifier(
            phase.work_center, f"{where}: E1AFVOL/ARBPL → EquipmentID"
        ),
        materials=tuple(materials),
    )


def _component_line(
    ctx: OrderContext,
    profile: MappingProfile,
    phase_number: str,
    position: int,
    component: Component,
) -> MaterialLine:
    at = f"phase {phase_number}, component at position {position}"
    reservation = ctx.optional_identifier(component.reservation, f"{at}: E1RESBL/RSNUM")
    item = ctx.optional_identifier(component.reservation_item, f"{at}: E1RESBL/RSPOS")
    # The reservation item is SAP's own key for the line; without it, the position within
    # the phase (counting deleted lines too, so ids stay stable when SAP deletes one).
    line_id = f"{reservation}-{item}" if reservation and item else f"{phase_number}-{position}"
    where = f"phase {phase_number}, component {line_id}"
    properties = [
        (name, value)
        for name, value in (
            ("SAPReservation", reservation),
            ("SAPReservationItem", item),
            (
                "SAPStorageLocation",
                ctx.optional_identifier(component.storage_location, f"{where}: E1RESBL/LGORT"),
            ),
        )
        if value is not None
    ]
    quantity, unit = _quantity(ctx, profile, component.required, f"{where}: E1RESBL/BDMNG")
    return MaterialLine(
        id=line_id,
        material=ctx.identifier(component.material, f"{where}: E1RESBL/MATNR"),
        lot=ctx.optional_identifier(component.batch, f"{where}: E1RESBL/CHARG"),
        use=(
            MaterialUse.CONSUMED
            if component.role is ComponentRole.CONSUMED
            else MaterialUse.BY_PRODUCT
        ),
        quantity=quantity,
        unit=unit,
        properties=tuple(properties),
    )


def _produced_line(ctx: OrderContext, profile: MappingProfile) -> MaterialLine:
    order = ctx.order
    quantity, unit = _quantity(ctx, profile, order.total, "produced material: E1AFKOL/GAMNG")
    return MaterialLine(
        # GAMNG is the order header's quantity, so the header's key names the line.
        id=order.order_number,
        material=ctx.identifier(order.material, "produced material: E1AFKOL/MATNR"),
        lot=ctx.optional_identifier(order.batch, "produced material: E1AFPOL/CHARG"),
        use=MaterialUse.PRODUCED,
        quantity=quantity,
        unit=unit,
        properties=(),
    )


def _quantity(
    ctx: OrderContext, profile: MappingProfile, quantity: Quantity, where: str
) -> tuple[str, str]:
    text = ctx.quantity(quantity.value, f"{where} → Quantity/QuantityString")
    try:
        code = profile.units.partner_code(quantity.unit, PASX_PARTNER)
    except KeyError as exc:
        raise ctx.error(
            f"{where} unit → Quantity/UnitOfMeasure",
            quantity.unit.sap,
            "an SAP unit listed in the unit table of the mapping profile",
        ) from exc
    except MappingError as exc:
        raise ctx.error(
            f"{where} unit → Quantity/UnitOfMeasure",
            quantity.unit.sap,
            f"a '{PASX_PARTNER}' code for this unit in the unit table of the mapping profile",
        ) from exc
    return text, ctx.identifier(code, f"{where} unit → PAS-X unit code {code!r}")


def _reject_duplicates(entries: list[tuple[str, OrderContext, str]], what: str) -> None:
    seen: set[str] = set()
    for value, ctx, where in entries:
        if value in seen:
            raise ctx.error(where, value, f"a unique {what} within its parent")
        seen.add(value)
