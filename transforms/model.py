"""The canonical model: what mesbridge understands a message to say, independent of format.

Values here are already normalised (docs/normalisation.md): order numbers and
numeric material numbers zero-padded as SAP keeps them, batches in upper case,
quantities as ``Decimal`` with a resolved unit, dates and times as aware
``datetime`` in the plant's time zone. Parsers build these objects; output
transforms read them. Nothing here does IO.

The classes are frozen dataclasses: callers cannot change them, and equal values
compare and hash equal. The ``build_*`` functions give the same objects as the
keyword constructors of the classes a parser builds for every message (dozens of
phases and components per order), at a fraction of the cost (see ``mutable_twin``).
"""

from __future__ import annotations

import dataclasses
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
    "build_component",
    "build_idoc_control",
    "build_phase",
    "build_process_order",
    "mutable_twin",
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


# -- building many at once ------------------------------------------------------------------


def mutable_twin(cls: type) -> type:
    """A plain slotted dataclass with the fields and slots of the frozen dataclass ``cls``.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``
    (about 70 ns a field, and a keyword call to a class builds a dict of its arguments
    first): a 14-field ``Component`` costs ~1.4 µs, and a parser builds dozens per
    message. The twin's ``__init__`` stores into its slots directly, and an instance whose
    layout is the same slot for slot may change class: a ``build_*`` function makes a twin,
    sets its ``__class__`` to ``cls`` and returns it, a ``cls`` like any other (frozen,
    equal and hashing as the keyword-built one) at about a quarter of the cost. The twin never
    leaves that function. ``cls`` must not have a ``__post_init__``: the twin skips it.
    """
    if "__post_init__" in vars(cls):
        raise TypeError(f"{cls.__name__} has a __post_init__, which a twin would skip")
    names = [field.name for field in dataclasses.fields(cls)]
    twin = dataclasses.make_dataclass(
        f"{cls.__name__}Draft", names, slots=True, repr=False, eq=False, match_args=False
    )
    # Fail at import, not at the first message, should the layouts ever differ.
    probe = twin(*[None] * len(names))
    probe.__class__ = cls
    return twin


_IdocControlDraft = mutable_twin(IdocControl)
_ComponentDraft = mutable_twin(Component)
_PhaseDraft = mutable_twin(Phase)
_ProcessOrderDraft = mutable_twin(ProcessOrder)


def build_idoc_control(
    *,
    docnum: str,
    idoctyp: str,
    mestyp: str,
    cimtyp: str | None,
    client: str | None,
    release: str | None,
    direction: str | None,
    sender_port: str | None,
    sender_partner_type: str | None,
    sender_partner: str,
    receiver_port: str | None,
    receiver_partner_type: str | None,
    receiver_partner: str | None,
    created_local: datetime | None,
    serialization: str | None,
) -> IdocControl:
    """``IdocControl(...)`` at a quarter of the cost (``mutable_twin``); every field is named."""
    control: IdocControl = _IdocControlDraft(
        docnum,
        idoctyp,
        mestyp,
        cimtyp,
        client,
        release,
        direction,
        sender_port,
        sender_partner_type,
        sender_partner,
        receiver_port,
        receiver_partner_type,
        receiver_partner,
        created_local,
        serialization,
    )
    control.__class__ = IdocControl
    return control


def build_component(
    *,
    reservation: str | None,
    reservation_item: str | None,
    item_number: str | None,
    material: str,
    plant: str | None,
    storage_location: str | None,
    batch: str | None,
    required: Quantity,
    requirement_date: date | None,
    movement_type: str | None,
    role: ComponentRole,
    deleted: bool,
    final_issue: bool,
    backflush: bool,
) -> Component:
    """``Component(...)`` at a quarter of the cost (``mutable_twin``); every field is named."""
    component: Component = _ComponentDraft(
        reservation,
        reservation_item,
        item_number,
        material,
        plant,
        storage_location,
        batch,
        required,
        requirement_date,
        movement_type,
        role,
        deleted,
        final_issue,
        backflush,
    )
    component.__class__ = Component
    return component


def build_phase(
    *,
    sequence: str | None,
    number: str,
    description: str | None,
    work_center: str | None,
    control_key: str | None,
    quantity: Quantity | None,
    earliest_start: datetime | None,
    earliest_finish: datetime | None,
    status: tuple[str, ...],
    components: tuple[Component, ...],
) -> Phase:
    """``Phase(...)`` at a quarter of the cost (``mutable_twin``); every field is named."""
    phase: Phase = _PhaseDraft(
        sequence,
        number,
        description,
        work_center,
        control_key,
        quantity,
        earliest_start,
        earliest_finish,
        status,
        components,
    )
    phase.__class__ = Phase
    return phase


def build_process_order(
    *,
    control: IdocControl,
    order_number: str,
    order_category: str | None,
    order_type: str | None,
    plant: str,
    material: str,
    total: Quantity,
    scrap: Quantity | None,
    basic_start: datetime | None,
    basic_finish: datetime | None,
    scheduled_start: datetime | None,
    scheduled_finish: datetime | None,
    release_date: date | None,
    reservation: str | None,
    recipe: RecipeReference | None,
    timezone: str,
    status: tuple[str, ...],
    items: tuple[OrderItem, ...],
    phases: tuple[Phase, ...],
) -> ProcessOrder:
    """``ProcessOrder(...)`` at a quarter of the cost (``mutable_twin``); every field is named."""
    order: ProcessOrder = _ProcessOrderDraft(
        control,
        order_number,
        order_category,
        order_type,
        plant,
        material,
        total,
        scrap,
        basic_start,
        basic_finish,
        scheduled_start,
        scheduled_finish,
        release_date,
        reservation,
        recipe,
        timezone,
        status,
        items,
        phases,
    )
    order.__class__ = ProcessOrder
    return order


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
