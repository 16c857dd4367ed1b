"""SAP process order IDoc (LOIPRO01/02/03 and extensions such as ZLOIPRO01) → ``ProcessOrder``.

Input is an already guarded and parsed XML tree (``integration.intake``); each
``IDOC`` element gives one order. Fields SAP adds beyond the standard ones, and
customer segments, are ignored. Every problem in one IDoc is collected and
raised together as one ``MappingError`` that names the IDoc, each field, its
line and value, so an analyst fixes everything in one round.

Two readers, one result. ``_FastReader`` reads an IDoc the way almost every IDoc
is: complete and valid. It keeps no element references for error messages, reads
each segment's fields in one pass and converts each distinct text once per
process (bounded memos: orders repeat their materials, units and dates); at the
first thing it would have to report (a missing, empty or unconvertible field) it
gives up, and ``_IdocReader``, which collects every finding with its path and
line, reads the IDoc again. For a valid IDoc both give the same ``ProcessOrder``
(tests compare them), the fast one at about a third of the cost.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache, partial
from typing import TypeVar
from zoneinfo import ZoneInfo

from lxml import etree

from contracts.errors import Finding, MappingError
from contracts.xmlpath import source_line
from transforms.mapping import MappingProfile
from transforms.model import (
    Component,
    ComponentRole,
    IdocControl,
    OrderItem,
    Phase,
    ProcessOrder,
    Quantity,
    RecipeReference,
    Unit,
    build_component,
    build_idoc_control,
    build_phase,
    build_process_order,
)
from transforms.sap_values import (
    FieldRef,
    sap_batch,
    sap_date,
    sap_decimal,
    sap_local_datetime,
    sap_material,
    sap_order_number,
    sap_time,
)
from transforms.units import UnitTable

__all__ = ["parse_idoc_control", "parse_loipro"]

T = TypeVar("T")

# Movement types that tell a component's direction when SHKZG is absent.
_CONSUMING_MOVEMENTS = frozenset({"261", "262"})
_RECEIVING_MOVEMENTS = frozenset({"101", "102", "531", "532"})
_TRUE_FLAGS = frozenset({"X", "1"})


def parse_loipro(root: etree._Element, profile: MappingProfile) -> list[ProcessOrder]:
    """Every process order in the document, in document order."""
    idocs = [child for child in root if child.tag == "IDOC"]
    if not idocs:
        raise MappingError(
            "the document holds no IDOC element",
            findings=[
                Finding(where=f"/{root.tag}", line=source_line(root), expected="one or more IDOC")
            ],
        )
    orders = [_read_order(idoc, profile) for idoc in idocs]
    _refuse_repeated_idocs(orders, idocs)
    return orders


def _refuse_repeated_idocs(orders: list[ProcessOrder], idocs: list[etree._Element]) -> None:
    """One IDoc twice in one message would take effect twice: the sender's DOCNUM names an
    IDoc, and each IDoc's output is derived from it (DESIGN §4)."""
    first: dict[str, int] = {}
    for position, order in enumerate(orders, start=1):
        docnum = order.control.docnum
        if docnum in first:
            field = idocs[position - 1].find("EDI_DC40/DOCNUM")
            where = field if field is not None else idocs[position - 1]
            raise MappingError(
                f"IDoc {docnum} is in the message twice (IDOC {first[docnum]} and {position})",
                findings=[
                    Finding(
                        where=where.getroottree().getpath(where),
                        line=source_line(where),
                        value=docnum,
                        expected="a DOCNUM no other IDOC of the message has",
                    )
                ],
            )
        first[docnum] = position


def _read_order(idoc: etree._Element, profile: MappingProfile) -> ProcessOrder:
    try:
        return _FastReader(profile).order(idoc)
    except _Fallback:
        return _IdocReader(idoc, profile).order()


def parse_idoc_control(idoc: etree._Element) -> IdocControl:
    """The control record of one IDOC element."""
    reader = _IdocReader(idoc, profile=None)
    control = reader.control()
    reader.raise_if_failed()
    return control


class _Segment:
    """An IDoc segment with its fields indexed once by name (SAP sends each field at most once)."""

    __slots__ = ("element", "fields")

    def __init__(self, element: etree._Element) -> None:
        self.element = element
        fields: dict[str, etree._Element] = {}
        for child in element:
            tag = child.tag
            if isinstance(tag, str) and tag not in fields:
                fields[tag] = child
        self.fields = fields

    def children(self, name: str) -> list[_Segment]:
        return [_Segment(child) for child in self.element.iterchildren(name)]


class _IdocReader:
    """Reads one IDOC element, collecting findings instead of stopping at the first."""

    def __init__(self, idoc: etree._Element, profile: MappingProfile | None) -> None:
        self._idoc = idoc
        self._tree = idoc.getroottree()
        self._profile = profile
        self._findings: list[Finding] = []
        self._message_ref = "IDoc"

    # -- plumbing ---------------------------------------------------------------

    def _ref(self, element: etree._Element) -> FieldRef:
        # The XPath is computed only if the value turns out to be wrong.
        return FieldRef(partial(self._tree.getpath, element), source_line(element))

    def _missing(self, parent: _Segment | etree._Element, name: str, expected: str) -> None:
        element = parent.element if isinstance(parent, _Segment) else parent
        self._findings.append(
            Finding(
                where=f"{self._tree.getpath(element)}/{name}",
                line=source_line(element),
                expected=expected,
            )
        )

    def _attempt(self, convert: Callable[[], T]) -> T | None:
        try:
            return convert()
        except MappingError as exc:
            self._findings.extend(exc.findings)
            return None

    def _field(self, segment: _Segment, name: str) -> etree._Element | None:
        element = segment.fields.get(name)
        if element is None or not (element.text or "").strip():
            return None
        return element

    def _text(self, segment: _Segment, name: str) -> str | None:
        element = segment.fields.get(name)
        if element is None:
            return None
        return (element.text or "").strip() or None

    def _required_text(self, segment: _Segment, name: str, expected: str) -> str | None:
        value = self._text(segment, name)
        if value is None:
            self._missing(segment, name, f"{expected} (required)")
        return value

    def _convert(
        self, segment: _Segment, name: str, convert: Callable[[str, FieldRef], T]
    ) -> T | None:
        element = segment.fields.get(name)
        if element is None:
            return None
        text = element.text
        if not text or text.isspace():
            return None
        try:
            return convert(text, self._ref(element))
        except MappingError as exc:
            self._findings.extend(exc.findings)
            return None

    def raise_if_failed(self) -> None:
        if self._findings:
            count = len(self._findings)
            raise MappingError(
                f"{count} field{'s' if count > 1 else ''} cannot be mapped",
                message_ref=self._message_ref,
                findings=self._findings,
            )

    # -- segments ---------------------------------------------------------------

    def control(self) -> IdocControl:
        record_element = self._idoc.find("EDI_DC40")
        if record_element is None:
            self._missing(self._idoc, "EDI_DC40", "the control record EDI_DC40")
            self.raise_if_failed()
            raise AssertionError("unreachable")
        record = _Segment(record_element)
        docnum = self._required_text(record, "DOCNUM", "the IDoc number DOCNUM") or ""
        self._message_ref = f"IDoc {docnum or '(no DOCNUM)'}"
        created_day = self._convert(record, "CREDAT", sap_date)
        created_time = self._convert(record, "CRETIM", sap_time)
        created_local = None
        if created_day is not None:
            created_local = datetime.combine(created_day, time(0)) + (created_time or timedelta(0))
        return IdocControl(
            docnum=docnum,
            idoctyp=self._required_text(record, "IDOCTYP", "the basic type IDOCTYP") or "",
            mestyp=self._required_text(record, "MESTYP", "the message type MESTYP") or "",
            cimtyp=self._text(record, "CIMTYP"),
            client=self._text(record, "MANDT"),
            release=self._text(record, "DOCREL"),
            direction=self._text(record, "DIRECT"),
            sender_port=self._text(record, "SNDPOR"),
            sender_partner_type=self._text(record, "SNDPRT"),
            sender_partner=self._required_text(record, "SNDPRN", "the sender partner SNDPRN") or "",
            receiver_port=self._text(record, "RCVPOR"),
            receiver_partner_type=self._text(record, "RCVPRT"),
            receiver_partner=self._text(record, "RCVPRN"),
            created_local=created_local,
            serialization=self._text(record, "SERIAL"),
        )

    def order(self) -> ProcessOrder:
        control = self.control()
        header_element = self._idoc.find("E1AFKOL")
        if header_element is None:
            self._missing(self._idoc, "E1AFKOL", "the order header segment E1AFKOL")
            self.raise_if_failed()
            raise AssertionError("unreachable")
        header = _Segment(header_element)
        assert self._profile is not None
        plant = self._required_text(header, "WERKS", "the plant WERKS") or ""
        zone = self._profile.plant_timezone(plant)
        order_number = self._convert(header, "AUFNR", sap_order_number)
        if order_number is None and self._field(header, "AUFNR") is None:
            self._missing(header, "AUFNR", "the order number AUFNR (required)")
        material = self._material(header)
        total = self._quantity(header, "GAMNG", "GMEIN", required=True)
        scrap = self._quantity(header, "GASMG", "GMEIN", required=False)
        items = tuple(self._items(header))
        phases = tuple(self._phases(header, plant, zone))
        order = ProcessOrder(
            control=control,
            order_number=order_number or "",
            order_category=self._text(header, "AUTYP"),
            order_type=self._text(header, "AUART"),
            plant=plant,
            material=material or "",
            total=total or _placeholder_quantity(),
            scrap=scrap,
            basic_start=self._datetime(header, "GSTRP", "GSUZP", zone, end_of_day=False),
            basic_finish=self._datetime(header, "GLTRP", "GLUZP", zone, end_of_day=True),
            scheduled_start=self._datetime(header, "GSTRS", "GSUZS", zone, end_of_day=False),
            scheduled_finish=self._datetime(header, "GLTRS", "GLUZS", zone, end_of_day=True),
            release_date=self._convert(header, "FTRMS", sap_date),
            reservation=self._text(header, "RSNUM"),
            recipe=self._recipe(header),
            timezone=zone.key,
            status=self._status(header, "E1JSTKL"),
            items=items,
            phases=phases,
        )
        self.raise_if_failed()
        return order

    def _material(self, segment: _Segment) -> str | None:
        if self._field(segment, "MATNR_LONG") is not None:
            return self._convert(
                segment, "MATNR_LONG", lambda text, ref: sap_material(text, ref, long_field=True)
            )
        if self._field(segment, "MATNR") is None:
            self._missing(segment, "MATNR", "the material number MATNR or MATNR_LONG (required)")
            return None
        return self._convert(segment, "MATNR", sap_material)

    def _quantity(
        self,
        segment: _Segment,
        value_field: str,
        unit_field: str,
        *,
        required: bool,
        allow_negative: bool = False,
    ) -> Quantity | None:
        value_element = self._field(segment, value_field)
        if value_element is None:
            if required:
                self._missing(segment, value_field, "a quantity (required)")
            return None
        value = self._attempt(
            lambda: sap_decimal(
                value_element.text or "", self._ref(value_element), allow_negative=allow_negative
            )
        )
        unit_element = self._field(segment, unit_field)
        if unit_element is None:
            self._missing(segment, unit_field, f"the unit of {value_field} (required)")
            return None
        assert self._profile is not None
        units = self._profile.units
        unit = self._attempt(
            lambda: units.from_sap(
                unit_element.text or "",
                where=self._tree.getpath(unit_element),
                line=source_line(unit_element),
            )
        )
        if value is None or unit is None:
            return None
        return Quantity(value=value, unit=unit)

    def _datetime(
        self,
        segment: _Segment,
        date_field: str,
        time_field: str,
        zone: ZoneInfo,
        *,
        end_of_day: bool,
    ) -> datetime | None:
        day: date | None = self._convert(segment, date_field, sap_date)
        clock = self._convert(segment, time_field, sap_time)
        return sap_local_datetime(day, clock, zone, end_of_day=end_of_day)

    def _recipe(self, header: _Segment) -> RecipeReference | None:
        parts = (
            self._text(header, "PLNTY"),
            self._text(header, "PLNNR"),
            self._text(header, "PLNAL"),
        )
        if not any(parts):
            return None
        return RecipeReference(task_list_type=parts[0], task_list=parts[1], counter=parts[2])

    def _status(self, segment: _Segment, status_segment: str) -> tuple[str, ...]:
        return tuple(
            text
            for status in segment.children(status_segment)
            if (text := self._text(status, "STAT")) is not None
        )

    def _items(self, header: _Segment) -> Iterator[OrderItem]:
        for item in header.children("E1AFPOL"):
            material = self._material(item)
            quantity = self._quantity(item, "PSMNG", "MEINS", required=True)
            batch = self._convert(item, "CHARG", sap_batch)
            if material is None or quantity is None:
                continue
            yield OrderItem(
                position=self._text(item, "POSNR"),
                material=material,
                quantity=quantity,
                batch=batch,
                storage_location=self._text(item, "LGORT"),
            )

    def _phases(self, header: _Segment, plant: str, zone: ZoneInfo) -> Iterator[Phase]:
        for sequence in header.children("E1AFFLL"):
            sequence_number = self._text(sequence, "PLNFL")
            for operation in sequence.children("E1AFVOL"):
                number = self._required_text(operation, "VORNR", "the phase number VORNR")
                components = tuple(self._components(operation, plant))
                if number is None:
                    continue
                yield Phase(
                    sequence=sequence_number,
                    number=number,
                    description=self._text(operation, "LTXA1"),
                    work_center=self._text(operation, "ARBPL"),
                    control_key=self._text(operation, "STEUS"),
                    quantity=self._quantity(operation, "MGVRG", "MEINH", required=False),
                    earliest_start=self._datetime(
                        operation, "FSAVD", "FSAVZ", zone, end_of_day=False
                    ),
                    earliest_finish=self._datetime(
                        operation, "FSEDD", "FSEDZ", zone, end_of_day=True
                    ),
                    status=self._status(operation, "E1JSTVL"),
                    components=components,
                )

    def _components(self, operation: _Segment, plant: str) -> Iterator[Component]:
        for reservation in operation.children("E1RESBL"):
            material = self._material(reservation)
            quantity = self._quantity(
                reservation, "BDMNG", "MEINS", required=True, allow_negative=True
            )
            role = self._role(reservation)
            if material is None or quantity is None or role is None:
                continue
            if quantity.value < 0:
                # SAP shows by-products with a negative requirement; a negative issue is an error.
                if role is not ComponentRole.BY_PRODUCT:
                    element = self._field(reservation, "BDMNG")
                    assert element is not None
                    self._findings.append(
                        Finding(
                            where=self._tree.getpath(element),
                            line=source_line(element),
                            value=element.text,
                            expected="a quantity of zero or more for a component issued (SHKZG H)",
                        )
                    )
                    continue
                quantity = Quantity(value=-quantity.value, unit=quantity.unit)
            yield Component(
                reservation=self._text(reservation, "RSNUM"),
                reservation_item=self._text(reservation, "RSPOS"),
                item_number=self._text(reservation, "POSNR"),
                material=material,
                plant=self._text(reservation, "WERKS") or plant,
                storage_location=self._text(reservation, "LGORT"),
                batch=self._convert(reservation, "CHARG", sap_batch),
                required=quantity,
                requirement_date=self._convert(reservation, "BDTER", sap_date),
                movement_type=self._text(reservation, "BWART"),
                role=role,
                deleted=self._flag(reservation, "XLOEK"),
                final_issue=self._flag(reservation, "KZEAR"),
                backflush=self._flag(reservation, "RGEKZ"),
            )

    def _role(self, reservation: _Segment) -> ComponentRole | None:
        indicator = self._field(reservation, "SHKZG")
        if indicator is not None:
            code = (indicator.text or "").strip().upper()
            if code == "H":
                return ComponentRole.CONSUMED
            if code == "S":
                return ComponentRole.BY_PRODUCT
            self._findings.append(
                Finding(
                    where=self._tree.getpath(indicator),
                    line=source_line(indicator),
                    value=indicator.text,
                    expected="H (issue) or S (receipt of a co-/by-product)",
                )
            )
            return None
        movement = self._text(reservation, "BWART")
        if movement in _CONSUMING_MOVEMENTS:
            return ComponentRole.CONSUMED
        if movement in _RECEIVING_MOVEMENTS:
            return ComponentRole.BY_PRODUCT
        self._missing(
            reservation,
            "SHKZG",
            "the debit/credit indicator SHKZG (H or S), or a movement type BWART that implies it",
        )
        return None

    def _flag(self, segment: _Segment, name: str) -> bool:
        return (self._text(segment, name) or "").upper() in _TRUE_FLAGS


def _placeholder_quantity() -> Quantity:
    # Only built when a finding was recorded; raise_if_failed() raises before it escapes.
    return Quantity(value=Decimal(0), unit=Unit(sap="", iso=""))


# -- the fast path ----------------------------------------------------------------------------


class _Fallback(Exception):
    """Raised by ``_FastReader`` at anything ``_IdocReader`` would report."""


# The converters take a reference only to describe a failure, and every failure here is a
# fallback: one reference without a place serves all fields.
_NOWHERE = FieldRef("")

# Field name → its text stripped, None where it is blank: ``_IdocReader._text`` of every
# field at once, and the gate of ``_IdocReader._convert``. The converters strip their text
# themselves, so the stripped text converts as the raw one does.
_Fields = dict[object, str | None]


def _fields(segment: etree._Element) -> _Fields:
    """A segment's children by name: its fields, and its child segments (blank, so None).

    Where a name repeats, the first counts, as in ``_Segment``: read last to first, the
    first one is written last.
    """
    return {child.tag: (child.text or "").strip() or None for child in reversed(segment)}


def _fields_and_segments(
    segment: etree._Element, child_segment: str
) -> tuple[_Fields, list[etree._Element]]:
    """``_fields`` of ``segment`` without its ``child_segment`` children, and those children.

    One pass over the children: the child segments are at hand as they go by, where
    looking for them again (``iterchildren``) would cost as much as reading the fields.
    """
    fields: _Fields = {}
    children: list[etree._Element] = []
    for child in reversed(segment):
        tag = child.tag
        if tag == child_segment:
            children.append(child)
        else:
            fields[tag] = (child.text or "").strip() or None
    children.reverse()
    return fields, children


def _required(fields: _Fields, name: str) -> str:
    value = fields.get(name)
    if value is None:
        raise _Fallback
    return value


def _converted(text: str, convert: Callable[[str, FieldRef], T]) -> T:
    try:
        return convert(text, _NOWHERE)
    except MappingError:
        raise _Fallback from None


# Conversions of field texts, remembered by the worker process from one IDoc to the next:
# orders repeat their materials, units, quantities and dates. Each result depends on the
# arguments alone (the unit table and the zone among them) and is immutable. Bounded (the
# least recently used go first, well under 1 MB a memo), so a worker's memory stays flat
# however many orders it reads; a text that fails to convert raises (the IDoc goes to
# ``_IdocReader``) and is not remembered.
_REMEMBERED = 2048


@lru_cache(maxsize=_REMEMBERED)
def _date(text: str | None) -> date | None:
    return None if text is None else _converted(text, sap_date)


@lru_cache(maxsize=_REMEMBERED)
def _time(text: str | None) -> timedelta | None:
    return None if text is None else _converted(text, sap_time)


@lru_cache(maxsize=_REMEMBERED)
def _local_datetime(
    day_text: str | None, clock_text: str | None, zone: ZoneInfo, end_of_day: bool
) -> datetime | None:
    # Both converted, as _IdocReader does: a bad time is a finding even without a date.
    day, clock = _date(day_text), _time(clock_text)
    return sap_local_datetime(day, clock, zone, end_of_day=end_of_day)


@lru_cache(maxsize=_REMEMBERED)
def _material_number(text: str) -> str:
    return _converted(text, sap_material)


@lru_cache(maxsize=_REMEMBERED)
def _long_material_number(text: str) -> str:
    try:
        return sap_material(text, _NOWHERE, long_field=True)
    except MappingError:
        raise _Fallback from None


@lru_cache(maxsize=_REMEMBERED)
def _batch(text: str | None) -> str | None:
    return None if text is None else _converted(text, sap_batch)


@lru_cache(maxsize=_REMEMBERED)
def _quantity_of(
    value_text: str, unit_text: str, allow_negative: bool, units: UnitTable
) -> Quantity:
    try:
        value = sap_decimal(value_text, _NOWHERE, allow_negative=allow_negative)
        unit = units.from_sap(unit_text, where="")
    except MappingError:
        raise _Fallback from None
    return Quantity(value=value, unit=unit)


class _FastReader:
    """Reads one valid IDoc; raises ``_Fallback`` where ``_IdocReader`` would record a finding.

    Mirrors ``_IdocReader`` step by step, on the texts ``_fields`` gives.
    """

    def __init__(self, profile: MappingProfile) -> None:
        self._profile = profile
        self._units = profile.units

    def order(self, idoc: etree._Element) -> ProcessOrder:
        # find() as _IdocReader uses it, without its path parser: the first child so named.
        record_element = next(idoc.iterchildren("EDI_DC40"), None)
        header_element = next(idoc.iterchildren("E1AFKOL"), None)
        if record_element is None or header_element is None:
            raise _Fallback
        control = _control(_fields(record_element))
        header = _fields(header_element)
        get = header.get
        plant = _required(header, "WERKS")
        zone = self._profile.plant_timezone(plant)
        order_number = _converted(_required(header, "AUFNR"), sap_order_number)
        total = self._quantity(header, "GAMNG", "GMEIN")
        if total is None:
            raise _Fallback
        return build_process_order(
            control=control,
            order_number=order_number,
            order_category=get("AUTYP"),
            order_type=get("AUART"),
            plant=plant,
            material=_material(header),
            total=total,
            scrap=self._quantity(header, "GASMG", "GMEIN"),
            basic_start=_local_datetime(get("GSTRP"), get("GSUZP"), zone, False),
            basic_finish=_local_datetime(get("GLTRP"), get("GLUZP"), zone, True),
            scheduled_start=_local_datetime(get("GSTRS"), get("GSUZS"), zone, False),
            scheduled_finish=_local_datetime(get("GLTRS"), get("GLUZS"), zone, True),
            release_date=_date(get("FTRMS")),
            reservation=get("RSNUM"),
            recipe=_recipe(header),
            timezone=zone.key,
            status=_status(header_element, "E1JSTKL") if "E1JSTKL" in header else (),
            items=tuple([self._item(item) for item in header_element.iterchildren("E1AFPOL")]),
            phases=tuple(self._phases(header_element, plant, zone)),
        )

    def _quantity(
        self, fields: _Fields, value_field: str, unit_field: str, *, allow_negative: bool = False
    ) -> Quantity | None:
        """None without a value (the caller decides whether it is required)."""
        value_text = fields.get(value_field)
        if value_text is None:
            return None
        unit_text = fields.get(unit_field)
        if unit_text is None:
            raise _Fallback
        return _quantity_of(value_text, unit_text, allow_negative, self._units)

    def _item(self, element: etree._Element) -> OrderItem:
        item = _fields(element)
        quantity = self._quantity(item, "PSMNG", "MEINS")
        if quantity is None:
            raise _Fallback
        return OrderItem(
            position=item.get("POSNR"),
            material=_material(item),
            quantity=quantity,
            batch=_batch(item.get("CHARG")),
            storage_location=item.get("LGORT"),
        )

    def _phases(self, header: etree._Element, plant: str, zone: ZoneInfo) -> Iterator[Phase]:
        for sequence_element in header.iterchildren("E1AFFLL"):
            sequence_fields, operations = _fields_and_segments(sequence_element, "E1AFVOL")
            sequence = sequence_fields.get("PLNFL")
            for element in operations:
                operation, reservations = _fields_and_segments(element, "E1RESBL")
                get = operation.get
                yield build_phase(
                    sequence=sequence,
                    number=_required(operation, "VORNR"),
                    description=get("LTXA1"),
                    work_center=get("ARBPL"),
                    control_key=get("STEUS"),
                    quantity=self._quantity(operation, "MGVRG", "MEINH"),
                    earliest_start=_local_datetime(get("FSAVD"), get("FSAVZ"), zone, False),
                    earliest_finish=_local_datetime(get("FSEDD"), get("FSEDZ"), zone, True),
                    # Status segments are among the keys of the phase's fields.
                    status=_status(element, "E1JSTVL") if "E1JSTVL" in operation else (),
                    components=tuple(
                        [self._component(reservation, plant) for reservation in reservations]
                    ),
                )

    def _component(self, element: etree._Element, plant: str) -> Component:
        reservation = _fields(element)
        get = reservation.get
        quantity = self._quantity(reservation, "BDMNG", "MEINS", allow_negative=True)
        if quantity is None:
            raise _Fallback
        movement = get("BWART")
        role = _role(get("SHKZG"), movement)
        if quantity.value < 0:
            if role is not ComponentRole.BY_PRODUCT:
                raise _Fallback
            quantity = Quantity(value=-quantity.value, unit=quantity.unit)
        return build_component(
            reservation=get("RSNUM"),
            reservation_item=get("RSPOS"),
            item_number=get("POSNR"),
            material=_material(reservation),
            plant=get("WERKS") or plant,
            storage_location=get("LGORT"),
            batch=_batch(get("CHARG")),
            required=quantity,
            requirement_date=_date(get("BDTER")),
            movement_type=movement,
            role=role,
            deleted=_flag(get("XLOEK")),
            final_issue=_flag(get("KZEAR")),
            backflush=_flag(get("RGEKZ")),
        )


def _control(record: _Fields) -> IdocControl:
    get = record.get
    created_day, created_time = _date(get("CREDAT")), _time(get("CRETIM"))
    created_local = None
    if created_day is not None:
        created_local = datetime.combine(created_day, time(0)) + (created_time or timedelta(0))
    return build_idoc_control(
        docnum=_required(record, "DOCNUM"),
        idoctyp=_required(record, "IDOCTYP"),
        mestyp=_required(record, "MESTYP"),
        cimtyp=get("CIMTYP"),
        client=get("MANDT"),
        release=get("DOCREL"),
        direction=get("DIRECT"),
        sender_port=get("SNDPOR"),
        sender_partner_type=get("SNDPRT"),
        sender_partner=_required(record, "SNDPRN"),
        receiver_port=get("RCVPOR"),
        receiver_partner_type=get("RCVPRT"),
        receiver_partner=get("RCVPRN"),
        created_local=created_local,
        serialization=get("SERIAL"),
    )


def _material(fields: _Fields) -> str:
    long_text = fields.get("MATNR_LONG")
    if long_text is not None:
        return _long_material_number(long_text)
    return _material_number(_required(fields, "MATNR"))


def _role(indicator: str | None, movement: str | None) -> ComponentRole:
    if indicator is not None:
        code = indicator.upper()
        if code == "H":
            return ComponentRole.CONSUMED
        if code == "S":
            return ComponentRole.BY_PRODUCT
        raise _Fallback
    if movement in _CONSUMING_MOVEMENTS:
        return ComponentRole.CONSUMED
    if movement in _RECEIVING_MOVEMENTS:
        return ComponentRole.BY_PRODUCT
    raise _Fallback


def _flag(text: str | None) -> bool:
    return text is not None and text.upper() in _TRUE_FLAGS


def _recipe(header: _Fields) -> RecipeReference | None:
    parts = (header.get("PLNTY"), header.get("PLNNR"), header.get("PLNAL"))
    if not any(parts):
        return None
    return RecipeReference(task_list_type=parts[0], task_list=parts[1], counter=parts[2])


def _status(segment: etree._Element, status_segment: str) -> tuple[str, ...]:
    return tuple(
        text
        for status in segment.iterchildren(status_segment)
        if (text := _fields(status).get("STAT")) is not None
    )
