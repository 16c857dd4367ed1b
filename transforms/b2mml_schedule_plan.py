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

import hashlib
import json
import uuid
from collections.abc import Sequence
from enum import Enum
from typing import NamedTuple

from contracts.errors import MappingError
from transforms.b2mml_common import OrderContext, decimal_text, is_identifier
from transforms.mapping import MappingProfile
from transforms.model import Component, ComponentRole, Phase, ProcessOrder, Quantity, Unit
from transforms.units import UnitTable

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
# What json.dumps(key, ensure_ascii=False) builds on every call (it has no shared one for
# non-default options).
_KEY_ENCODER = json.JSONEncoder(ensure_ascii=False)


class MaterialUse(Enum):
    CONSUMED = "consumed"
    BY_PRODUCT = "by-product"
    PRODUCED = "produced"


# The plan is built anew for every order, about 30 objects each: immutable named tuples,
# which cost half of what frozen dataclasses cost to build. The per-phase and per-line ones
# are built positionally, from local variables named as the fields: a keyword call to a
# class builds a dict of the arguments each time.


class MaterialLine(NamedTuple):
    id: str
    material: str
    lot: str | None
    use: MaterialUse
    quantity: str
    unit: str
    properties: tuple[tuple[str, str], ...]


class SegmentPlan(NamedTuple):
    id: str
    description: str | None
    process_segment_id: str | None
    earliest_start: str | None
    latest_end: str | None
    work_center: str | None
    materials: tuple[MaterialLine, ...]


class RequestPlan(NamedTuple):
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


class SchedulePlan(NamedTuple):
    document_id: str
    requests: tuple[RequestPlan, ...]


def schedule_document_id(orders: Sequence[ProcessOrder]) -> str:
    """A deterministic document id (BODID): uuid5 over each order's IDoc key and order number.

    The same input always gives the same id, so a resend after a crash is
    recognisable downstream; a different IDoc (new DOCNUM) gives a new id.
    """
    key = [[*order.control.idempotency_key, order.order_number] for order in orders]
    return _uuid5_text(_KEY_ENCODER.encode(key))


def _uuid5_text(name: str) -> str:
    """``str(uuid.uuid5(_DOCUMENT_ID_NAMESPACE, name))`` without building the UUID object."""
    data = _DOCUMENT_ID_NAMESPACE.bytes + name.encode("utf-8")
    digest = bytearray(hashlib.sha1(data, usedforsecurity=False).digest())  # uuid5 is SHA-1
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def plan_schedule(orders: Sequence[ProcessOrder], profile: MappingProfile) -> SchedulePlan:
    if not orders:
        raise MappingError(
            "no process orders to schedule: a B2MML schedule needs at least one order"
        )
    units = _PasxUnits(profile.units)
    requests = tuple(_plan_request(order, profile, units) for order in orders)
    duplicate = _repeated([request.id for request in requests])
    if duplicate is not None:
        request = requests[duplicate]
        raise request.context.error(
            "order number (E1AFKOL/AUFNR)",
            request.id,
            "a unique ProductionRequest/OperationsRequest ID within its parent",
        )
    return SchedulePlan(document_id=schedule_document_id(orders), requests=requests)


class _PasxUnits:
    """The PAS-X code of each SAP unit, looked up once per schedule: orders repeat a few units."""

    def __init__(self, table: UnitTable) -> None:
        self._table = table
        self._codes: dict[str, str] = {}
        # SAP unit → its PAS-X code, once ``_quantity`` has found the code fit to be written.
        self.written: dict[str, str] = {}

    def code(self, unit: Unit) -> str:
        """Raises as ``UnitTable.partner_code`` does, whose answer depends on ``unit.sap`` only."""
        code = self._codes.get(unit.sap)
        if code is None:
            code = self._codes[unit.sap] = self._table.partner_code(unit, PASX_PARTNER)
        return code


def _plan_request(order: ProcessOrder, profile: MappingProfile, units: _PasxUnits) -> RequestPlan:
    ctx = OrderContext(order, profile.plant_timezone(order.plant))
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
        _plan_segment(ctx, units, phase, produced=phase is producing) for phase in order.phases
    )
    duplicate = _repeated([segment.id for segment in segments])
    if duplicate is not None:
        raise ctx.error(
            "phase number (E1AFVOL/VORNR)",
            segments[duplicate].id,
            "a unique SegmentRequirement ID within its parent",
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
        start=ctx.timestamp(order.start, "E1AFKOL/GSTRS (or GSTRP) → StartTime"),
        end=ctx.timestamp(order.finish, "E1AFKOL/GLTRS (or GLTRP) → EndTime"),
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
    units: _PasxUnits,
    phase: Phase,
    *,
    produced: bool,
) -> SegmentPlan:
    number = ctx.identifier(phase.number, "E1AFVOL/VORNR")
    scope = f"phase {number}"
    materials = [
        _component_line(ctx, units, number, position, component)
        for position, component in enumerate(phase.components, start=1)
        if not component.deleted
    ]
    if produced:
        materials.append(_produced_line(ctx, units))
    # One line cannot repeat, and most phases have just one.
    duplicate = _repeated([line.id for line in materials]) if len(materials) > 1 else None
    if duplicate is not None:
        raise ctx.error(
            f"{scope}: MaterialRequirement ID",
            materials[duplicate].id,
            f"a unique MaterialRequirement ID in phase {number} within its parent",
        )
    description = ctx.text(phase.description, "E1AFVOL/LTXA1 → Description", scope)
    process_segment_id = ctx.optional_identifier(
        phase.control_key, "E1AFVOL/STEUS → ProcessSegmentID", scope
    )
    earliest_start = ctx.timestamp(phase.earliest_start, "E1AFVOL/FSAVD → EarliestStartTime", scope)
    latest_end = ctx.timestamp(phase.earliest_finish, "E1AFVOL/FSEDD → LatestEndTime", scope)
    work_center = ctx.optional_identifier(phase.work_center, "E1AFVOL/ARBPL → EquipmentID", scope)
    return SegmentPlan(
        number,
        description,
        process_segment_id,
        earliest_start,
        latest_end,
        work_center,
        tuple(materials),
    )


def _component_line(
    ctx: OrderContext,
    units: _PasxUnits,
    phase_number: str,
    position: int,
    component: Component,
) -> MaterialLine:
    # What _checked_component_line gives where every check passes, without naming each
    # field's place in advance for an error that almost never comes.
    reservation = component.reservation or None
    item = component.reservation_item or None
    storage_location = component.storage_location or None
    lot = component.batch or None
    quantity = decimal_text(component.required.value)
    unit = units.written.get(component.required.unit.sap)
    if (
        quantity is None
        or unit is None
        or not _identifiers(component.material, reservation, item, storage_location, lot)
    ):
        # Something to report (or a unit not seen yet): the checks one by one, in the order
        # of the fields, name the first value that cannot be written.
        return _checked_component_line(ctx, units, phase_number, position, component)
    line_id = _line_id(reservation, item, phase_number, position)
    return MaterialLine(
        line_id,
        component.material,
        lot,
        _use(component),
        quantity,
        unit,
        _sap_references(reservation, item, storage_location),
    )


def _line_id(reservation: str | None, item: str | None, phase_number: str, position: int) -> str:
    # The reservation item is SAP's own key for the line; without it, the position within
    # the phase (counting deleted lines too, so ids stay stable when SAP deletes one).
    return f"{reservation}-{item}" if reservation and item else f"{phase_number}-{position}"


def _use(component: Component) -> MaterialUse:
    return (
        MaterialUse.CONSUMED if component.role is ComponentRole.CONSUMED else MaterialUse.BY_PRODUCT
    )


def _sap_references(
    reservation: str | None, item: str | None, storage_location: str | None
) -> tuple[tuple[str, str], ...]:
    """The MaterialRequirementProperty (ID, value) pairs a goods movement needs back."""
    properties: list[tuple[str, str]] = []
    if reservation is not None:
        properties.append(("SAPReservation", reservation))
    if item is not None:
        properties.append(("SAPReservationItem", item))
    if storage_location is not None:
        properties.append(("SAPStorageLocation", storage_location))
    return tuple(properties)


def _identifiers(*values: str | None) -> bool:
    """Whether ``OrderContext.optional_identifier`` passes every value unchanged."""
    for value in values:
        if value is not None and not (value.isalnum() or is_identifier(value)):
            return False
    return True


def _checked_component_line(
    ctx: OrderContext,
    units: _PasxUnits,
    phase_number: str,
    position: int,
    component: Component,
) -> MaterialLine:
    at = f"phase {phase_number}, component at position {position}"
    reservation = ctx.optional_identifier(component.reservation, "E1RESBL/RSNUM", at)
    item = ctx.optional_identifier(component.reservation_item, "E1RESBL/RSPOS", at)
    line_id = _line_id(reservation, item, phase_number, position)
    scope = f"phase {phase_number}, component {line_id}"
    storage_location = ctx.optional_identifier(component.storage_location, "E1RESBL/LGORT", scope)
    quantity, unit = _quantity(ctx, units, component.required, "E1RESBL/BDMNG", scope)
    material = ctx.identifier(component.material, "E1RESBL/MATNR", scope)
    lot = ctx.optional_identifier(component.batch, "E1RESBL/CHARG", scope)
    return MaterialLine(
        line_id,
        material,
        lot,
        _use(component),
        quantity,
        unit,
        _sap_references(reservation, item, storage_location),
    )


def _produced_line(ctx: OrderContext, units: _PasxUnits) -> MaterialLine:
    order = ctx.order
    scope = "produced material"
    quantity, unit = _quantity(ctx, units, order.total, "E1AFKOL/GAMNG", scope)
    return MaterialLine(
        # GAMNG is the order header's quantity, so the header's key names the line.
        id=order.order_number,
        material=ctx.identifier(order.material, "E1AFKOL/MATNR", scope),
        lot=ctx.optional_identifier(order.batch, "E1AFPOL/CHARG", scope),
        use=MaterialUse.PRODUCED,
        quantity=quantity,
        unit=unit,
        properties=(),
    )


def _quantity(
    ctx: OrderContext, units: _PasxUnits, quantity: Quantity, field: str, scope: str
) -> tuple[str, str]:
    text = ctx.quantity(quantity.value, f"{field} → Quantity/QuantityString", scope)
    try:
        code = units.code(quantity.unit)
    except KeyError as exc:
        raise ctx.error(
            f"{scope}: {field} unit → Quantity/UnitOfMeasure",
            quantity.unit.sap,
            "an SAP unit listed in the unit table of the mapping profile",
        ) from exc
    except MappingError as exc:
        raise ctx.error(
            f"{scope}: {field} unit → Quantity/UnitOfMeasure",
            quantity.unit.sap,
            f"a '{PASX_PARTNER}' code for this unit in the unit table of the mapping profile",
        ) from exc
    if not is_identifier(code):
        # Checked apart from ctx.identifier: the field names the code, so it is built only here.
        raise ctx.identifier_error(code, f"{field} unit → PAS-X unit code {code!r}", scope)
    units.written[quantity.unit.sap] = code
    return text, code


def _repeated(ids: list[str]) -> int | None:
    """The position of the first id that was already seen, or None when all differ."""
    if len(set(ids)) == len(ids):
        return None
    seen: set[str] = set()
    for position, value in enumerate(ids):
        if value in seen:
            return position
        seen.add(value)
    return None
