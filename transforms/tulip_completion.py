"""Tulip completion events → ``PerformanceReport`` (flow F4, reading side).

A Tulip app reports, through an HTTP connector function, that a phase of an SAP process
order is done or that material was posted for it (contract ``tulip/completion/1``,
docs/tulip-events.md). This module reads one such event, already parsed from JSON and
valid under its contract, into the canonical ``PerformanceReport``:

- ``yield`` → a ``MaterialActual`` PRODUCED (``final`` on it when the event is final);
  ``consumed[]`` → CONSUMED (``final_issue`` → final); ``by_products[]`` → BY_PRODUCT;
  ``reversal`` on the event or on a line → ``reversal`` on the actual;
- ``phase`` → one ``PhaseConfirmation`` (yield, scrap, final, started/finished at), except
  in a reversal event, which confirms nothing;
- sender ``"tulip"`` (fixed, :data:`SENDER`), document id = ``event_id``, so the
  idempotency key is ``tulip:tulip:<event_id>``; the station is not part of the key, as a
  retried event must stay the same event whichever station or connector host resends it;
- event time = ``occurred_at`` with its UTC offset.

Pure: the event, its contract key and the mapping profile come in; no IO, no clock, no
logging. Values are normalised as everywhere (docs/normalisation.md): order and numeric
material numbers zero-padded, batches in upper case, quantities as the exact ``Decimal``
of their text, units through the profile's ``tulip`` unit codes.

Failure modes: everything that cannot be mapped without guessing, truncating or dropping
data is collected, all at once, into one ``MappingError`` (permanent) whose findings name
the field by JSON pointer (``/consumed/2/unit``), the value and what was expected: a
contract this module does not read, a missing or mistyped field, a time without UTC
offset, a quantity that is zero, not a plain decimal or beyond SAP's 13 digits and 3
decimals, an unknown unit, a material, batch, plant, storage location or phase too long
for SAP, a yield, scrap or ``final`` without a phase, scrap or ``final`` in a reversal
event, a line reversed inside a reversal event, a returned line marked final issue, an
event that reports nothing.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from contracts.errors import Finding, MappingError
from transforms.mapping import MappingProfile
from transforms.model import (
    MaterialActual,
    MaterialRole,
    PerformanceReport,
    PhaseConfirmation,
    Quantity,
)
from transforms.sap_values import FieldRef, sap_batch, sap_material, sap_order_number

__all__ = ["CONTRACT_VERSIONS", "SENDER", "completion_report"]

# The sender of every Tulip event (PerformanceReport.sender): one Tulip instance per
# installation; its event ids are unique within it.
SENDER = "tulip"
# Versions of tulip/completion this module reads.
CONTRACT_VERSIONS = frozenset({"1"})

_CONTRACT_PREFIX = "tulip/completion/"
_EVENT = "completion"
_UNIT_PARTNER = "tulip"
_SAP_CODE_LENGTH = 4  # WERKS, LGORT, VORNR
_MAX_INTEGER_DIGITS = 13  # SAP QUAN 13,3
_MAX_DECIMALS = 3
_DATETIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?P<fraction>\.\d{1,6})?"
    r"(?P<offset>Z|[+-]\d{2}:\d{2})?$"
)
_EVENT_ID = re.compile(r"^[!-~]{1,128}$")
_DECIMAL = re.compile(r"^(?P<integer>\d+)(?:\.(?P<fraction>\d+))?$")
_SUPPORTED = ", ".join(sorted(_CONTRACT_PREFIX + version for version in CONTRACT_VERSIONS))


def completion_report(
    event: Mapping[str, object], contract: str, profile: MappingProfile
) -> PerformanceReport:
    """The report one completion event makes; ``contract`` is its key (``tulip/completion/1``)."""
    reader = _Reader(profile)
    report = reader.report(event, contract)
    if reader.findings or report is None:
        count = len(reader.findings)
        raise MappingError(
            f"the completion event cannot be mapped ({count} problem{'s' if count != 1 else ''})",
            message_ref=reader.message_ref,
            findings=reader.findings,
        )
    return report


def _show(value: object) -> str:
    """A value as the analyst should see it: text as is, everything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, Decimal):
        return str(value)
    return json.dumps(value, default=str, ensure_ascii=False)


class _Reader:
    def __init__(self, profile: MappingProfile) -> None:
        self.profile = profile
        self.findings: list[Finding] = []
        self.message_ref = "Tulip completion event"

    def problem(self, where: str, value: object, expected: str) -> None:
        self.findings.append(
            Finding(where=where, value=None if value is None else _show(value), expected=expected)
        )

    def absorb(self, error: MappingError) -> None:
        self.findings.extend(error.findings)

    # -- the report ---------------------------------------------------------------------

    def report(self, event: Mapping[str, object], contract: str) -> PerformanceReport | None:
        if not isinstance(event, Mapping):
            self.problem("/", event, "a JSON object (one completion event)")
            return None
        version = contract.removeprefix(_CONTRACT_PREFIX)
        if not contract.startswith(_CONTRACT_PREFIX) or version not in CONTRACT_VERSIONS:
            self.problem(
                "/", contract, f"a completion event contract mesbridge reads: {_SUPPORTED}"
            )
            return None
        self.constant(event, "event", _EVENT)
        self.constant(event, "version", version)

        event_id = self.event_id(event)
        occurred_at = self.moment(event, "occurred_at", required=True)
        started_at = self.moment(event, "started_at", required=False)
        if occurred_at is not None and started_at is not None and started_at > occurred_at:
            self.problem(
                "/started_at",
                event["started_at"],
                f"a start not after occurred_at ({_show(event['occurred_at'])})",
            )
        self.text(event, "/", "station", "the Tulip station that reported")
        self.text(event, "/", "operator", "the Tulip user who did the work")
        order_number = self.order_number(event)
        plant = self.code(event, "/", "plant", "SAP plant (WERKS)")
        phase = self.code(event, "/", "phase", "SAP phase (VORNR)")
        final = self.flag(event, "/", "final", required=True)
        reversal = self.flag(event, "/", "reversal", required=False)

        actuals: list[MaterialActual] = []
        yield_quantity: Quantity | None = None
        produced = self.line(event.get("yield"), "/yield", MaterialRole.PRODUCED, phase, reversal)
        if produced is not None:
            yield_quantity = produced.quantity
            # The last goods receipt of the order when the phase is finally confirmed.
            actuals.append(dataclasses.replace(produced, final=final and not reversal))
        scrap_quantity = self.scrap(event.get("scrap"))
        for name, role in (("consumed", MaterialRole.CONSUMED), ("by_products", None)):
            for index, line in self.lines(event, name):
                actual = self.line(
                    line,
                    f"/{name}/{index}",
                    role or MaterialRole.BY_PRODUCT,
                    phase,
                    reversal,
                )
                if actual is not None:
                    actuals.append(actual)

        self.check_event_rules(event, phase=phase, final=final, reversal=reversal)
        confirmations: tuple[PhaseConfirmation, ...] = ()
        if phase is not None and not reversal:
            confirmations = (
                PhaseConfirmation(
                    phase=phase,
                    yield_quantity=yield_quantity,
                    scrap_quantity=scrap_quantity,
                    final=final,
                    started_at=started_at,
                    finished_at=occurred_at,
                ),
            )
        if self.findings or event_id is None or occurred_at is None or order_number is None:
            return None
        return PerformanceReport(
            sender=SENDER,
            document_id=event_id,
            contract=contract,
            order_number=order_number,
            event_time=occurred_at,
            plant=plant,
            actuals=tuple(actuals),
            confirmations=confirmations,
        )

    def check_event_rules(
        self, event: Mapping[str, object], *, phase: str | None, final: bool, reversal: bool
    ) -> None:
        """What single fields cannot say: which combinations mean something in SAP."""
        has_yield = event.get("yield") is not None
        has_scrap = event.get("scrap") is not None
        if reversal:
            if has_scrap:
                self.problem(
                    "/scrap",
                    event["scrap"],
                    "no scrap in a reversal event: a confirmation is taken back in SAP "
                    "(cancel the confirmation), not by a completion event",
                )
            if final:
                self.problem(
                    "/final",
                    True,
                    "false in a reversal event: it takes back goods movements and confirms nothing",
                )
        elif phase is None:
            for name, present in (("yield", has_yield), ("scrap", has_scrap), ("final", final)):
                if present:
                    self.problem(
                        "/phase",
                        None,
                        f"the SAP phase (VORNR) the {name} is confirmed for: yield, scrap and "
                        "final are confirmed per phase, and the phase is never guessed",
                    )
                    break
        consumed = event.get("consumed")
        by_products = event.get("by_products")
        if not (
            has_yield
            or has_scrap
            or (isinstance(consumed, list) and consumed)
            or (isinstance(by_products, list) and by_products)
            or (phase is not None and not reversal)
        ):
            self.problem(
                "/",
                None,
                "something to report: a yield, scrap, consumed or by_products lines, or a "
                "phase to confirm",
            )

    # -- fields ---------------------------------------------------------------------------

    def constant(self, event: Mapping[str, object], name: str, wanted: str) -> None:
        found = event.get(name)
        if found != wanted or not isinstance(found, str):
            self.problem(
                f"/{name}", found, f"{json.dumps(wanted)} (the contract the event is read as)"
            )

    def event_id(self, event: Mapping[str, object]) -> str | None:
        value = event.get("event_id")
        if not isinstance(value, str) or _EVENT_ID.match(value) is None:
            self.problem(
                "/event_id",
                value,
                "the event's unique id: 1 to 128 printable ASCII characters without blanks "
                "(it is the idempotency key and the AMQP message id, taken exactly as sent)",
            )
            return None
        self.message_ref = f"Tulip completion {value}"
        return value

    def text(
        self,
        obj: Mapping[str, object],
        base: str,
        name: str,
        what: str,
        *,
        required: bool = True,
    ) -> str | None:
        where = _pointer(base, name)
        value = obj.get(name)
        if value is None:
            if required:
                self.problem(where, None, f"{what}, which is missing")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(where, value, f"a non-empty JSON string: {what}")
            return None
        return value.strip()

    def code(self, obj: Mapping[str, object], base: str, name: str, what: str) -> str | None:
        value = self.text(obj, base, name, what, required=False)
        if value is not None and (len(value) > _SAP_CODE_LENGTH or not value.isprintable()):
            self.problem(
                _pointer(base, name),
                obj[name],
                f"{what}: at most {_SAP_CODE_LENGTH} characters (never truncated)",
            )
            return None
        return value

    def flag(self, obj: Mapping[str, object], base: str, name: str, *, required: bool) -> bool:
        value = obj.get(name)
        if value is None and not required:
            return False
        if not isinstance(value, bool):
            self.problem(_pointer(base, name), value, "true or false (a JSON boolean)")
            return False
        return value

    def moment(self, event: Mapping[str, object], name: str, *, required: bool) -> datetime | None:
        where = f"/{name}"
        value = event.get(name)
        if value is None:
            if required:
                self.problem(where, None, "the date and time of the work, which is missing")
            return None
        example = "e.g. 2026-12-02T14:05:00+01:00 or 2026-12-02T13:05:00.000Z"
        match = _DATETIME.match(value) if isinstance(value, str) else None
        if match is None:
            self.problem(where, value, f"an ISO 8601 date and time with its UTC offset, {example}")
            return None
        if match["offset"] is None:
            self.problem(
                where,
                value,
                f"a UTC offset (Z or +hh:mm), {example}: a time without offset is never guessed",
            )
            return None
        offset = "+00:00" if match["offset"] == "Z" else match["offset"]
        try:
            return datetime.fromisoformat(match["base"] + (match["fraction"] or "") + offset)
        except ValueError:
            self.problem(where, value, "a real calendar date and a time from 00:00:00 to 23:59:59")
            return None

    def order_number(self, event: Mapping[str, object]) -> str | None:
        text = self.text(event, "/", "order_number", "the SAP process order number (AUFNR)")
        if text is None:
            return None
        try:
            return sap_order_number(text, FieldRef("/order_number"))
        except MappingError as error:
            self.absorb(error)
            return None

    def lines(self, event: Mapping[str, object], name: str) -> list[tuple[int, object]]:
        value = event.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problem(f"/{name}", value, "a JSON array of lines (or null)")
            return []
        return list(enumerate(value))

    def quantity(self, obj: Mapping[str, object], base: str) -> Quantity | None:
        value = self.decimal(obj.get("quantity"), _pointer(base, "quantity"))
        unit_code = self.text(obj, base, "unit", "the Tulip unit code of the quantity")
        if unit_code is None:
            return None
        try:
            unit = self.profile.units.from_partner(
                _UNIT_PARTNER, unit_code, where=_pointer(base, "unit")
            )
        except MappingError as error:
            self.absorb(error)
            return None
        return None if value is None else Quantity(value=value, unit=unit)

    def decimal(self, value: object, where: str) -> Decimal | None:
        match = _DECIMAL.match(value) if isinstance(value, str) else None
        if match is None or not isinstance(value, str):
            expected = "a decimal as a JSON string with '.' as separator, e.g. \"12.500\""
            if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
                expected += (
                    ": a JSON number is refused, it may already be a rounded binary float "
                    "(declare the connector input as Text)"
                )
            self.problem(where, value, expected)
            return None
        number = Decimal(value)
        integer = match["integer"].lstrip("0")
        decimals = (match["fraction"] or "").rstrip("0")
        if number == 0:
            self.problem(where, value, "a quantity greater than zero (leave the line out instead)")
        elif len(integer) > _MAX_INTEGER_DIGITS or len(decimals) > _MAX_DECIMALS:
            self.problem(
                where,
                value,
                f"at most {_MAX_INTEGER_DIGITS} digits before and {_MAX_DECIMALS} after the "
                "point (SAP QUAN 13,3); a quantity is never rounded",
            )
        else:
            return number
        return None

    def line(
        self,
        line: object,
        base: str,
        role: MaterialRole,
        phase: str | None,
        event_reversal: bool,
    ) -> MaterialActual | None:
        if line is None:
            return None
        if not isinstance(line, Mapping):
            self.problem(base, line, "a JSON object with material, quantity and unit")
            return None
        before = len(self.findings)
        material_text = self.text(line, base, "material", "the SAP material number")
        material: str | None = None
        if material_text is not None:
            try:
                material = sap_material(
                    material_text, FieldRef(_pointer(base, "material")), long_field=True
                )
            except MappingError as error:
                self.absorb(error)
        quantity = self.quantity(line, base)
        batch_text = self.text(line, base, "batch", "the SAP batch", required=False)
        batch: str | None = None
        if batch_text is not None:
            try:
                batch = sap_batch(batch_text, FieldRef(_pointer(base, "batch")))
            except MappingError as error:
                self.absorb(error)
        storage = self.code(line, base, "storage_location", "SAP storage location (LGORT)")
        reversal = event_reversal
        final = False
        if role is not MaterialRole.PRODUCED:
            line_reversal = self.flag(line, base, "reversal", required=False)
            if line_reversal and event_reversal:
                self.problem(
                    _pointer(base, "reversal"),
                    True,
                    "no reversal flag on a line of a reversal event (it would reverse twice)",
                )
            reversal = reversal or line_reversal
            if role is MaterialRole.CONSUMED:
                final = self.flag(line, base, "final_issue", required=False)
                if final and reversal:
                    self.problem(
                        _pointer(base, "final_issue"),
                        True,
                        "false on a returned line: a return cannot be the final issue",
                    )
        if len(self.findings) > before or material is None or quantity is None:
            return None
        return MaterialActual(
            role=role,
            material=material,
            quantity=quantity,
            batch=batch,
            storage_location=storage,
            phase=phase,
            reversal=reversal,
            final=final and not reversal,
        )

    def scrap(self, scrap: object) -> Quantity | None:
        if scrap is None:
            return None
        if not isinstance(scrap, Mapping):
            self.problem("/scrap", scrap, "a JSON object with quantity and unit (or null)")
            return None
        return self.quantity(scrap, "/scrap")


def _pointer(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"
