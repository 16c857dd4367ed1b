"""What SAP said about an order, used to complete what the MES reports about it.

A PAS-X or Tulip message names the order and the materials, but often not the
SAP plant, storage location or reservation a goods movement needs. SAP sent
those with the process order (LOIPRO). ``order_context`` keeps them from a
``ProcessOrder``; ``complete_report`` fills the gaps of a ``PerformanceReport``
from that context and from the mapping profile, in this order of precedence:

1. what the message itself says (never overridden);
2. the order context: the order's plant; for a consumption, the storage
   location and reservation of the order's component with that material; for a
   yield, the order item's storage location;
3. the mapping profile: the sending system's plant (``[senders.<id>] plant``),
   the plant's default storage locations (``[plants.<WERKS>]
   issue_storage_location`` / ``receipt_storage_location``).

Nothing is guessed: where a material is a component of the order several times
with different storage locations or reservations (and the report does not name
the phase that settles it), that value stays empty. A plant that is still
unknown afterwards is refused by the goods-movement writer, naming the item.

Pure: no IO; the context comes in as an argument (the service reads it from its
store, the CLI has none).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from transforms.mapping import MappingProfile
from transforms.model import (
    ComponentRole,
    MaterialActual,
    MaterialRole,
    PerformanceReport,
    ProcessOrder,
    mutable_twin,
)

__all__ = ["ComponentContext", "OrderContext", "complete_report", "order_context"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ComponentContext:
    """One active component of the order: where SAP expects it to be issued from."""

    material: str
    phase: str
    plant: str | None
    storage_location: str | None
    reservation: str | None
    reservation_item: str | None
    by_product: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderContext:
    order_number: str
    plant: str
    material: str  # what the order produces
    receipt_storage_location: str | None  # the order item's LGORT
    components: tuple[ComponentContext, ...] = ()

    def to_json(self) -> dict[str, object]:
        """What ``dataclasses.asdict`` gives (components as a tuple), at a tenth of its cost:
        the service stores one per order."""
        return {
            "order_number": self.order_number,
            "plant": self.plant,
            "material": self.material,
            "receipt_storage_location": self.receipt_storage_location,
            "components": tuple(
                [
                    {
                        "material": component.material,
                        "phase": component.phase,
                        "plant": component.plant,
                        "storage_location": component.storage_location,
                        "reservation": component.reservation,
                        "reservation_item": component.reservation_item,
                        "by_product": component.by_product,
                    }
                    for component in self.components
                ]
            ),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> OrderContext:
        raw_components = data.get("components", ())
        assert isinstance(raw_components, list | tuple)
        components = tuple(ComponentContext(**dict(c)) for c in raw_components)
        fields = {k: v for k, v in data.items() if k != "components"}
        return cls(**fields, components=components)  # type: ignore[arg-type]


_ComponentContextDraft = mutable_twin(ComponentContext)


def _component_context(
    *,
    material: str,
    phase: str,
    plant: str | None,
    storage_location: str | None,
    reservation: str | None,
    reservation_item: str | None,
    by_product: bool,
) -> ComponentContext:
    """``ComponentContext(...)`` at a quarter of the cost (``mutable_twin``); every field named."""
    context: ComponentContext = _ComponentContextDraft(
        material, phase, plant, storage_location, reservation, reservation_item, by_product
    )
    context.__class__ = ComponentContext
    return context


def order_context(order: ProcessOrder) -> OrderContext:
    """The facts of ``order`` that goods movements for it may need."""
    item = next((i for i in order.items if i.material == order.material), None)
    return OrderContext(
        order_number=order.order_number,
        plant=order.plant,
        material=order.material,
        receipt_storage_location=item.storage_location if item else None,
        components=tuple(
            [
                _component_context(
                    material=component.material,
                    phase=phase.number,
                    plant=component.plant,
                    storage_location=component.storage_location,
                    reservation=component.reservation,
                    reservation_item=component.reservation_item,
                    by_product=component.role is ComponentRole.BY_PRODUCT,
                )
                for phase, component in order.active_components()
            ]
        ),
    )


def complete_report(
    report: PerformanceReport, profile: MappingProfile, context: OrderContext | None
) -> PerformanceReport:
    """``report`` with plant, storage locations and reservations filled where it left them out."""
    if context is not None and context.order_number != report.order_number:
        raise ValueError(
            f"context of order {context.order_number} given for order {report.order_number}"
        )
    fallback = (context.plant if context else None) or profile.sender_plants.get(report.sender)
    actuals = tuple(
        _complete(actual, report.plant, fallback, profile, context) for actual in report.actuals
    )
    return dataclasses.replace(report, plant=report.plant or fallback, actuals=actuals)


def _complete(
    actual: MaterialActual,
    message_plant: str | None,
    fallback_plant: str | None,
    profile: MappingProfile,
    context: OrderContext | None,
) -> MaterialActual:
    """``message_plant``: the plant the message names for the whole report; ``fallback_plant``:
    the order's plant SAP sent, else the sender's plant in the profile."""
    named = actual.plant or message_plant  # what the message says is never overridden
    plant = named
    storage = actual.storage_location
    reservation, reservation_item = actual.reservation, actual.reservation_item
    if actual.role is MaterialRole.PRODUCED:
        if (
            storage is None
            and context is not None
            and actual.material == context.material
            and named in (None, context.plant)
        ):
            storage = context.receipt_storage_location
    else:
        # A component SAP keeps in another plant than the message names is not this
        # actual's: its storage location and reservation would be another plant's.
        match = _component(actual, context, named)
        if match is not None:
            storage = storage or match.storage_location
            if reservation is None and match.reservation and match.reservation_item:
                reservation, reservation_item = match.reservation, match.reservation_item
            plant = plant or match.plant
    plant = plant or fallback_plant
    if storage is None and plant and plant in profile.plant_storage:
        defaults = profile.plant_storage[plant]
        storage = defaults.issue if actual.role is MaterialRole.CONSUMED else defaults.receipt
    report_plant = message_plant or fallback_plant
    return dataclasses.replace(
        actual,
        plant=actual.plant or (plant if plant != report_plant else None),
        storage_location=storage,
        reservation=reservation,
        reservation_item=reservation_item,
    )


def _component(
    actual: MaterialActual, context: OrderContext | None, plant: str | None
) -> ComponentContext | None:
    """The order's one component this actual is about, or None when it is not one and only one.

    ``plant``: the plant the message names; only a component SAP keeps in that plant (its
    own, else the order's) can be the one.
    """
    if context is None:
        return None
    by_product = actual.role is MaterialRole.BY_PRODUCT
    candidates = [
        c
        for c in context.components
        if c.material == actual.material
        and c.by_product == by_product
        and (plant is None or (c.plant or context.plant) == plant)
    ]
    if actual.phase is not None and len(candidates) > 1:
        candidates = [c for c in candidates if c.phase == actual.phase]
    distinct = {
        (c.plant, c.storage_location, c.reservation, c.reservation_item) for c in candidates
    }
    return candidates[0] if len(distinct) == 1 else None
