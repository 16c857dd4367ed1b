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

from transforms.b2mml_common import (
    NS_V7,
    WrittenDocument,
    application_area,
    document_start,
    element,
    escape,
    optional_element,
    quantity_and_properties,
    written_document,
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

_OPERATIONS_TYPE = "<OperationsType>Production</OperationsType>"

_MATERIAL_USE: dict[MaterialUse, str] = {
    MaterialUse.CONSUMED: "<MaterialUse>Consumed</MaterialUse>",
    MaterialUse.PRODUCED: "<MaterialUse>Produced</MaterialUse>",
    MaterialUse.BY_PRODUCT: "<MaterialUse>By-product Produced</MaterialUse>",
}


def operations_schedule_v7(
    orders: Sequence[ProcessOrder], profile: MappingProfile, *, created_at: datetime
) -> WrittenDocument:
    """One ``ProcessOperationsSchedule`` with one ``OperationsRequest`` per order."""
    plan = plan_schedule(orders, profile)
    out = [
        document_start("ProcessOperationsSchedule", NS_V7, profile),
        application_area(profile, created_at=created_at, document_id=plan.document_id),
        "<DataArea><Process/><OperationsSchedule>",
        element("ID", plan.document_id),
        _OPERATIONS_TYPE,
    ]
    for request in plan.requests:
        _request(out, request)
    out.append("</OperationsSchedule></DataArea></ProcessOperationsSchedule>")
    return written_document(out)


def _request(out: list[str], request: RequestPlan) -> None:
    # Every segment repeats the request's OperationsDefinitionID: written once, here.
    definition_id = element("OperationsDefinitionID", request.definition_id)
    out.append(
        f"<OperationsRequest><ID>{escape(request.id)}</ID>"
        f"<Description>{escape(request.description)}</Description>"
        f"{optional_element('StartTime', request.start)}"
        f"{optional_element('EndTime', request.end)}"
        f"<HierarchyScope><EquipmentID>{escape(request.plant)}</EquipmentID>"
        "<EquipmentLevel>Site</EquipmentLevel></HierarchyScope>"
        f"{_OPERATIONS_TYPE}{definition_id}"
    )
    for segment in request.segments:
        _segment(out, request, segment, definition_id)
    out.append("</OperationsRequest>")


def _segment(
    out: list[str], request: RequestPlan, segment: SegmentPlan, definition_id: str
) -> None:
    if segment.process_segment_id is None:
        raise request.context.error(
            f"phase {segment.id}: E1AFVOL/STEUS → SegmentRequirement/ProcessSegmentID",
            None,
            "a control key: B2MML V7 requires a ProcessSegmentID for every segment",
        )
    # One part per element, appended only where there is a value: cheaper than a call to
    # optional_element for each. The date-times are ISO 8601 text made by the plan: no markup.
    segment_id = escape(segment.id)
    out.append(f"<SegmentRequirement><ID>{segment_id}</ID>")
    if segment.description is not None:
        out.append(f"<Description>{escape(segment.description)}</Description>")
    if segment.earliest_start is not None:
        out.append(f"<EarliestStartTime>{segment.earliest_start}</EarliestStartTime>")
    if segment.latest_end is not None:
        out.append(f"<LatestEndTime>{segment.latest_end}</LatestEndTime>")
    out.append(
        f"<ProcessSegmentID>{escape(segment.process_segment_id)}</ProcessSegmentID>"
        f"{definition_id}"
        f"<OperationsSegmentID>{segment_id}</OperationsSegmentID>"
    )
    if segment.work_center is not None:
        # One equipment requirement per segment: the work centre names it uniquely.
        work_center = escape(segment.work_center)
        out.append(
            f"<EquipmentRequirement><ID>{work_center}</ID>"
            f"<EquipmentID>{work_center}</EquipmentID></EquipmentRequirement>"
        )
    for line in segment.materials:
        _material(out, line)
    out.append("</SegmentRequirement>")


def _material(out: list[str], line: MaterialLine) -> None:
    out.append(
        f"<MaterialRequirement><ID>{escape(line.id)}</ID>"
        f"<MaterialDefinitionID>{escape(line.material)}</MaterialDefinitionID>"
    )
    if line.lot is not None:
        out.append(f"<MaterialLotID>{escape(line.lot)}</MaterialLotID>")
    out.append(_MATERIAL_USE[line.use])
    out.append(quantity_and_properties(line.quantity, line.unit, line.properties))
    out.append("</MaterialRequirement>")
