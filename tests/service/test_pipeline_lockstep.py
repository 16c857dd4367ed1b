"""A batch through the pipeline in lockstep gives exactly what each message alone would give.

``Pipeline.process_many`` runs the steps of up to a dozen messages side by side
(integration/lockstep.py), for the CPU cache; nothing about a message's result may
depend on its neighbours: valid orders, a contract violation, hostile XML and a
mapping problem in one batch each get their own result, in delivery order.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from integration import lockstep
from integration.broker import Delivery
from integration.pipeline import Pipeline, PipelineResult, _lockstep_groups
from tests.support.idoc_factory import ComponentSpec, OrderSpec, PhaseSpec, build_loipro
from tests.support.pipelines import process_order_pipeline

_NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


def _order(number: int, **changes: object) -> bytes:
    spec = OrderSpec(docnum=f"{number:016d}", order_number=str(700000 + number))
    for name, value in changes.items():
        setattr(spec, name, value)
    return build_loipro([spec])


def _batch() -> list[Delivery]:
    bodies = [
        _order(1),
        _order(2, quantity="not a number"),  # violates the LOIPRO contract
        b'<?xml version="1.0"?><!DOCTYPE IDOC [<!ENTITY x "y">]><IDOC>&x;</IDOC>',
        _order(3),
        _order(4, unit="??"),  # no such unit of measure in the mapping profile
        _order(5, phases=[PhaseSpec(number=f"{n:04d}") for n in (10, 20, 30)]),
        _order(6, phases=[PhaseSpec(components=[ComponentSpec(quantity="1.5")] * 3)]),
        b"not xml at all",
        *(_order(number) for number in range(7, 40)),
    ]
    return [
        Delivery(
            body=body,
            exchange="mesbridge.in",
            routing_key="sap.LOIPRO",
            delivery_tag=tag,
            message_id=f"m-{tag}",
        )
        for tag, body in enumerate(bodies, start=1)
    ]


def _pipeline() -> Pipeline:
    # The results carry the time they were made: one fixed time for both ways.
    return process_order_pipeline(clock=lambda: _NOW)


def _outcome(result: PipelineResult) -> tuple[object, ...]:
    failure = result.failure
    return (
        result.delivery.delivery_tag,
        result.contract,
        result.record,
        None if failure is None else (failure.error_class, failure.error_text, failure.findings),
        result.retry,
    )


def test_a_batch_in_lockstep_gives_each_message_what_it_gets_alone() -> None:
    batch = _batch()

    together = _pipeline().process_many(batch)
    alone = [_pipeline().process(delivery) for delivery in batch]

    assert [_outcome(r) for r in together] == [_outcome(r) for r in alone]
    kinds = [
        "ok" if r.record else r.failure.error_class if r.failure else "retry" for r in together
    ]
    assert kinds[:8] == [
        "ok",
        "ContractViolation",
        "HostileInput",
        "ok",
        "MappingError",
        "ok",
        "MappingError",  # from the B2MML writer: the same reservation item three times
        "MalformedInput",
    ]
    assert kinds[8:] == ["ok"] * 33
    records = [r.record for r in together if r.record]
    assert len({record.idempotency_key for record in records}) == len(records) == 36


def test_lockstep_takes_one_step_of_every_run_in_turn_and_keeps_their_order() -> None:
    taken: list[str] = []

    def run(name: str, steps: int) -> lockstep.Steps[str]:
        for step in range(1, steps + 1):
            taken.append(f"{name}{step}")
            if step < steps:
                yield
        return name.upper()

    results = lockstep.in_lockstep([run("a", 2), run("b", 3), run("c", 1)])

    assert results == ["A", "B", "C"]
    assert taken == ["a1", "b1", "c1", "a2", "b2", "b3"]


def test_an_exception_a_run_does_not_handle_ends_the_whole_lockstep() -> None:
    def failing() -> lockstep.Steps[str]:
        yield
        raise TimeoutError("the database went away")

    def fine() -> lockstep.Steps[str]:
        yield
        yield
        return "done"

    with pytest.raises(TimeoutError, match="the database went away"):
        lockstep.in_lockstep([fine(), failing(), fine()])


def test_lockstep_groups_are_bounded_in_messages_and_in_input_bytes() -> None:
    def deliveries(*sizes: int) -> list[Delivery]:
        return [
            Delivery(body=b"x" * size, exchange="", routing_key="k", delivery_tag=tag)
            for tag, size in enumerate(sizes, start=1)
        ]

    def group_sizes(batch: list[Delivery]) -> list[int]:
        return [len(group) for group in _lockstep_groups(batch)]

    assert group_sizes(deliveries(*[100] * 40)) == [16, 16, 8]
    # Realistic orders of 9 KB: five to a group.
    assert group_sizes(deliveries(*[9_300] * 12)) == [5, 5, 2]
    # A message too large to share a group with its neighbours goes alone.
    assert group_sizes(deliveries(100, 2_000_000, 100, 100)) == [1, 1, 2]
    assert group_sizes(deliveries(30_000, 30_000, 30_000)) == [1, 1, 1]
    assert group_sizes(deliveries(20_000, 20_000, 20_000)) == [2, 1]
    assert group_sizes([]) == []
