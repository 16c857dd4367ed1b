"""The ``build_*`` functions give exactly what the keyword constructors give.

A builder makes a plain slotted twin and turns it into the frozen class
(``transforms.model.mutable_twin``). What a caller can observe must not differ:
the type, equality and hash, repr, immutability, ``dataclasses.replace``, pickling.
The builders name every field; a field added to a class without its builder, or
in another order, fails here.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import pickle
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transforms import order_context as order_context_module
from transforms.model import (
    Component,
    ComponentRole,
    IdocControl,
    Phase,
    ProcessOrder,
    Quantity,
    RecipeReference,
    Unit,
    build_component,
    build_idoc_control,
    build_phase,
    build_process_order,
    mutable_twin,
)
from transforms.order_context import ComponentContext, OrderContext

KG = Unit(sap="KG", iso="KGM")

texts = st.text(max_size=12)
optional_texts = st.none() | texts
quantities = st.builds(
    Quantity,
    value=st.decimals(allow_nan=False, allow_infinity=False, places=3),
    unit=st.sampled_from([KG, Unit(sap="ST", iso="PCE")]),
)
optional_datetimes = st.none() | st.datetimes(timezones=st.just(UTC))
optional_dates = st.none() | st.dates()

component_fields = st.fixed_dictionaries(
    {
        "reservation": optional_texts,
        "reservation_item": optional_texts,
        "item_number": optional_texts,
        "material": texts,
        "plant": optional_texts,
        "storage_location": optional_texts,
        "batch": optional_texts,
        "required": quantities,
        "requirement_date": optional_dates,
        "movement_type": optional_texts,
        "role": st.sampled_from(ComponentRole),
        "deleted": st.booleans(),
        "final_issue": st.booleans(),
        "backflush": st.booleans(),
    }
)
phase_fields = st.fixed_dictionaries(
    {
        "sequence": optional_texts,
        "number": texts,
        "description": optional_texts,
        "work_center": optional_texts,
        "control_key": optional_texts,
        "quantity": st.none() | quantities,
        "earliest_start": optional_datetimes,
        "earliest_finish": optional_datetimes,
        "status": st.lists(texts, max_size=2).map(tuple),
        "components": st.lists(component_fields.map(lambda f: Component(**f)), max_size=2).map(
            tuple
        ),
    }
)
control_fields = st.fixed_dictionaries(
    {
        "docnum": texts,
        "idoctyp": texts,
        "mestyp": texts,
        "cimtyp": optional_texts,
        "client": optional_texts,
        "release": optional_texts,
        "direction": optional_texts,
        "sender_port": optional_texts,
        "sender_partner_type": optional_texts,
        "sender_partner": texts,
        "receiver_port": optional_texts,
        "receiver_partner_type": optional_texts,
        "receiver_partner": optional_texts,
        "created_local": st.none() | st.datetimes(),
        "serialization": optional_texts,
    }
)
order_fields = st.fixed_dictionaries(
    {
        "control": control_fields.map(lambda f: IdocControl(**f)),
        "order_number": texts,
        "order_category": optional_texts,
        "order_type": optional_texts,
        "plant": texts,
        "material": texts,
        "total": quantities,
        "scrap": st.none() | quantities,
        "basic_start": optional_datetimes,
        "basic_finish": optional_datetimes,
        "scheduled_start": optional_datetimes,
        "scheduled_finish": optional_datetimes,
        "release_date": optional_dates,
        "reservation": optional_texts,
        "recipe": st.none()
        | st.builds(RecipeReference, task_list_type=texts, task_list=texts, counter=texts),
        "timezone": st.just("Europe/Berlin"),
        "status": st.lists(texts, max_size=2).map(tuple),
        "items": st.just(()),
        "phases": st.lists(phase_fields.map(lambda f: Phase(**f)), max_size=2).map(tuple),
    }
)
context_fields = st.fixed_dictionaries(
    {
        "material": texts,
        "phase": texts,
        "plant": optional_texts,
        "storage_location": optional_texts,
        "reservation": optional_texts,
        "reservation_item": optional_texts,
        "by_product": st.booleans(),
    }
)

BUILDERS: list[tuple[type[Any], Callable[..., Any], st.SearchStrategy[dict[str, Any]]]] = [
    (Component, build_component, component_fields),
    (Phase, build_phase, phase_fields),
    (IdocControl, build_idoc_control, control_fields),
    (ProcessOrder, build_process_order, order_fields),
    (ComponentContext, order_context_module._component_context, context_fields),
]
IDS = [cls.__name__ for cls, _, _ in BUILDERS]


@pytest.mark.parametrize(("cls", "builder", "fields"), BUILDERS, ids=IDS)
def test_a_builder_names_every_field_in_declaration_order(
    cls: type[Any], builder: Callable[..., Any], fields: object
) -> None:
    parameters = inspect.signature(builder).parameters
    assert list(parameters) == [field.name for field in dataclasses.fields(cls)]
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in parameters.values())


@pytest.mark.parametrize(("cls", "builder", "fields"), BUILDERS, ids=IDS)
@given(data=st.data())
def test_a_built_object_is_the_keyword_built_one(
    cls: type[Any],
    builder: Callable[..., Any],
    fields: st.SearchStrategy[dict[str, Any]],
    data: st.DataObject,
) -> None:
    values = data.draw(fields)
    built, expected = builder(**values), cls(**values)
    assert type(built) is cls
    assert built == expected and expected == built
    assert hash(built) == hash(expected)
    assert repr(built) == repr(expected)
    assert pickle.loads(pickle.dumps(built)) == expected
    assert copy.deepcopy(built) == expected
    assert dataclasses.replace(built) == expected
    assert dataclasses.asdict(built) == dataclasses.asdict(expected)


@pytest.mark.parametrize(("cls", "builder", "fields"), BUILDERS, ids=IDS)
@given(data=st.data())
def test_a_built_object_cannot_be_changed(
    cls: type[Any],
    builder: Callable[..., Any],
    fields: st.SearchStrategy[dict[str, Any]],
    data: st.DataObject,
) -> None:
    built = builder(**data.draw(fields))
    name = dataclasses.fields(cls)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(built, name, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        delattr(built, name)
    with pytest.raises((AttributeError, TypeError)):
        built.__dict__  # noqa: B018 - slotted: there is no instance dict to write into


def test_a_twin_is_refused_for_a_class_with_post_init() -> None:
    @dataclasses.dataclass(frozen=True, slots=True)
    class Checked:
        value: int

        def __post_init__(self) -> None:
            if self.value < 0:
                raise ValueError("negative")

    with pytest.raises(TypeError, match="__post_init__"):
        mutable_twin(Checked)


def test_a_twin_is_refused_where_the_layouts_differ() -> None:
    @dataclasses.dataclass(frozen=True)
    class Unslotted:
        value: int

    with pytest.raises(TypeError):
        mutable_twin(Unslotted)


def _generic_json(context: OrderContext) -> dict[str, object]:
    data = dataclasses.asdict(context)
    data["components"] = tuple(data["components"])
    return data


@given(
    base=st.fixed_dictionaries(
        {
            "order_number": texts,
            "plant": texts,
            "material": texts,
            "receipt_storage_location": optional_texts,
        }
    ),
    components=st.lists(context_fields.map(lambda f: ComponentContext(**f)), max_size=4),
)
def test_order_context_json_is_what_asdict_gives(
    base: dict[str, Any], components: list[ComponentContext]
) -> None:
    context = OrderContext(**base, components=tuple(components))
    data = context.to_json()
    assert data == _generic_json(context)
    assert list(data) == [field.name for field in dataclasses.fields(OrderContext)]
    assert OrderContext.from_json(data) == context


def test_a_requirement_date_and_a_datetime_survive_the_builder() -> None:
    component = build_component(
        reservation=None,
        reservation_item=None,
        item_number=None,
        material="M",
        plant=None,
        storage_location=None,
        batch=None,
        required=Quantity(value=Decimal("1.5"), unit=KG),
        requirement_date=date(2026, 12, 1),
        movement_type="261",
        role=ComponentRole.CONSUMED,
        deleted=False,
        final_issue=False,
        backflush=False,
    )
    phase = build_phase(
        sequence="0",
        number="0010",
        description=None,
        work_center=None,
        control_key=None,
        quantity=None,
        earliest_start=datetime(2026, 12, 1, tzinfo=UTC),
        earliest_finish=None,
        status=(),
        components=(component,),
    )
    assert phase.components[0].requirement_date == date(2026, 12, 1)
    assert {phase: 1}[Phase(**{f.name: getattr(phase, f.name) for f in dataclasses.fields(Phase)})]
