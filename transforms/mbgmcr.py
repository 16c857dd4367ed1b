"""PerformanceReport → SAP goods-movement IDocs (MBGMCR03, posted by BAPI_GOODSMVT_CREATE).

One MBGMCR IDoc makes one SAP material document, and a material document has one
GM_CODE: a report's actuals are split into one IDoc per GM_CODE, in ascending GM_CODE
order, items in report order. Every value is checked against its SAP field and
written whole or not at all (docs/goods-movements.md lists each rule):

- ``MappingError`` (permanent) with one finding per problem, for all items at once:
  batch longer than 10, quantity not positive or with more than 3 decimals or 13
  integer digits, no plant on the item or the report, a unit without an ISO code,
  a material longer than 40, items of one document whose plants fall on different
  posting dates, an order number longer than 12.
- ``ValueError`` for caller bugs: a naive ``created_at`` / ``event_time`` or a
  ``docnum_base`` outside 0..10^14-1.

Pure: the clock (``created_at``), the IDoc number (``docnum_base``) and the sender
come in as arguments; nothing here reads settings or does IO.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Context, Decimal, localcontext
from zoneinfo import ZoneInfo

from lxml import etree

from contracts.errors import ConfigurationError, Finding, MappingError
from transforms.mapping import MappingProfile
from transforms.model import MaterialActual, MaterialRole, PerformanceReport
from transforms.movements import DEFAULT_MOVEMENT_RULES, MovementRules
from transforms.sap_values import sap_upper

__all__ = ["MESSAGE_ID_NAMESPACE", "GoodsMovementIdoc", "IdocSender", "goods_movement_idocs"]

# Fixed forever: message ids must stay the same across releases for replay to deduplicate.
MESSAGE_ID_NAMESPACE = uuid.UUID("6f1b6f0e-2d0b-5c55-9a43-6d6573627267")

_IDOCTYP = "MBGMCR03"
_MESTYP = "MBGMCR"
_DOCNUM_BASE_LIMIT = 10**14  # 14 digits + the 2-digit GM_CODE = DOCNUM's 16
_MAX_INTEGER = Decimal(10) ** 13
_THREE_DECIMALS = Decimal("0.001")
_HEADER_PREFIX = "mesbridge "
_HEADER_TXT_LENGTH = 25


@dataclass(frozen=True, slots=True, kw_only=True)
class IdocSender:
    """Who mesbridge is towards SAP (EDI_DC40 sender and receiver) and its clock's zone."""

    port: str
    partner_type: str
    partner: str
    receiver_port: str
    receiver_partner_type: str
    receiver_partner: str
    timezone: ZoneInfo
    client: str | None = None

    def __post_init__(self) -> None:
        limits = {
            "port": (self.port, 10),
            "partner_type": (self.partner_type, 2),
            "partner": (self.partner, 10),
            "receiver_port": (self.receiver_port, 10),
            "receiver_partner_type": (self.receiver_partner_type, 2),
            "receiver_partner": (self.receiver_partner, 10),
            "client": (self.client or "000", 3),
        }
        for name, (value, limit) in limits.items():
            if not value or len(value) > limit:
                raise ConfigurationError(
                    f"IDoc sender: {name} {value!r} must be 1 to {limit} characters"
                )


@dataclass(frozen=True, slots=True)
class GoodsMovementIdoc:
    """One MBGMCR03 document (root ``MBGMCR03`` with one ``IDOC``): one SAP material document."""

    gm_code: str
    docnum: str
    message_id: uuid.UUID
    reference: str  # REF_DOC_NO
    element: etree._Element

    def to_bytes(self) -> bytes:
        return etree.tostring(
            self.element, xml_declaration=True, encoding="UTF-8", pretty_print=True
        )


# problem(field, value found, what was expected): records one finding for the current item.
_Problem = Callable[[str, str | None, str], None]


@dataclass(frozen=True, slots=True)
class _Item:
    actual: MaterialActual
    fields: tuple[tuple[str, str], ...]
    plant: str


def goods_movement_idocs(
    report: PerformanceReport,
    profile: MappingProfile,
    *,
    sender: IdocSender,
    created_at: datetime,
    docnum_base: int,
    rules: MovementRules = DEFAULT_MOVEMENT_RULES,
) -> list[GoodsMovementIdoc]:
    """The IDocs that post ``report`` in SAP, one per GM_CODE; [] for a report without actuals.

    DOCNUM is ``docnum_base`` (14 digits) followed by the GM_CODE: the caller gives each
    report its own base (e.g. its outbox row id), so a replay rebuilds the same numbers.
    """
    if created_at.utcoffset() is None or report.event_time.utcoffset() is None:
        raise ValueError("created_at and report.event_time must be timezone-aware")
    if not 0 <= docnum_base < _DOCNUM_BASE_LIMIT:
        raise ValueError(f"docnum_base {docnum_base} must be 0 to {_DOCNUM_BASE_LIMIT - 1}")

    findings: list[Finding] = []
    order_id = _order_id(report.order_number, findings)
    parts: dict[str, list[_Item]] = {}
    for index, actual in enumerate(report.actuals, start=1):
        movement = rules.movement(actual.role, reversal=actual.reversal)
        item = _item(
            report,
            actual,
            index=index,
            order_id=order_id,
            movement_type=movement.movement_type,
            movement_indicator=movement.movement_indicator,
            findings=findings,
        )
        if item is not None:
            parts.setdefault(movement.gm_code, []).append(item)

    posting_dates = {
        gm_code: _posting_date(report, items, profile, findings) for gm_code, items in parts.items()
    }
    if findings:
        raise MappingError(
            f"performance report for order {report.order_number} cannot be posted to SAP "
            f"({len(findings)} problem{'s' if len(findings) != 1 else ''})",
            message_ref=report.idempotency_key,
            findings=findings,
        )
    token = hashlib.sha256(report.idempotency_key.encode("utf-8")).hexdigest().upper()[:14]
    return [
        _idoc(
            report,
            sender,
            created_at=created_at,
            docnum_base=docnum_base,
            gm_code=gm_code,
            token=token,
            posting_date=posting_dates[gm_code],
            items=parts[gm_code],
        )
        for gm_code in sorted(parts)
    ]


def _idoc(
    report: PerformanceReport,
    sender: IdocSender,
    *,
    created_at: datetime,
    docnum_base: int,
    gm_code: str,
    token: str,
    posting_date: date,
    items: list[_Item],
) -> GoodsMovementIdoc:
    docnum = f"{docnum_base:014d}{gm_code}"
    reference = token + gm_code
    created = created_at.astimezone(sender.timezone)

    root = etree.Element(_IDOCTYP)
    idoc = etree.SubElement(root, "IDOC", BEGIN="1")
    control = _segment(idoc, "EDI_DC40")
    _fields(
        control,
        ("TABNAM", "EDI_DC40"),
        *((("MANDT", sender.client),) if sender.client else ()),
        ("DOCNUM", docnum),
        ("DIRECT", "2"),
        ("IDOCTYP", _IDOCTYP),
        ("MESTYP", _MESTYP),
        ("SNDPOR", sender.port),
        ("SNDPRT", sender.partner_type),
        ("SNDPRN", sender.partner),
        ("RCVPOR", sender.receiver_port),
        ("RCVPRT", sender.receiver_partner_type),
        ("RCVPRN", sender.receiver_partner),
        ("CREDAT", created.strftime("%Y%m%d")),
        ("CRETIM", created.strftime("%H%M%S")),
    )
    body = _segment(idoc, "E1MBGMCR")
    day = posting_date.strftime("%Y%m%d")
    _fields(
        _segment(body, "E1BP2017_GM_HEAD_01"),
        ("PSTNG_DATE", day),
        ("DOC_DATE", day),
        ("REF_DOC_NO", reference),
        ("HEADER_TXT", _header_text(report.document_id, token, gm_code)),
    )
    _fields(_segment(body, "E1BP2017_GM_CODE"), ("GM_CODE", gm_code))
    for item in items:
        _fields(_segment(body, "E1BP2017_GM_ITEM_CREATE"), *item.fields)
    message_id = uuid.uuid5(MESSAGE_ID_NAMESPACE, f"{report.idempotency_key}#{gm_code}")
    return GoodsMovementIdoc(gm_code, docnum, message_id, reference, root)


def _header_text(document_id: str, token: str, gm_code: str) -> str:
    # Readable for the analyst in MIGO/MB03; the source id whole, or the REF_DOC_NO prefix.
    readable = f"{_HEADER_PREFIX}{document_id} {gm_code}"
    if len(readable) <= _HEADER_TXT_LENGTH and document_id.isprintable():
        return readable
    return f"{_HEADER_PREFIX}{token[:12]} {gm_code}"


def _segment(parent: etree._Element, name: str) -> etree._Element:
    return etree.SubElement(parent, name, SEGMENT="1")


def _fields(segment: etree._Element, *pairs: tuple[str, str]) -> None:
    for name, value in pairs:
        etree.SubElement(segment, name).text = value


def _item(
    report: PerformanceReport,
    actual: MaterialActual,
    *,
    index: int,
    order_id: str | None,
    movement_type: str,
    movement_indicator: str,
    findings: list[Finding],
) -> _Item | None:
    where = f"MaterialActual[{index}] ({actual.role.value} {actual.material})"
    line = actual.source_line
    before = len(findings)

    def problem(field: str, value: str | None, expected: str) -> None:
        findings.append(
            Finding(where=f"{where} {field}", line=line, value=value, expected=expected)
        )

    material_field, material = _material(actual.material, problem)
    plant = actual.plant or report.plant
    if not plant:
        problem(
            "PLANT",
            None,
            "a plant: in the message, from the process order SAP sent for the order, or "
            "[senders.<sender>] plant in the mapping profile (it is never guessed)",
        )
    elif len(plant) > 4:
        problem("PLANT", plant, "at most 4 characters (SAP WERKS)")
    storage = actual.storage_location
    if storage is not None and len(storage) > 4:
        problem("STGE_LOC", storage, "at most 4 characters (SAP LGORT)")
    batch = sap_upper(actual.batch.strip()) if actual.batch and actual.batch.strip() else None
    if batch is not None and len(batch) > 10:
        problem(
            "BATCH",
            actual.batch,
            f"at most 10 characters (SAP batch CHARG); batch "
            f"{actual.batch!r} is {len(batch)} characters and is never truncated",
        )
    quantity = _entry_quantity(actual.quantity.value, problem)
    unit = actual.quantity.unit
    if not unit.sap or len(unit.sap) > 3:
        problem("ENTRY_UOM", unit.sap, "an SAP unit of 1 to 3 characters")
    if not unit.iso or len(unit.iso) > 3:
        problem(
            "ENTRY_UOM_ISO",
            unit.iso,
            f"an ISO code (1 to 3 characters) for unit {unit.sap} in the unit table",
        )
    reservation = _numc(actual.reservation, 10, "RESERV_NO", problem)
    reservation_item = _numc(actual.reservation_item, 4, "RES_ITEM", problem)
    if len(findings) > before or order_id is None or material is None or not plant:
        return None

    fields: list[tuple[str, str]] = []
    if material_field == "MATERIAL":
        fields.append(("MATERIAL", material))
    fields.append(("PLANT", plant))
    if storage:
        fields.append(("STGE_LOC", storage))
    if batch:
        fields.append(("BATCH", batch))
    fields += [
        ("MOVE_TYPE", movement_type),
        ("ENTRY_QNT", quantity),
        ("ENTRY_UOM", unit.sap),
        ("ENTRY_UOM_ISO", unit.iso),
    ]
    # "final" goes only where SAP has a field for it; see docs/goods-movements.md.
    if actual.final and not actual.reversal and actual.role is MaterialRole.PRODUCED:
        fields.append(("NO_MORE_GR", "X"))
    fields.append(("ORDERID", order_id))
    if reservation:
        fields.append(("RESERV_NO", reservation))
    if reservation_item:
        fields.append(("RES_ITEM", reservation_item))
    if actual.final and not actual.reversal and actual.role is MaterialRole.CONSUMED:
        fields.append(("WITHDRAWN", "X"))
    if movement_indicator:
        fields.append(("MVT_IND", movement_indicator))
    if material_field == "MATERIAL_LONG":
        fields.append(("MATERIAL_LONG", material))
    return _Item(actual=actual, fields=tuple(fields), plant=plant)


def _material(text: str, problem: _Problem) -> tuple[str, str | None]:
    value = text.strip()
    if not value:
        problem("MATERIAL", text, "a material number")
        return "MATERIAL", None
    if value.isdigit() and len(value) <= 18:
        return "MATERIAL", value.zfill(18)
    if len(value) <= 18:
        return "MATERIAL", sap_upper(value)
    if len(value) <= 40:
        return "MATERIAL_LONG", sap_upper(value)
    problem("MATERIAL_LONG", text, f"at most 40 characters (SAP MATERIAL_LONG), not {len(value)}")
    return "MATERIAL_LONG", None


def _entry_quantity(value: Decimal, problem: _Problem) -> str:
    shown = str(value)
    if not value.is_finite() or value <= 0:
        problem("ENTRY_QNT", shown, "a positive quantity (the direction is in the movement type)")
        return ""
    if value >= _MAX_INTEGER:
        problem("ENTRY_QNT", shown, "at most 13 digits before the decimal point (SAP QUAN 13,3)")
        return ""
    with localcontext(Context(prec=34)):
        exact = value.quantize(_THREE_DECIMALS)
        if exact != value:
            problem(
                "ENTRY_QNT",
                shown,
                "at most 3 decimals (SAP QUAN 13,3); the quantity is never rounded",
            )
            return ""
    return format(exact, "f")


def _numc(text: str | None, length: int, field: str, problem: _Problem) -> str | None:
    if text is None or not text.strip():
        return None
    value = text.strip()
    if not value.isdigit() or len(value) > length:
        problem(field, text, f"up to {length} digits (SAP NUMC {length})")
        return None
    return value.zfill(length)


def _order_id(order_number: str, findings: list[Finding]) -> str | None:
    value = order_number.strip()
    if not value or len(value) > 12:
        findings.append(
            Finding(
                where="PerformanceReport order_number (ORDERID)",
                value=order_number,
                expected="an order number of 1 to 12 characters (SAP AUFNR)",
            )
        )
        return None
    return value.zfill(12) if value.isdigit() else sap_upper(value)


def _posting_date(
    report: PerformanceReport,
    items: list[_Item],
    profile: MappingProfile,
    findings: list[Finding],
) -> date:
    # One material document has one posting date; plants in different zones may disagree.
    by_plant = {
        item.plant: report.event_time.astimezone(profile.plant_timezone(item.plant)).date()
        for item in items
    }
    days = sorted(set(by_plant.values()))
    if len(days) > 1:
        findings.append(
            Finding(
                where="PerformanceReport event_time (PSTNG_DATE)",
                value=report.event_time.isoformat(),
                expected="one posting date for all plants of one material document; "
                + ", ".join(f"plant {p} gives {d:%Y%m%d}" for p, d in sorted(by_plant.items())),
            )
        )
    return days[0]
