"""PerformanceReport → process-order confirmations for SAP S/4HANA (contract ``sap/procordconf/1``).

One ``ConfirmationDocument`` per ``PhaseConfirmation`` of the report, in report order: the
phase's yield, scrap and final flag shaped as the entity ``ProcOrdConf2`` of the OData
service ``API_PROC_ORDER_CONFIRMATION_2_SRV`` (the successor of BAPI_PROCORDCONF_CREATE_TT),
in the service's OData V2 JSON forms, plus a ``MessageID`` and the ``Source`` it comes from.
The service publishes it to ``mesbridge.out`` with routing key ``sap.PROCORDCONF``; what
posts it to SAP classifies SAP's answer with ``transforms.sap_answers``.
docs/order-confirmations.md lists every field, its rule and what is unverified.

The confirmation carries no goods movements (``APIConfHasNoGoodsMovements`` true): the
report's consumption and yield go to SAP as MBGMCR03 goods movements
(``transforms.mbgmcr``), and posting them with the confirmation as well would post them twice.

Failure modes:

- ``MappingError`` (permanent) with one finding per problem, for all confirmations at once:
  an order number longer than 12, no plant on the report nor for its sender in the profile
  (never guessed), a plant longer than 4, a phase that is not an SAP phase number (at most 4
  characters), the same phase confirmed twice in one report, a quantity that is negative, has
  more than 3 decimals (never rounded) or more than 10 integer digits (SAP QUAN 13,3), yield
  and scrap in different units (never converted), a unit without SAP or ISO code of 1 to 3
  characters, a start after the end.
- ``ValueError`` for caller bugs: a naive ``event_time``, ``started_at`` or ``finished_at``.

Pure: no IO, no clock (the posting date comes from ``report.event_time``), no logging.
"""

from __future__ import annotations

import copy
import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Context, Decimal, localcontext
from typing import Any

from contracts.errors import Finding, MappingError
from transforms.mapping import MappingProfile
from transforms.model import PerformanceReport, PhaseConfirmation
from transforms.sap_values import sap_upper

__all__ = [
    "CONFIRMATION_ID_NAMESPACE",
    "CONTRACT",
    "ROUTING_KEY",
    "ConfirmationDocument",
    "order_confirmations",
]

CONTRACT = "sap/procordconf/1"
ROUTING_KEY = "sap.PROCORDCONF"
# Fixed forever: message ids must stay the same across releases for replay to deduplicate.
CONFIRMATION_ID_NAMESPACE = uuid.UUID("0b9d5c3e-4f61-5a8e-9c27-70726f636f6e")

_ORDER_LENGTH = 12  # AUFNR
_PHASE_LENGTH = 4  # VORNR
_PLANT_LENGTH = 4  # WERKS
_UNIT_LENGTH = 3  # MEINS / ISOCD_UNIT
_TEXT_LENGTH = 40  # LTXA1, the confirmation text
_TEXT_PREFIX = "mesbridge "
_MAX_QUANTITY = Decimal(10) ** 10  # QUAN 13,3: 10 digits before the point
_THREE_DECIMALS = Decimal("0.001")
_EPOCH = date(1970, 1, 1)
_MS_PER_DAY = 86_400_000


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfirmationDocument:
    """One confirmation of one phase, as published under contract ``sap/procordconf/1``."""

    message_id: uuid.UUID
    order_id: str  # ProcOrdConf2 OrderID: partition key for per-order ordering
    phase: str  # ProcOrdConf2 OrderOperation
    final: bool
    document: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        """The document as a JSON object (a copy: the document itself stays unchanged)."""
        return copy.deepcopy(self.document)

    def to_bytes(self) -> bytes:
        return json.dumps(self.document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


# problem(field, value found, what was expected): records one finding.
_Problem = Callable[[str, str | None, str], None]


def order_confirmations(
    report: PerformanceReport, profile: MappingProfile
) -> list[ConfirmationDocument]:
    """The confirmations ``report`` makes, one per phase confirmation; [] when it has none."""
    _require_aware("report.event_time", report.event_time)
    if not report.confirmations:
        return []
    findings: list[Finding] = []

    def report_problem(field_name: str, value: str | None, expected: str) -> None:
        findings.append(
            Finding(where=f"PerformanceReport {field_name}", value=value, expected=expected)
        )

    order_id = _order_id(report.order_number, report_problem)
    plant = _plant(report, profile, report_problem)
    posting_date = (
        report.event_time.astimezone(profile.plant_timezone(plant)).date() if plant else None
    )
    token = hashlib.sha256(report.idempotency_key.encode("utf-8")).hexdigest()[:16]
    text = _confirmation_text(report.document_id, token)

    seen: dict[str, int] = {}
    built: list[ConfirmationDocument] = []
    for index, confirmation in enumerate(report.confirmations, start=1):
        document = _document(
            report,
            confirmation,
            index=index,
            order_id=order_id,
            plant=plant,
            posting_date=posting_date,
            text=text,
            profile=profile,
            seen=seen,
            findings=findings,
        )
        if document is not None:
            built.append(document)
    if findings:
        raise MappingError(
            f"the confirmations of order {report.order_number} cannot be sent to SAP "
            f"({len(findings)} problem{'s' if len(findings) != 1 else ''})",
            message_ref=report.idempotency_key,
            findings=findings,
        )
    return built


def _document(
    report: PerformanceReport,
    confirmation: PhaseConfirmation,
    *,
    index: int,
    order_id: str | None,
    plant: str | None,
    posting_date: date | None,
    text: str,
    profile: MappingProfile,
    seen: dict[str, int],
    findings: list[Finding],
) -> ConfirmationDocument | None:
    _require_aware("started_at", confirmation.started_at)
    _require_aware("finished_at", confirmation.finished_at)
    where = f"PhaseConfirmation[{index}] (phase {confirmation.phase})"
    before = len(findings)

    def problem(field_name: str, value: str | None, expected: str) -> None:
        findings.append(
            Finding(
                where=f"{where} {field_name}",
                line=confirmation.source_line,
                value=value,
                expected=expected,
            )
        )

    phase = _phase(confirmation.phase, problem)
    if phase is not None:
        if phase in seen:
            problem(
                "OrderOperation",
                confirmation.phase,
                f"one confirmation per phase in one report; phase {phase} is already "
                f"confirmed by PhaseConfirmation[{seen[phase]}] (each becomes its own SAP "
                "confirmation with its own message id)",
            )
        else:
            seen[phase] = index
    quantities = _quantities(confirmation, problem)
    start, end = confirmation.started_at, confirmation.finished_at
    if start is not None and end is not None and start > end:
        problem(
            "ConfirmedExecutionEndDate",
            end.isoformat(),
            f"an end at or after the start {start.isoformat()}",
        )
    if len(findings) > before or phase is None or order_id is None or plant is None:
        return None
    assert posting_date is not None  # set whenever the plant is

    message_id = uuid.uuid5(CONFIRMATION_ID_NAMESPACE, f"{report.idempotency_key}#{phase}")
    zone = profile.plant_timezone(plant)
    body: dict[str, Any] = {
        "OrderID": order_id,
        "OrderOperation": phase,
        "Plant": plant,
        "PostingDate": _odata_date(posting_date),
        **quantities,
        "FinalConfirmationType": "X" if confirmation.final else "",
        "IsFinalConfirmation": confirmation.final,
    }
    if start is not None:
        local = start.astimezone(zone)
        body["ConfirmedExecutionStartDate"] = _odata_date(local.date())
        body["ConfirmedExecutionStartTime"] = _odata_time(local)
    if end is not None:
        local = end.astimezone(zone)
        body["ConfirmedExecutionEndDate"] = _odata_date(local.date())
        body["ConfirmedExecutionEndTime"] = _odata_time(local)
    body["ConfirmationText"] = text
    body["ExternalSystemConfirmation"] = str(message_id)
    body["APIConfHasNoGoodsMovements"] = True

    source: dict[str, Any] = {
        "Contract": report.contract,
        "Sender": report.sender,
        "DocumentID": report.document_id,
        "Phase": confirmation.phase,
    }
    if confirmation.source_line is not None:
        source["Line"] = confirmation.source_line
    if start is not None:
        source["ActualStart"] = start.isoformat()
    if end is not None:
        source["ActualEnd"] = end.isoformat()
    return ConfirmationDocument(
        message_id=message_id,
        order_id=order_id,
        phase=phase,
        final=confirmation.final,
        document={"MessageID": str(message_id), "Source": source, "ProcOrdConf2": body},
    )


# -- values -------------------------------------------------------------------------------


def _order_id(order_number: str, problem: _Problem) -> str | None:
    value = order_number.strip()
    if not value or len(value) > _ORDER_LENGTH or not value.isprintable() or " " in value:
        problem(
            "order_number (OrderID)",
            order_number,
            f"an order number of 1 to {_ORDER_LENGTH} characters without blanks (SAP AUFNR)",
        )
        return None
    return value.zfill(_ORDER_LENGTH) if value.isdigit() else sap_upper(value)


def _plant(report: PerformanceReport, profile: MappingProfile, problem: _Problem) -> str | None:
    plant = report.plant or profile.sender_plants.get(report.sender)
    if not plant:
        problem(
            "plant (Plant)",
            None,
            f"a plant on the report or a plant for sender {report.sender!r} in the mapping "
            "profile ([senders.<id>] plant); it is never guessed",
        )
        return None
    if len(plant) > _PLANT_LENGTH or not plant.isprintable() or " " in plant:
        problem("plant (Plant)", plant, f"at most {_PLANT_LENGTH} characters (SAP WERKS)")
        return None
    return plant


def _phase(text: str, problem: _Problem) -> str | None:
    value = text.strip()
    if value.isdigit() and value.isascii() and len(value) <= _PHASE_LENGTH:
        return value.zfill(_PHASE_LENGTH)
    if value and len(value) <= _PHASE_LENGTH and value.isalnum() and value.isascii():
        return value.upper()
    problem(
        "OrderOperation",
        text,
        f"an SAP phase number (VORNR) of 1 to {_PHASE_LENGTH} letters or digits, e.g. 0010",
    )
    return None


def _quantities(confirmation: PhaseConfirmation, problem: _Problem) -> dict[str, str]:
    written: dict[str, str] = {}
    reported = [
        (name, quantity)
        for name, quantity in (
            ("ConfirmationYieldQuantity", confirmation.yield_quantity),
            ("ConfirmationScrapQuantity", confirmation.scrap_quantity),
        )
        if quantity is not None
    ]
    for name, quantity in reported:
        text = _quantity(quantity.value, name, problem)
        if text is not None:
            written[name] = text
    if not reported:
        return written  # a completion-only confirmation: no quantity, no unit
    units = {quantity.unit for _, quantity in reported}
    if len(units) > 1:
        problem(
            "ConfirmationUnit",
            " and ".join(f"{name} in {quantity.unit.sap}" for name, quantity in reported),
            "yield and scrap in one unit (a confirmation has one ConfirmationUnit; "
            "quantities are never converted)",
        )
        return written
    (unit,) = units
    if not _is_unit_code(unit.sap):
        problem("ConfirmationUnit", unit.sap, "an SAP unit (T006) of 1 to 3 characters")
    if not _is_unit_code(unit.iso):
        problem(
            "ConfirmationUnitISOCode",
            unit.iso,
            f"an ISO code of 1 to 3 characters for unit {unit.sap} in the unit table",
        )
    written["ConfirmationUnit"] = unit.sap
    written["ConfirmationUnitISOCode"] = unit.iso
    return written


def _is_unit_code(code: str) -> bool:
    return 0 < len(code) <= _UNIT_LENGTH and code.isprintable() and " " not in code


def _quantity(value: Decimal, name: str, problem: _Problem) -> str | None:
    shown = str(value)
    if not value.is_finite() or value < 0:
        problem(name, shown, "a quantity of zero or more")
        return None
    if value >= _MAX_QUANTITY:
        problem(name, shown, "at most 10 digits before the decimal point (SAP QUAN 13,3)")
        return None
    with localcontext(Context(prec=34)):
        exact = value.quantize(_THREE_DECIMALS)
    if exact != value:
        problem(name, shown, "at most 3 decimals (SAP QUAN 13,3); the quantity is never rounded")
        return None
    return format(exact, "f")


def _confirmation_text(document_id: str, token: str) -> str:
    # Readable for the analyst in COR3/CORT: the source document id whole, else a stable token
    # (the full id is in Source.DocumentID and the message id in ExternalSystemConfirmation).
    readable = f"{_TEXT_PREFIX}{document_id}"
    if len(readable) <= _TEXT_LENGTH and document_id.isprintable():
        return readable
    return f"{_TEXT_PREFIX}{token}"


def _odata_date(day: date) -> str:
    # OData V2 Edm.DateTime of an ABAP date: midnight UTC of that day, in milliseconds.
    return f"/Date({(day - _EPOCH).days * _MS_PER_DAY})/"


def _odata_time(moment: datetime) -> str:
    # OData V2 Edm.Time; SAP keeps confirmation times to the second (sub-second digits are
    # dropped here and kept in Source.ActualStart / ActualEnd).
    return f"PT{moment.hour:02d}H{moment.minute:02d}M{moment.second:02d}S"


def _require_aware(name: str, moment: datetime | None) -> None:
    if moment is not None and moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
