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

from transforms.b2mml_common import (
    NS_V0600,
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

__all__ = ["production_schedule_v0600"]

_MATERIAL_USE: dict[MaterialUse, str] = {
    MaterialUse.CONSUMED: "<MaterialUse>Consumed</MaterialUse>",
    MaterialUse.PRODUCED: "<MaterialUse>Produced</MaterialUse>",
    MaterialUse.BY_PRODUCT: '<MaterialUse OtherValue="By-product Produced">Other</MaterialUse>',
}


def production_schedule_v0600(
    orders: Sequence[ProcessOrder], profile: MappingProfile, *, created_at: datetime
) -> WrittenDocument:
    """One ``ProcessProductionSchedule`` with one ``ProductionRequest`` per order."""
    plan = plan_schedule(orders, profile)
    out = [
        document_start("ProcessProductionSchedule", NS_V0600, profile),
        application_area(profile, created_at=created_at, document_id=plan.document_id),
        "<DataArea><Process/><ProductionSchedule>",
        element("ID", plan.document_id),
    ]
    for request in plan.requests:
        _request(out, request)
    out.append("</ProductionSchedule></DataArea></ProcessProductionSchedule>")
    return written_document(out)


def _request(out: list[str], request: RequestPlan) -> None:
    out.append(
        f"<ProductionRequest><ID>{escape(request.id)}</ID>"
        f"<Description>{escape(request.description)}</Description>"
        f"{optional_element('ProductProductionRuleID', request.recipe_id)}"
        f"<HierarchyScope><EquipmentID>{escape(request.plant)}</EquipmentID>"
        "<EquipmentElementLevel>Site</EquipmentElementLevel></HierarchyScope>"
        f"{optional_element('StartTime', request.start)}"
        f"{optional_element('EndTime', request.end)}"
    )
    for segment in request.segments:
        _segment(out, segment)
    out.append("</ProductionRequest>")


def _segment(out: list[str], segment: SegmentPlan) -> None:
    # One part per element, appended only where there is a value: cheaper than a call to
    # optional_element for each. The date-times are ISO 8601 text made by the plan: no markup.
    out.append(f"<SegmentRequirement><ID>{escape(segment.id)}</ID>")
    if segment.process_segment_id is not None:
        out.append(f"<ProcessSegmentID>{escape(segment.process_segment_id)}</ProcessSegmentID>")
    if segment.description is not None:
        out.append(f"<Description>{escape(segment.description)}</Description>")
    if segment.earliest_start is not None:
        out.append(f"<EarliestStartTime>{segment.earliest_start}</EarliestStartTime>")
    if segment.latest_end is not None:
        out.append(f"<LatestEndTime>{segment.latest_end}</LatestEndTime>")
    if segment.work_center is not None:
        out.append(
            "<EquipmentRequirement>"
            f"<EquipmentID>{escape(segment.work_center)}</EquipmentID>"
            "</EquipmentRequirement>"
        )
    for line in segment.materials:
        _material(out, line)
    out.append("</SegmentRequirement>")


def _material(out: list[str], line: MaterialLine) -> None:
    out.append(
        f"<MaterialRequirement><MaterialDefinitionID>{escape(line.material)}</MaterialDefinitionID>"
    )
    if line.lot is not None:
        out.append(f"<MaterialLotID>{escape(line.lot)}</MaterialLotID>")
    out.append(_MATERIAL_USE[line.use])
    out.append(quantity_and_properties(line.quantity, line.unit, line.properties))
    out.append("</MaterialRequirement>")
