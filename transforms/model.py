"""The canonical model: what mesbridge understands a message to say, independent of format.

Values here are already normalised (docs/normalisation.md): order numbers and
numeric material numbers zero-padded as SAP keeps them, batches in upper case,
quantities as ``Decimal`` with a resolved unit, dates and times as aware
``datetime`` in the plant's time zone. Parsers build these objects; output
transforms read them. Nothing here does IO.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum

__all__ = [
    "Component",
    "ComponentRole",
    "IdocControl",
    "MaterialActual",
    "MaterialRole",
    "OrderItem",
    "PerformanceReport",
    "Phase",
    "PhaseConfirmation",
    "ProcessOrder",
    "Quantity",
    "RecipeReference",
    "Unit",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Unit:
    """A unit known to the unit table: SAP's internal code and its ISO (UN/ECE Rec 20) code."""

    sap: str
    iso: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Quantity:
    value: Decimal
    unit: Unit


@dataclass(frozen=True, slots=True, kw_only=True)
class IdocControl:
    """The IDoc control record (EDI_DC40) fields mesbridge relies on."""

    docnum: str
    idoctyp: str
    mestyp: str
    cimtyp: str | None = None
    client: str | None = None
    release: str | None = None
    direction: str | None = None
    sender_port: str | None = None
    sender_partner_type: str | None = None
    sender_partner: str
    receiver_port: str | None = None
    receiver_partner_type: str | None = None
    receiver_partner: str | None = None
    # CREDAT/CRETIM are the sender's local time without a zone; kept naive on purpose.
    created_local: datetime | None = None
    serialization: str | None = None

    @property
    def idempotency_key(self) -> tuple[str, str, str]:
        """DESIGN §4: DOCNUM is unique only per sending system and message type."""
        return (self.sender_partner, self.mestyp, self.docnum)


class ComponentRole(Enum):
    """Whether the order consumes a component or produces it (SHKZG H / S)."""

    CONSUMED = "consumed"
    BY_PRODUCT = "by-product"


@dataclass(frozen=True, slots=True, kw_only=True)
class Component:
    """A reservation item (E1RESBL) assigned to a phase."""

    reservation: str | None
    reservation_item: str | None
    item_number: str | None
    material: str
    plant: str | None
    storage_location: str | None
    batch: str | None
    required: Quantity
    requirement_date: date | None
    movement_type: str | None
    role: ComponentRole
    deleted: bool = False
    final_issue: bool = False
    backflush: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Phase:
    """An operation or phase (E1AFVOL) with the components assigned to it."""

    sequence: str | None
    number: str
    description: str | None
    work_center: str | None
    control_key: str | None
    quantity: Quantity | None
    earliest_start: datetime | None
    earliest_finish: datetime | None
    status: tuple[str, ...] = ()
    components: tuple[Component, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class OrderItem:
    """The order item (E1AFPOL): what the order produces, into which batch."""

    position: str | None
    material: str
    quantity: Quantity
    batch: str | None
    storage_location: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class RecipeReference:
    task_list_type: str | None
    task_list: str | None
    counter: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ProcessOrder:
    """One process order as SAP sent it in one IDoc (E1AFKOL and below)."""

    control: IdocControl
    order_number: str
    order_category: str | None
    order_type: str | None
    plant: str
    material: str
    total: Quantity
    scrap: Quantity | None
    basic_start: datetime | None
    basic_finish: datetime | None
    scheduled_start: datetime | None
    scheduled_finish: datetime | None
    release_date: date | None
    reservation: str | None
    recipe: RecipeReference | None
    timezone: str
    status: tuple[str, ...] = ()
    items: tuple[OrderItem, ...] = ()
    phases: tuple[Phase, ...] = ()

    @property
    def start(self) -> datetime | None:
        """The planned start the MES should use: scheduled where SAP scheduled it, else basic."""
        return self.scheduled_start or self.basic_start

    @property
    def finish(self) -> datetime | None:
        return self.scheduled_finish or self.basic_finish

    @property
    def batch(self) -> str | None:
        """The batch the order produces into (the first item's batch)."""
        return next((item.batch for item in self.items if item.batch), None)

    def active_components(self) -> tuple[tuple[Phase, Component], ...]:
        """Every component not flagged deleted (XLOEK), with the phase it belongs to."""
        return tuple(
            (phase, component)
            for phase in self.phases
            for component in phase.components
            if not component.deleted
        )


# -- MES → ERP: what the plant did ----------------------------------------------------------


class MaterialRole(Enum):
    """What a reported material quantity is, independent of B2MML version or Tulip field names."""

    CONSUMED = "consumed"  # issued to the order (SAP 261)
    PRODUCED = "produced"  # the order's yield (SAP 101)
    BY_PRODUCT = "by-product"  # co-/by-product received from the order (SAP 531)


@dataclass(frozen=True, slots=True, kw_only=True)
class MaterialActual:
    """One material quantity the MES reports for an order (B2MML MaterialActual, Tulip line).

    ``reversal`` marks a correction that takes back an earlier posting of the same kind
    (SAP 262 / 102 / 532). ``quantity`` is always positive; the direction is in the role.
    """

    role: MaterialRole
    material: str
    quantity: Quantity
    batch: str | None = None
    storage_location: str | None = None
    plant: str | None = None
    reservation: str | None = None
    reservation_item: str | None = None
    phase: str | None = None
    reversal: bool = False
    final: bool = False
    source_line: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PhaseConfirmation:
    """What the MES confirms for one phase of the order: yield, scrap, and whether it is final.

    Quantities are in the order's unit as the MES reported them; a phase confirmed with
    neither yield nor scrap is still a confirmation (activity or completion only).
    ``final`` is SAP's final confirmation (no further confirmations expected for the phase).
    """

    phase: str  # SAP phase/operation number (VORNR), e.g. "0020"
    yield_quantity: Quantity | None = None
    scrap_quantity: Quantity | None = None
    final: bool = False
    started_at: datetime | None = None  # aware
    finished_at: datetime | None = None  # aware
    source_line: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PerformanceReport:
    """One MES message about one process order: what was consumed and produced, and when."""

    sender: str
    document_id: str  # B2MML BODID or the sender's document id; Tulip event id
    contract: str
    order_number: str
    event_time: datetime  # aware; posting dates are taken from it in the plant's zone
    plant: str | None
    actuals: tuple[MaterialActual, ...]
    confirmations: tuple[PhaseConfirmation, ...] = ()

    @property
    def idempotency_key(self) -> str:
        return f"{self.contract.split('/')[0]}:{self.sender}:{self.document_id}"
