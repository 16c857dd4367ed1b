"""B2MML V0600 ProcessProductionPerformance messages as PAS-X would send them, for tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from xml.sax.saxutils import escape

V0600_NS = "http://www.mesa.org/xml/B2MML-V0600"


@dataclass(frozen=True, kw_only=True)
class ActualSpec:
    material: str
    quantity: str
    unit: str = "KG"
    use: str = "Consumed"
    lot: str | None = None
    properties: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class SegmentSpec:
    phase: str
    actuals: list[ActualSpec]


@dataclass(frozen=True, kw_only=True)
class PerformanceSpec:
    bodid: str
    order_number: str
    sender: str = "PASX-PLANT1"
    plant: str | None = "1000"
    end_time: str = "2025-03-14T16:05:00+01:00"
    segments: list[SegmentSpec]


def _actual(spec: ActualSpec) -> str:
    lot = f"<MaterialLotID>{escape(spec.lot)}</MaterialLotID>" if spec.lot else ""
    properties = "".join(
        f"<MaterialActualProperty><ID>{escape(name)}</ID>"
        f"<Value><ValueString>{escape(value)}</ValueString></Value></MaterialActualProperty>"
        for name, value in spec.properties.items()
    )
    return (
        f"<MaterialActual><MaterialDefinitionID>{escape(spec.material)}</MaterialDefinitionID>"
        f"{lot}<MaterialUse>{escape(spec.use)}</MaterialUse>"
        f"<Quantity><QuantityString>{escape(spec.quantity)}</QuantityString>"
        f"<UnitOfMeasure>{escape(spec.unit)}</UnitOfMeasure></Quantity>"
        f"{properties}</MaterialActual>"
    )


def build_performance(spec: PerformanceSpec) -> bytes:
    scope = (
        f"<HierarchyScope><EquipmentID>{escape(spec.plant)}</EquipmentID>"
        "<EquipmentElementLevel>Site</EquipmentElementLevel></HierarchyScope>"
        if spec.plant
        else ""
    )
    segments = "".join(
        f"<SegmentResponse><ID>{escape(segment.phase)}</ID>"
        + "".join(_actual(actual) for actual in segment.actuals)
        + "</SegmentResponse>"
        for segment in spec.segments
    )
    text = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<ProcessProductionPerformance xmlns="{V0600_NS}" releaseID="6.0">'
        f"<ApplicationArea><Sender><LogicalID>{escape(spec.sender)}</LogicalID></Sender>"
        f"<CreationDateTime>{escape(spec.end_time)}</CreationDateTime>"
        f"<BODID>{escape(spec.bodid)}</BODID></ApplicationArea>"
        "<DataArea><Process/><ProductionPerformance><ProductionResponse>"
        f"<ProductionRequestID>{escape(spec.order_number)}</ProductionRequestID>{scope}"
        f"<EndTime>{escape(spec.end_time)}</EndTime>{segments}"
        "</ProductionResponse></ProductionPerformance></DataArea>"
        "</ProcessProductionPerformance>\n"
    )
    return text.encode("utf-8")
