"""Process orders → B2MML V7 ``ProcessOperationsSchedule`` (OperationsType Production) for PAS-X.

Writes the version-neutral plan of ``b2mml_schedule_plan`` in V7's element
names and order (docs/b2mml.md has the field-by-field mapping). The result
validates against the profile ``contracts/schemas/b2mml/OperationsSchedule/V7``
and the official ``B2MML-OperationsSchedule.xsd``.

V7 is stricter than V0600: every ``SegmentRequirement`` needs ``ProcessSegmentID``
(the phase's control key), ``OperationsDefinitionID`` (the master recipe
PLNTY/PLNNR/PLNAL, else the order number) and ``OperationsSegmentID`` (the phase
number); every ``MaterialRequirement`` and ``EquipmentRequirement`` needs an ``ID``.
The plant is a ``HierarchyScope`` with ``EquipmentLevel`` ``Site``; a by-product
is ``By-product Produced``.

Failure modes: those of ``plan_schedule`` (``MappingError``); a phase without a
control key (``MappingError``: V7 requires ``ProcessSegmentID`` and none is
invented); a naive ``created_at`` (``ValueError``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from lxml import etree

from transforms.b2mml_common import (
    NS_V7,
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

__all__ = ["operations_schedule_v7"]

_B = ElementBuilder(NS_V7)

_OPERATIONS_TYPE = "Production"

_MATERIAL_USE: dict[MaterialUse, str] = {
    MaterialUse.CONSUMED: "Consumed",
    MaterialUse.PRODUCED: "Produced",
    MaterialUse.BY_PRODUCT: "By-product Produced",
}


def operations_schedule_v7(
    orders: Sequence[ProcessOrder], profile: MappingProfile, *, created_at: datetime
) -> etree._Element:
    """One ``ProcessOperationsSchedule`` with one ``OperationsRequest`` per order."""
    plan = plan_schedule(orders, profile)
    root = document_root(_B, "ProcessOperationsSchedule", profile)
    application_area(_B, root, profile, created_at=created_at, document_id=plan.document_id)
    data_area = _B.sub(root, "DataArea")
    _B.sub(data_area, "Process")
    schedule = _B.sub(data_area, "OperationsSchedule")
    _B.sub(schedule, "ID", plan.document_id)
    _B.sub(schedule, "OperationsType", _OPERATIONS_TYPE)
    for request in plan.requests:
        _request(schedule, request)
    return root


def _request(parent: etree._Element, request: RequestPlan) -> None:
    element = _B.sub(parent, "OperationsRequest")
    _B.sub(element, "ID", request.id)
    _B.sub(element, "Description", request.description)
    _B.optional(element, "StartTime", request.start)
    _B.optional(element, "EndTime", request.end)
    scope = _B.sub(element, "HierarchyScope")
    _B.sub(scope, "EquipmentID", request.plant)
    _B.sub(scope, "EquipmentLevel", "Site")
    _B.sub(element, "OperationsType", _OPERATIONS_TYPE)
    _B.sub(element, "OperationsDefinitionID", request.definition_id)
    for segment in request.segments:
        _segment(element, request, segment)


def _segment(parent: etree._Element, request: RequestPlan, segment: SegmentPlan) -> None:
    if segment.process_segment_id is None:
        raise request.context.error(
            f"phase {segment.id}: E1AFVOL/STEUS → SegmentRequirement/ProcessSegmentID",
            None,
            "a control key: B2MML V7 requires a ProcessSegmentID for every segment",
        )
    element = _B.sub(parent, "SegmentRequirement")
    _B.sub(element, "ID", segment.id)
    _B.optional(element, "Description", segment.description)
    _B.optional(element, "EarliestStartTime", segment.earliest_start)
    _B.optional(element, "LatestEndTime", segment.latest_end)
    _B.sub(element, "ProcessSegmentID", segment.process_segment_id)
    _B.sub(element, "OperationsDefinitionID", request.definition_id)
    _B.sub(element, "OperationsSegmentID", segment.id)
    if segment.work_center is not None:
        equipment = _B.sub(element, "EquipmentRequirement")
        # One equipment requirement per segment: the work centre names it uniquely.
        _B.sub(equipment, "ID", segment.work_center)
        _B.sub(equipment, "EquipmentID", segment.work_center)
    for line in segment.materials:
        _material(element, line)


def _material(parent: etree._Element, line: MaterialLine) -> None:
    element = _B.sub(parent, "MaterialRequirement")
    _B.sub(element, "ID", line.id)
    _B.sub(element, "MaterialDefinitionID", line.material)
    _B.optional(element, "MaterialLotID", line.lot)
    _B.sub(element, "MaterialUse", _MATERIAL_USE[line.use])
    quantity_element(_B, element, line.quantity, line.unit)
    for name, value in line.properties:
        material_property(_B, element, name, value)
