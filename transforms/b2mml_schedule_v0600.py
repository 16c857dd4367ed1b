"""Process orders → B2MML V0600 ``ProcessProductionSchedule`` for PAS-X (flow F1).

Writes the version-neutral plan of ``b2mml_schedule_plan`` in V0600's element
names and order (docs/b2mml.md has the field-by-field mapping). The result
validates against the profile ``contracts/schemas/b2mml/ProductionSchedule/V0600``
and the official ``B2MML-V0600-ProductionSchedule.xsd``.

V0600 specifics: the plant is a ``HierarchyScope`` with ``EquipmentElementLevel``
``Site`` (``Location`` is deprecated); the recipe is the ``ProductProductionRuleID``;
material requirements carry no ``ID``; V0600's ``MaterialUse`` has no by-product
value, so a by-product is ``Other`` with ``OtherValue="By-product Produced"`` (V7's
term), which keeps it distinguishable from the order's main product.

Failure modes: those of ``plan_schedule`` (``MappingError``) and a naive
``created_at`` (``ValueError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lxml import etree

from transforms.b2mml_common import (
    NS_V0600,
    ElementBuilder,
    application_area,
    document_root,
    material_property,
    quantity_element,
)
from transforms.b2mml_schedule_plan import (
    MaterialLine,
    MaterialUse,
    RequestPlan,
    SegmentPlan,
    plan_schedule,
)
from transforms.mapping import MappingProfile
from transforms.model import ProcessOrder

__all__ = ["production_schedule_v0600"]

_B = ElementBuilder(NS_V0600)

# (element text, OtherValue attribute or None)
_MATERIAL_USE: dict[MaterialUse, tuple[str, str | None]] = {
    MaterialUse.CONSUMED: ("Consumed", None),
    MaterialUse.PRODUCED: ("Produced", None),
    MaterialUse.BY_PRODUCT: ("Other", "By-product Produced"),
}


def production_schedule_v0600(
    orders: Sequence[ProcessOrder], profile: MappingProfile, *, created_at: datetime
) -> etree._Element:
    """One ``ProcessProductionSchedule`` with one ``ProductionRequest`` per order."""
    plan = plan_schedule(orders, profile)
    root = document_root(_B, "ProcessProductionSchedule", profile)
    application_area(_B, root, profile, created_at=created_at, document_id=plan.document_id)
    data_area = _B.sub(root, "DataArea")
    _B.sub(data_area, "Process")
    schedule = _B.sub(data_area, "ProductionSchedule")
    _B.sub(schedule, "ID", plan.document_id)
    for request in plan.requests:
        _request(schedule, request)
    return root


def _request(parent: etree._Element, request: RequestPlan) -> None:
    element = _B.sub(parent, "ProductionRequest")
    _B.sub(element, "ID", request.id)
    _B.sub(element, "Description", request.description)
    _B.optional(element, "ProductProductionRuleID", request.recipe_id)
    scope = _B.sub(element, "HierarchyScope")
    _B.sub(scope, "EquipmentID", request.plant)
    _B.sub(scope, "EquipmentElementLevel", "Site")
    _B.optional(element, "StartTime", request.start)
    _B.optional(element, "EndTime", request.end)
    for segment in request.segments:
        _segment(element, segment)


def _segment(parent: etree._Element, segment: SegmentPlan) -> None:
    element = _B.sub(parent, "SegmentRequirement")
    _B.sub(element, "ID", segment.id)
    _B.optional(element, "ProcessSegmentID", segment.process_segment_id)
    _B.optional(element, "Description", segment.description)
    _B.optional(element, "EarliestStartTime", segment.earliest_start)
    _B.optional(element, "LatestEndTime", segment.latest_end)
    if segment.work_center is not None:
        equipment = _B.sub(element, "EquipmentRequirement")
        _B.sub(equipment, "EquipmentID", segment.work_center)
    for line in segment.materials:
        _material(element, line)


def _material(parent: etree._Element, line: MaterialLine) -> None:
    element = _B.sub(parent, "MaterialRequirement")
    _B.sub(element, "MaterialDefinitionID", line.material)
    _B.optional(element, "MaterialLotID", line.lot)
    use, other_value = _MATERIAL_USE[line.use]
    if other_value is None:
        _B.sub(element, "MaterialUse", use)
    else:
        _B.sub(element, "MaterialUse", use, OtherValue=other_value)
    quantity_element(_B, element, line.quantity, line.unit)
    for name, value in line.properties:
        material_property(_B, element, name, value)
