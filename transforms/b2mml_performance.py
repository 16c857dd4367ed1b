"""B2MML performance messages from PAS-X → ``PerformanceReport`` (flow F3, reading side).

Reads ``ProcessProductionPerformance`` / ``SyncProductionPerformance`` (V0600) and
``ProcessOperationsPerformance`` / ``SyncOperationsPerformance`` (V0600 and V7,
OperationsType ``Production``) into one ``PerformanceReport``: who sent it (Sender
LogicalID), its document id (BODID), the order, when, and every MaterialActual as a
``MaterialActual`` with a role (consumed / produced / by-product), and every segment that
carries the SAP confirmation data items (``SAPYield``, ``SAPScrap``, ``SAPFinalConfirmation``
in ``ProductionData`` / ``SegmentData``) as a ``PhaseConfirmation``. docs/b2mml-performance.md
maps every element.

Pure: the parsed, contract-validated root element and the mapping profile come in; no IO,
no clock, no logging.

Failure modes: every value that cannot be mapped without guessing, truncating or dropping
data is a ``MappingError`` (permanent) whose findings name the element by XPath of local
names, its line, the value found and what was expected: missing BODID or sender, a time
without UTC offset, several orders in one message, an unknown MaterialUse, a batch longer
than 10, a sub-lot, an unknown unit, a quantity that is not a plain decimal, elements that
carry material data mesbridge does not read (AssemblyActual, the V04 *ConsumedActual /
*ProducedActual elements), V7 OperationsType other than Production; for confirmations: a
confirming segment without a phase, a negative or non-decimal confirmed quantity, a quantity
without unit, a final flag other than true/false or contradicted by the SegmentState, a
confirmation data item nested where it would not be read. A root element that
does not belong to ``contract`` is a ``MappingError`` too (a routing mistake).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from lxml import etree

from contracts.errors import Finding, MappingError
from contracts.xmlpath import element_path as _path
from contracts.xmlpath import source_line
from transforms.mapping import MappingProfile
from transforms.model import (
    MaterialActual,
    MaterialRole,
    PerformanceReport,
    PhaseConfirmation,
    Quantity,
)
from transforms.sap_values import FieldRef, sap_batch, sap_material, sap_order_number

__all__ = ["CONFIRMATION_DATA_IDS", "PROPERTY_IDS", "performance_report"]

NS_V0600 = "http://www.mesa.org/xml/B2MML-V0600"
NS_V7 = "http://www.mesa.org/xml/B2MML"

# The MaterialActualProperty IDs mesbridge reads: the same IDs its outbound schedule
# writes on MaterialRequirementProperty (docs/b2mml.md), plus FinalIssue.
PROPERTY_IDS = ("SAPReservation", "SAPReservationItem", "SAPStorageLocation", "FinalIssue")

# The segment data items (V0600 ProductionData, V0600/V7 SegmentData) that make a segment a
# phase confirmation (docs/b2mml-performance.md, "Phase confirmations").
CONFIRMATION_DATA_IDS = ("SAPYield", "SAPScrap", "SAPFinalConfirmation")

# SegmentState values of a segment the MES still runs: a final confirmation would close the
# phase in SAP while it is not finished (V0600 and V7 enumerations together).
_UNFINISHED_STATES = frozenset(
    {"Waiting", "Ready", "Running", "Holding", "Held", "Paused", "Suspended"}
)

_STORAGE_LOCATION_LENGTH = 4
_PLANT_LENGTH = 4
_RESERVATION_LENGTH = 10
_RESERVATION_ITEM_LENGTH = 4


@dataclass(frozen=True, slots=True)
class _Shape:
    """What differs between the three message families."""

    contract_type: str
    version: str
    noun: str
    response: str
    request_id: str
    child_segment: str
    uses: dict[tuple[str, str | None], MaterialRole]
    operations_type: str  # "" = no OperationsType; "required" (V7) or "optional" (V0600)
    segment_data: str  # the segment's data items: ProductionData (V0600 PP) / SegmentData
    segment_data_child: str  # their nested items: same name, V7 SegmentDataChild


_V0600_USES: dict[tuple[str, str | None], MaterialRole] = {
    ("Consumed", None): MaterialRole.CONSUMED,
    ("Produced", None): MaterialRole.PRODUCED,
    # What mesbridge's own V0600 schedule writes for by-products (docs/b2mml.md, decision 9).
    ("Other", "By-product Produced"): MaterialRole.BY_PRODUCT,
}
_V7_USES: dict[tuple[str, str | None], MaterialRole] = {
    ("Consumed", None): MaterialRole.CONSUMED,
    ("Material Consumed", None): MaterialRole.CONSUMED,
    ("Produced", None): MaterialRole.PRODUCED,
    ("Yield Produced", None): MaterialRole.PRODUCED,
    ("Material Produced", None): MaterialRole.PRODUCED,
    ("By-product Produced", None): MaterialRole.BY_PRODUCT,
    ("Co-product Produced", None): MaterialRole.BY_PRODUCT,
}

_SHAPES: dict[tuple[str, str], _Shape] = {}
for _verb in ("Process", "Sync"):
    _SHAPES[(NS_V0600, f"{_verb}ProductionPerformance")] = _Shape(
        "ProductionPerformance", "V0600", "ProductionPerformance", "ProductionResponse",
        "ProductionRequestID", "SegmentResponse", _V0600_USES, "",
        "ProductionData", "ProductionData",
    )  # fmt: skip
    _SHAPES[(NS_V0600, f"{_verb}OperationsPerformance")] = _Shape(
        "OperationsPerformance", "V0600", "OperationsPerformance", "OperationsResponse",
        "OperationsRequestID", "SegmentResponse", _V0600_USES, "optional",
        "SegmentData", "SegmentData",
    )  # fmt: skip
    _SHAPES[(NS_V7, f"{_verb}OperationsPerformance")] = _Shape(
        "OperationsPerformance", "V7", "OperationsPerformance", "OperationsResponse",
        "OperationsRequestID", "SegmentResponseChild", _V7_USES, "required",
        "SegmentData", "SegmentDataChild",
    )  # fmt: skip

# Elements that carry material quantities in a shape mesbridge does not map: ignoring them
# would silently lose a consumption or a yield, so their presence is refused.
_UNREAD_MATERIAL = ("MaterialProducedActual", "MaterialConsumedActual", "ConsumableActual")

# xsd:dateTime; the offset is optional in XSD and mandatory here.
_DATETIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?P<fraction>\.\d+)?(?P<offset>Z|[+-]\d{2}:\d{2})?$"
)
# A plain decimal: optional sign, digits, optional point; never an exponent or a comma.
_DECIMAL = re.compile(r"^(?P<sign>[+-])?(?P<digits>\d+(?:\.\d*)?|\.\d+)$")


def performance_report(
    root: etree._Element, contract: str, profile: MappingProfile
) -> PerformanceReport:
    """The report one performance message makes; ``contract`` is its contract key
    (``b2mml/ProductionPerformance/V0600``, ``b2mml/OperationsPerformance/V7``, ...)."""
    reader = _Reader(root, contract, profile)
    try:
        return reader.report()
    except MappingError as error:
        raise error.with_message_ref(reader.message_ref) from None


class _Reader:
    def __init__(self, root: etree._Element, contract: str, profile: MappingProfile) -> None:
        self.root = root
        self.contract = contract
        self.profile = profile
        qname = etree.QName(root)
        self.ns = qname.namespace or ""
        self.message_ref = f"B2MML {qname.localname}"
        shape = _SHAPES.get((self.ns, qname.localname))
        if shape is None or contract != f"b2mml/{shape.contract_type}/{shape.version}":
            raise MappingError(
                f"the message is not a {contract} performance message",
                message_ref=self.message_ref,
                findings=[
                    Finding(
                        where=_path(root),
                        line=source_line(root),
                        value=f"{{{self.ns}}}{qname.localname}",
                        expected=f"a performance message root of {contract}: "
                        + ", ".join(
                            f"{{{ns}}}{name}"
                            for (ns, name), s in _SHAPES.items()
                            if contract == f"b2mml/{s.contract_type}/{s.version}"
                        ),
                    )
                ],
            )
        self.shape = shape

    # -- navigation ---------------------------------------------------------------------

    def children(self, parent: etree._Element, name: str) -> list[etree._Element]:
        return parent.findall(f"{{{self.ns}}}{name}")

    def child(self, parent: etree._Element, name: str) -> etree._Element | None:
        """The one ``name`` child, or None; several are an error (which one would be meant?)."""
        found = self.children(parent, name)
        if len(found) > 1:
            raise _error(
                f"{name} appears {len(found)} times",
                found[1],
                _text(found[1]),
                f"at most one {name} in {etree.QName(parent).localname}",
            )
        return found[0] if found else None

    def text(self, parent: etree._Element, name: str) -> tuple[str, etree._Element] | None:
        element = self.child(parent, name)
        if element is None:
            return None
        value = _text(element).strip()
        return (value, element) if value else None

    def required_text(
        self, parent: etree._Element, name: str, why: str
    ) -> tuple[str, etree._Element]:
        found = self.text(parent, name)
        if found is None:
            raise _error(
                f"{name} is missing",
                parent,
                None,
                f"a non-empty {name} in {etree.QName(parent).localname} ({why})",
                where=f"{_path(parent)}/{name}",
            )
        return found

    # -- the report ---------------------------------------------------------------------

    def report(self) -> PerformanceReport:
        area = self.child(self.root, "ApplicationArea")
        if area is None:
            raise _error("ApplicationArea is missing", self.root, None, "an ApplicationArea")
        bodid, _ = self.required_text(
            area, "BODID", "the document id mesbridge deduplicates by; never made up"
        )
        self.message_ref = f"B2MML {etree.QName(self.root).localname} BODID {bodid}"
        sender_element = self.child(area, "Sender")
        if sender_element is None:
            raise _error(
                "Sender is missing",
                area,
                None,
                "Sender/LogicalID: the sending system, part of the idempotency key",
                where=f"{_path(area)}/Sender/LogicalID",
            )
        sender, _ = self.required_text(
            sender_element, "LogicalID", "the sending system, part of the idempotency key"
        )
        self.message_ref += f" from {sender}"

        data_area = self.child(self.root, "DataArea")
        if data_area is None:
            raise _error("DataArea is missing", self.root, None, "a DataArea")
        nouns = self.children(data_area, self.shape.noun)
        responses = [
            (noun, response)
            for noun in nouns
            for response in self.children(noun, self.shape.response)
        ]
        if not responses:
            raise _error(
                f"no {self.shape.response}",
                nouns[0] if nouns else data_area,
                None,
                f"one {self.shape.response} for the process order the message reports on",
                where=f"{_path(nouns[0] if nouns else data_area)}/{self.shape.response}",
            )

        order_number = self.order_number(responses)
        actuals: list[MaterialActual] = []
        confirmations: list[PhaseConfirmation] = []
        end_times: list[datetime] = []
        segment_ends: list[datetime] = []
        plants: dict[str, etree._Element] = {}  # each plant named, with where it first is
        for noun, response in responses:
            self.check_operations_type(response, noun)
            end = self.text(response, "EndTime")
            if end is not None:
                end_times.append(_datetime(*end))
            site = self.plant(response) or self.plant(noun)
            if site is not None:
                plants.setdefault(*site)
            for segment in self.children(response, "SegmentResponse"):
                self.segment(segment, actuals, confirmations, segment_ends, None)
        if len(plants) > 1:
            # One order is produced in one plant: posting some of it in another is a guess.
            raise MappingError(
                f"the message names {len(plants)} plants ({', '.join(plants)}) for order "
                f"{order_number}; one message reports on one order in one plant",
                findings=[
                    Finding(
                        where=_path(element),
                        line=source_line(element),
                        value=value,
                        expected="one plant (Site) for every response of the order",
                    )
                    for value, element in plants.items()
                ],
            )
        plant = next(iter(plants), None)

        if end_times:
            event_time = max(end_times)
        elif segment_ends:
            event_time = max(segment_ends)
        else:
            event_time = _datetime(
                *self.required_text(area, "CreationDateTime", "the time of the report")
            )
        return PerformanceReport(
            sender=sender,
            document_id=bodid,
            contract=self.contract,
            order_number=order_number,
            event_time=event_time,
            plant=plant,
            actuals=tuple(actuals),
            confirmations=tuple(confirmations),
        )

    def order_number(self, responses: list[tuple[etree._Element, etree._Element]]) -> str:
        """The one order all responses are about; two orders in one message are refused."""
        found: dict[str, etree._Element] = {}
        for _, response in responses:
            value, element = self.required_text(
                response, self.shape.request_id, "the SAP process order number (AUFNR)"
            )
            number = sap_order_number(value, FieldRef(_path(element), source_line(element)))
            found.setdefault(number, element)
        if len(found) > 1:
            raise MappingError(
                f"the message reports on {len(found)} process orders; one message may report "
                "on one order only (it becomes one goods movement document)",
                findings=[
                    Finding(
                        where=_path(element),
                        line=source_line(element),
                        value=_text(element),
                        expected=f"the same order as the first {self.shape.request_id}",
                    )
                    for element in found.values()
                ],
            )
        (number,) = found
        return number

    def check_operations_type(self, response: etree._Element, noun: etree._Element) -> None:
        if not self.shape.operations_type:
            return
        found = self.text(response, "OperationsType") or self.text(noun, "OperationsType")
        if found is None:
            if self.shape.operations_type == "required":
                raise _error(
                    "OperationsType is missing",
                    response,
                    None,
                    "OperationsType Production on the OperationsResponse or OperationsPerformance",
                    where=f"{_path(response)}/OperationsType",
                )
            return
        value, element = found
        if value != "Production":
            raise _error(
                f"OperationsType {value!r} is not Production",
                element,
                value,
                "Production (mesbridge posts production goods movements only)",
            )

    def plant(self, parent: etree._Element) -> tuple[str, etree._Element] | None:
        """The plant ``parent``'s HierarchyScope names (level Site), with its element."""
        scope = self.child(parent, "HierarchyScope")
        if scope is None:
            return None
        level = self.text(scope, "EquipmentLevel") or self.text(scope, "EquipmentElementLevel")
        if level is None or level[0] != "Site":
            return None
        found = self.text(scope, "EquipmentID")
        if found is None:
            return None
        value, element = found
        if len(value) > _PLANT_LENGTH:
            raise _error(
                f"plant {value!r} is {len(value)} characters",
                element,
                value,
                f"an SAP plant (WERKS) of at most {_PLANT_LENGTH} characters",
            )
        return value, element

    def segment(
        self,
        segment: etree._Element,
        actuals: list[MaterialActual],
        confirmations: list[PhaseConfirmation],
        ends: list[datetime],
        plant: str | None,
    ) -> None:
        """``plant``: the Site an enclosing segment names (a segment's own Site wins)."""
        for name in _UNREAD_MATERIAL:
            unread = self.children(segment, name)
            if unread:
                raise _error(
                    f"{name} is not read by mesbridge",
                    unread[0],
                    None,
                    "material quantities as MaterialActual with MaterialUse "
                    "(the V04-style element would otherwise be lost)",
                )
        segment_type = self.text(segment, "OperationsType")
        if segment_type is not None and segment_type[0] != "Production":
            raise _error(
                f"OperationsType {segment_type[0]!r} is not Production",
                segment_type[1],
                segment_type[0],
                "Production (mesbridge posts production goods movements only)",
            )
        end = self.text(segment, "ActualEndTime")
        if end is not None:
            ends.append(_datetime(*end))
        phase = self.phase(segment)
        site = self.plant(segment)
        plant = site[0] if site is not None else plant
        for actual in self.children(segment, "MaterialActual"):
            actuals.append(self.actual(actual, phase, plant))
        confirmation = self.confirmation(segment, phase)
        if confirmation is not None:
            confirmations.append(confirmation)
        for child in self.children(segment, self.shape.child_segment):
            self.segment(child, actuals, confirmations, ends, plant)

    def phase(self, segment: etree._Element) -> str | None:
        # The ID mesbridge's schedule gave the phase (VORNR) comes back as the response's
        # link to its requirement; ProcessSegmentID carries the control key (STEUS) there.
        names = ["ID", "ProcessSegmentID"]
        if self.shape.version == "V7":
            names[:0] = ["SegmentRequirementID", "OperationsSegmentID"]
        for name in names:
            elements = self.children(segment, name)
            if elements and _text(elements[0]).strip():
                return _text(elements[0]).strip()
        return None

    # -- phase confirmations ------------------------------------------------------------

    def confirmation(self, segment: etree._Element, phase: str | None) -> PhaseConfirmation | None:
        """The confirmation ``segment`` reports, or None when it carries no confirmation data."""
        data = self.confirmation_data(segment)
        if not data:
            return None
        if phase is None:
            first = next(iter(data.values()))[0]
            raise _error(
                "a phase confirmation without a phase",
                first,
                None,
                "the SAP phase number (VORNR) as the segment's ID"
                + (" or OperationsSegmentID" if self.shape.version == "V7" else "")
                + ": which phase is confirmed is never guessed",
                where=f"{_path(segment)}/ID",
            )
        final = data.get("SAPFinalConfirmation")
        is_final = _flag(
            None if final is None else self.required_text(final[1], "ValueString", "true or false"),
            name="SAPFinalConfirmation",
        )
        if is_final:
            self.check_finished(segment)
        start = self.text(segment, "ActualStartTime")
        end = self.text(segment, "ActualEndTime")
        return PhaseConfirmation(
            phase=phase,
            yield_quantity=self.confirmed_quantity(data.get("SAPYield"), "SAPYield"),
            scrap_quantity=self.confirmed_quantity(data.get("SAPScrap"), "SAPScrap"),
            final=is_final,
            started_at=None if start is None else _datetime(*start),
            finished_at=None if end is None else _datetime(*end),
            source_line=source_line(segment),
        )

    def confirmation_data(
        self, segment: etree._Element
    ) -> dict[str, tuple[etree._Element, etree._Element]]:
        """Confirmation data items of ``segment``: ``ID`` -> (the item, its one ``Value``)."""
        found: dict[str, tuple[etree._Element, etree._Element]] = {}
        for item in self.children(segment, self.shape.segment_data):
            self.refuse_nested_confirmation_data(item)
            ident = self.text(item, "ID")
            if ident is None or ident[0] not in CONFIRMATION_DATA_IDS:
                continue  # the MES's own data items: informational
            name, id_element = ident
            if name in found:
                raise _error(
                    f"{name} appears twice in one segment",
                    id_element,
                    name,
                    f"at most one {self.shape.segment_data} with ID {name} per segment "
                    "(which one would be confirmed is a guess)",
                )
            values = self.children(item, "Value")
            if len(values) != 1:
                raise _error(
                    f"{name} has {len(values)} Value elements",
                    item,
                    None,
                    f"exactly one Value in {self.shape.segment_data} {name}",
                )
            found[name] = (item, values[0])
        return found

    def refuse_nested_confirmation_data(self, item: etree._Element) -> None:
        for nested in item.iter(f"{{{self.ns}}}{self.shape.segment_data_child}"):
            if nested is item:
                continue
            ident = self.text(nested, "ID")
            if ident is not None and ident[0] in CONFIRMATION_DATA_IDS:
                raise _error(
                    f"{ident[0]} is nested in another data item",
                    ident[1],
                    ident[0],
                    f"{ident[0]} as a direct {self.shape.segment_data} of the SegmentResponse "
                    "(nested, it would not be read and the confirmation would be lost)",
                )

    def confirmed_quantity(
        self, found: tuple[etree._Element, etree._Element] | None, name: str
    ) -> Quantity | None:
        if found is None:
            return None
        _, value = found
        text, element = self.required_text(value, "ValueString", f"the {name} quantity")
        raw = _text(element)
        match = _DECIMAL.match(text)
        if match is None:
            raise _error(
                f"{name} is not a plain decimal",
                element,
                raw,
                "a decimal with '.' as separator and no exponent or thousands separator, "
                "e.g. 1000 or 12.500",
            )
        if match["sign"] == "-":
            raise _error(
                f"{name} is negative",
                element,
                raw,
                "a confirmed quantity of zero or more: a confirmation is taken back by "
                "cancelling it in SAP, never by a negative quantity",
            )
        unit_code, unit_element = self.required_text(
            value, "UnitOfMeasure", f"the unit the {name} quantity is in"
        )
        unit = self.profile.units.from_partner(
            "pasx", unit_code, where=_path(unit_element), line=source_line(unit_element)
        )
        return Quantity(value=Decimal(match["digits"]), unit=unit)

    def check_finished(self, segment: etree._Element) -> None:
        state = self.text(segment, "SegmentState")
        if state is not None and state[0] in _UNFINISHED_STATES:
            raise _error(
                f"SAPFinalConfirmation is true but SegmentState is {state[0]}",
                state[1],
                state[0],
                "a finished segment (SegmentState Completed, Aborted or Closed, or none) for a "
                "final confirmation: SAP would close a phase the MES still runs",
            )

    def actual(
        self, actual: etree._Element, phase: str | None, segment_plant: str | None
    ) -> MaterialActual:
        """One MaterialActual; its plant is the Site it names, else its segment's (the
        response's plant applies to the rest, ``complete_report``)."""
        line = source_line(actual)
        assembly = self.children(actual, "AssemblyActual")
        if assembly:
            raise _error(
                "AssemblyActual is not read by mesbridge",
                assembly[0],
                None,
                "flat MaterialActual elements (a nested assembly's quantities would be lost)",
            )
        sublot = self.text(actual, "MaterialSubLotID")
        if sublot is not None:
            raise _error(
                f"sub-lot {sublot[0]!r} cannot be posted",
                sublot[1],
                sublot[0],
                "no MaterialSubLotID: SAP goods movements know the batch (MaterialLotID) only, "
                "and posting the sub-lot's quantity to the whole batch would be a guess",
            )
        role = self.role(actual)
        material_text, material_element = self.required_text(
            actual, "MaterialDefinitionID", "the SAP material number"
        )
        material = sap_material(
            material_text,
            FieldRef(_path(material_element), source_line(material_element)),
            long_field=True,
        )
        lot = self.text(actual, "MaterialLotID")
        batch = (
            None if lot is None else sap_batch(lot[0], FieldRef(_path(lot[1]), source_line(lot[1])))
        )
        value, reversal, unit_code, unit_element = self.quantity(actual)
        unit = self.profile.units.from_partner(
            "pasx", unit_code, where=_path(unit_element), line=source_line(unit_element)
        )
        properties = self.properties(actual)
        storage = self.storage_location(actual, properties.get("SAPStorageLocation"))
        own_site = self.plant(actual)
        return MaterialActual(
            role=role,
            material=material,
            quantity=Quantity(value=value, unit=unit),
            batch=batch,
            storage_location=storage,
            plant=own_site[0] if own_site is not None else segment_plant,
            reservation=_numeric(
                properties.get("SAPReservation"), _RESERVATION_LENGTH, "SAPReservation"
            ),
            reservation_item=_numeric(
                properties.get("SAPReservationItem"), _RESERVATION_ITEM_LENGTH, "SAPReservationItem"
            ),
            phase=phase,
            reversal=reversal,
            final=_flag(properties.get("FinalIssue")),
            source_line=line,
        )

    def role(self, actual: etree._Element) -> MaterialRole:
        use = self.child(actual, "MaterialUse")
        known = ", ".join(
            value if other is None else f"{value} with OtherValue {other!r}"
            for value, other in self.shape.uses
        )
        if use is None:
            raise _error(
                "MaterialUse is missing",
                actual,
                None,
                f"a MaterialUse ({known}): without it consumption and yield cannot be told apart",
                where=f"{_path(actual)}/MaterialUse",
            )
        value = _text(use).strip()
        other = use.get("OtherValue")
        role = self.shape.uses.get((value, other.strip() if value == "Other" and other else None))
        if role is None:
            shown = value if value != "Other" else f"Other (OtherValue {other!r})"
            raise _error(
                f"MaterialUse {shown} cannot be mapped to a goods movement",
                use,
                shown,
                f"one of: {known}",
            )
        return role

    def quantity(self, actual: etree._Element) -> tuple[Decimal, bool, str, etree._Element]:
        quantities = self.children(actual, "Quantity")
        if len(quantities) != 1:
            raise _error(
                f"{len(quantities)} Quantity elements",
                quantities[1] if quantities else actual,
                None,
                "exactly one Quantity (which of several would be posted is a guess)",
                where=_path(quantities[1]) if quantities else f"{_path(actual)}/Quantity",
            )
        (quantity,) = quantities
        text, element = self.required_text(quantity, "QuantityString", "the quantity")
        raw = _text(element)
        match = _DECIMAL.match(text)
        if match is None:
            raise _error(
                "QuantityString is not a plain decimal",
                element,
                raw,
                "a decimal with '.' as separator and no exponent or thousands separator, "
                "e.g. 41.250 or -2.5",
            )
        magnitude = Decimal(match["digits"])
        reversal = match["sign"] == "-" and magnitude != 0
        unit_code, unit_element = self.required_text(
            quantity, "UnitOfMeasure", "the unit the quantity is in"
        )
        return magnitude, reversal, unit_code, unit_element

    def properties(self, actual: etree._Element) -> dict[str, tuple[str, etree._Element]]:
        found: dict[str, tuple[str, etree._Element]] = {}
        for prop in self.children(actual, "MaterialActualProperty"):
            ident = self.text(prop, "ID")
            if ident is None or ident[0] not in PROPERTY_IDS:
                continue  # the MES's own properties: informational, not posted
            name, id_element = ident
            if name in found:
                raise _error(
                    f"property {name} appears twice",
                    id_element,
                    name,
                    f"at most one MaterialActualProperty with ID {name}",
                )
            values = self.children(prop, "Value")
            if len(values) != 1:
                raise _error(
                    f"property {name} has {len(values)} Value elements",
                    prop,
                    None,
                    f"exactly one Value/ValueString in property {name}",
                )
            found[name] = self.required_text(values[0], "ValueString", f"the {name} value")
        return found

    def storage_location(
        self, actual: etree._Element, from_property: tuple[str, etree._Element] | None
    ) -> str | None:
        element = self.child(actual, "StorageLocation")
        found: tuple[str, etree._Element] | None = None
        if element is not None:
            if self.shape.version == "V7":
                # V7: a ResourceLocationType; only a flat location names an SAP LGORT.
                child = self.children(element, "LocationChild")
                if child:
                    raise _error(
                        "nested StorageLocation",
                        child[0],
                        None,
                        "a StorageLocation without LocationChild (one SAP storage location)",
                    )
                found = self.text(element, "Location")
            else:
                value = _text(element).strip()
                found = (value, element) if value else None
        if found is not None and from_property is not None and found[0] != from_property[0]:
            raise _error(
                "two different storage locations",
                from_property[1],
                from_property[0],
                f"the same storage location as StorageLocation {found[0]!r} (line "
                f"{source_line(found[1])})",
            )
        chosen = found or from_property
        if chosen is None:
            return None
        value, where = chosen
        if len(value) > _STORAGE_LOCATION_LENGTH:
            raise _error(
                f"storage location {value!r} is {len(value)} characters",
                where,
                value,
                f"an SAP storage location (LGORT) of at most {_STORAGE_LOCATION_LENGTH} characters",
            )
        return value


# -- values -------------------------------------------------------------------------------


def _datetime(value: str, element: etree._Element) -> datetime:
    match = _DATETIME.match(value)
    if match is None or match["offset"] is None:
        raise _error(
            f"{etree.QName(element).localname} has no UTC offset"
            if match is not None
            else f"{etree.QName(element).localname} is not a date and time",
            element,
            value,
            "an xsd:dateTime with its UTC offset, e.g. 2025-03-14T16:05:00+01:00 or ...Z "
            "(a time without offset is never guessed)",
        )
    fraction = match["fraction"] or ""
    if len(fraction) > 7:  # the point and up to 6 digits: datetime holds microseconds
        raise _error(
            f"{etree.QName(element).localname} is more precise than a microsecond",
            element,
            value,
            "at most 6 fractional digits of a second (never silently cut)",
        )
    offset = "+00:00" if match["offset"] == "Z" else match["offset"]
    try:
        return datetime.fromisoformat(match["base"] + fraction + offset)
    except ValueError as exc:
        raise _error(
            f"{etree.QName(element).localname} is not a real date and time",
            element,
            value,
            "a real calendar date and a time from 00:00:00 to 23:59:59",
        ) from exc


def _numeric(found: tuple[str, etree._Element] | None, length: int, name: str) -> str | None:
    if found is None:
        return None
    value, element = found
    if not value.isdigit() or not value.isascii() or len(value) > length:
        raise _error(
            f"property {name} value {value!r} is not an SAP number",
            element,
            value,
            f"digits only, at most {length} (SAP NUMC {length})",
        )
    return value.zfill(length)


def _flag(found: tuple[str, etree._Element] | None, *, name: str = "FinalIssue") -> bool:
    if found is None:
        return False
    value, element = found
    if value not in ("true", "false"):
        raise _error(
            f"{name} {value!r} is not true or false",
            element,
            value,
            "true or false",
        )
    return value == "true"


def _text(element: etree._Element) -> str:
    return element.text or ""


def _error(
    summary: str,
    element: etree._Element,
    value: str | None,
    expected: str,
    *,
    where: str | None = None,
) -> MappingError:
    return MappingError(
        summary,
        findings=[
            Finding(
                where=where or _path(element),
                line=source_line(element),
                value=value,
                expected=expected,
            )
        ],
    )
