"""Build LOIPRO IDoc XML for tests: small, explicit, and able to vary what DOMAIN.md says varies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from lxml import etree


@dataclass
class ComponentSpec:
    material: str = "300010"
    quantity: str = "40.000"
    unit: str = "KG"
    batch: str | None = "X25J0001"
    shkzg: str | None = "H"
    movement: str | None = "261"
    deleted: bool = False
    reservation_item: str = "0001"
    storage_location: str | None = None


@dataclass
class PhaseSpec:
    number: str = "0010"
    text: str | None = "Weigh"
    work_center: str | None = "WD-01"
    control_key: str | None = "PI01"
    start: str | None = "20261201"
    finish: str | None = "20261202"
    components: list[ComponentSpec] = field(default_factory=list)


@dataclass
class OrderSpec:
    docnum: str = "0000000000815001"
    order_number: str = "600001"
    material: str = "200001"
    quantity: str = "41.250"
    unit: str = "KG"
    plant: str = "1100"
    batch: str | None = "P25J0001"
    sender: str = "ERPCLNT200"
    idoctyp: str = "LOIPRO01"
    cimtyp: str | None = None
    start: str = "20261201"
    finish: str = "20261203"
    phases: list[PhaseSpec] = field(
        default_factory=lambda: [PhaseSpec(components=[ComponentSpec()])]
    )
    extra_header_fields: dict[str, str] = field(default_factory=dict)


def _add(parent: etree._Element, name: str, text: str | None) -> None:
    if text is not None:
        etree.SubElement(parent, name).text = text


def _segment(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, name, SEGMENT="1")


def build_loipro(orders: Sequence[OrderSpec], *, root_name: str | None = None) -> bytes:
    first = orders[0]
    root = etree.Element(root_name or first.cimtyp or first.idoctyp)
    for spec in orders:
        idoc = etree.SubElement(root, "IDOC", BEGIN="1")
        control = _segment(idoc, "EDI_DC40")
        _add(control, "TABNAM", "EDI_DC40")
        _add(control, "MANDT", "200")
        _add(control, "DOCNUM", spec.docnum)
        _add(control, "DIRECT", "1")
        _add(control, "IDOCTYP", spec.idoctyp)
        _add(control, "CIMTYP", spec.cimtyp)
        _add(control, "MESTYP", "LOIPRO")
        _add(control, "SNDPOR", "SAPS4P")
        _add(control, "SNDPRT", "LS")
        _add(control, "SNDPRN", spec.sender)
        _add(control, "CREDAT", "20261130")
        _add(control, "CRETIM", "061502")
        header = _segment(idoc, "E1AFKOL")
        _add(header, "AUFNR", spec.order_number)
        _add(header, "AUTYP", "40")
        _add(header, "AUART", "PI01")
        _add(header, "WERKS", spec.plant)
        _add(header, "MATNR", spec.material)
        _add(header, "GAMNG", spec.quantity)
        _add(header, "GMEIN", spec.unit)
        _add(header, "GSTRP", spec.start)
        _add(header, "GLTRP", spec.finish)
        for name, value in spec.extra_header_fields.items():
            _add(header, name, value)
        item = _segment(header, "E1AFPOL")
        _add(item, "POSNR", "0001")
        _add(item, "MATNR", spec.material)
        _add(item, "PSMNG", spec.quantity)
        _add(item, "MEINS", spec.unit)
        _add(item, "CHARG", spec.batch)
        sequence = _segment(header, "E1AFFLL")
        _add(sequence, "APLZL", "00000001")
        _add(sequence, "PLNFL", "0")
        for phase in spec.phases:
            operation = _segment(sequence, "E1AFVOL")
            _add(operation, "VORNR", phase.number)
            _add(operation, "LTXA1", phase.text)
            _add(operation, "ARBPL", phase.work_center)
            _add(operation, "STEUS", phase.control_key)
            _add(operation, "FSAVD", phase.start)
            _add(operation, "FSEDD", phase.finish)
            for component in phase.components:
                reservation = _segment(operation, "E1RESBL")
                _add(reservation, "RSNUM", "0000765432")
                _add(reservation, "RSPOS", component.reservation_item)
                _add(reservation, "MATNR", component.material)
                _add(reservation, "WERKS", spec.plant)
                _add(reservation, "LGORT", component.storage_location)
                _add(reservation, "CHARG", component.batch)
                _add(reservation, "BDMNG", component.quantity)
                _add(reservation, "MEINS", component.unit)
                _add(reservation, "BWART", component.movement)
                _add(reservation, "SHKZG", component.shkzg)
                _add(reservation, "XLOEK", "X" if component.deleted else None)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
