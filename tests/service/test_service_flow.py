"""The process-order route through the running service: exactly one schedule per order."""

from __future__ import annotations

import dataclasses
import json
import random
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from lxml import etree

from contracts.registry import ContractRegistry
from tests.service.conftest import Harness
from tests.support.idoc_factory import ComponentSpec, OrderSpec, PhaseSpec, build_loipro

NS = {"b": "http://www.mesa.org/xml/B2MML-V0600"}
DEFAULT_MAPPING = Path(__file__).resolve().parents[2] / "integration/defaults/mapping.toml"
_KILOGRAMS = '[[units]]\nsap = "KG"\niso = "KGM"\npasx = "KG"\ntulip = "kg"\n'


def _order(number: int, quantity: str = "41.250", *, docnum: int | None = None) -> bytes:
    phases = [
        PhaseSpec(
            number=f"{10 * p:04d}",
            components=[ComponentSpec(material=str(300000 + p), reservation_item=f"{p:04d}")],
        )
        for p in range(1, 4)
    ]
    spec = OrderSpec(
        docnum=f"{docnum or number:016d}",
        order_number=str(600000 + number),
        quantity=quantity,
        phases=phases,
    )
    return build_loipro([spec])


@pytest.mark.parametrize("workers", [0, 2], ids=["in-thread", "worker-processes"])
def test_each_order_gives_exactly_one_valid_schedule_despite_duplicates(
    make_service: Callable[..., Harness], workers: int
) -> None:
    harness = make_service(pipeline_workers=workers)
    orders = [_order(n) for n in range(1, 41)]
    harness.publish(orders + orders[:15])  # 15 redeliveries of the same content
    harness.wait_for(harness.settled(inputs=40))
    outputs = harness.outputs(40)
    assert len(outputs) == 40
    assert len({delivery.message_id for delivery in outputs}) == 40
    registry = ContractRegistry.load()
    contract = registry.get("b2mml/ProductionSchedule/V0600")
    numbers = set()
    for delivery in outputs:
        root = etree.fromstring(delivery.body)
        assert registry.validate_xml(root, contract) is contract
        numbers.update(root.xpath("//b:ProductionRequest/b:ID/text()", namespaces=NS))
        assert delivery.headers["x-mesbridge-contract"] == "b2mml/ProductionSchedule/V0600"
        # The message id is the document's BODID, so SAP-side and MES-side ids agree.
        assert delivery.message_id == root.findtext("b:ApplicationArea/b:BODID", namespaces=NS)
    assert numbers == {f"{600000 + n:012d}" for n in range(1, 41)}
    metrics = httpx.get(f"http://127.0.0.1:{harness.service.http.port}/metrics").text  # type: ignore[union-attr]
    assert 'mesbridge_messages_processed_total{outcome="ok",route="process-order"} 40.0' in metrics
    assert (
        'mesbridge_messages_processed_total{outcome="duplicate",route="process-order"} 15.0'
        in metrics
    )


@pytest.mark.parametrize("workers", [0, 2], ids=["in-thread", "worker-processes"])
def test_schedules_leave_in_the_order_the_orders_arrived(
    make_service: Callable[..., Harness], workers: int
) -> None:
    # One consumer loop per route (the default), three batches of 50 in the pipeline step at
    # once (prefetch 150). DOCNUMs are shuffled so that neither they nor the idempotency
    # keys can stand in for the arrival order; order 7 comes twice, released then changed.
    harness = make_service(pipeline_workers=workers, prefetch=150)
    numbers = list(range(1, 161))
    random.Random(3).shuffle(numbers)
    sent = [(n, n) for n in numbers] + [(7, 999)]  # (order, DOCNUM)
    harness.publish([_order(n, docnum=docnum) for n, docnum in sent])
    outputs = harness.outputs(len(sent))
    # "SAP process order 000000600007, LOIPRO IDoc 0000000000000999 from ERPCLNT200"
    described = [
        etree.fromstring(d.body).findtext(".//b:ProductionRequest/b:Description", namespaces=NS)
        for d in outputs
    ]
    assert described == [
        f"SAP process order {600000 + n:012d}, LOIPRO IDoc {docnum:016d} from ERPCLNT200"
        for n, docnum in sent
    ]


def test_bad_and_conflicting_messages_are_parked_and_the_rest_flows(
    make_service: Callable[..., Harness],
) -> None:
    # One consumer loop: which of two conflicting copies is "the later one" is decided by
    # arrival order, and only a single loop keeps arrival order.
    harness = make_service(consumers=1)
    good = [_order(n) for n in range(1, 6)]
    bad_batch = build_loipro([OrderSpec(docnum=f"{99:016d}", batch="FAR_TOO_LONG_BATCH")])
    conflict = _order(3, quantity="99.000")  # the key of order 3, other content
    harness.publish([good[0], bad_batch, good[1], b"<not-xml", good[2], conflict, good[3], good[4]])
    harness.wait_for(harness.settled(inputs=5, parked=3))
    assert len(harness.outputs(5)) == 5
    store = harness.service.store
    assert store is not None
    classes = sorted(store.get_failure(i).error_class for i in (1, 2, 3))  # type: ignore[union-attr]
    assert classes == ["ContractViolation", "IdempotencyConflict", "MalformedInput"]
    parked_consumer = harness.service.broker.consumer(
        harness.service.topology.parked_queue, prefetch=10
    )
    parked = []
    deadline = time.monotonic() + 10
    while len(parked) < 3 and time.monotonic() < deadline:
        parked += parked_consumer.fetch(10, 0.2)
    parked_consumer.close()
    assert sorted(d.body for d in parked) == sorted([bad_batch, b"<not-xml", conflict])
    assert {d.headers["x-mesbridge-error-class"] for d in parked} == {
        "ContractViolation",
        "IdempotencyConflict",
        "MalformedInput",
    }
    registry = harness.service.metrics_registry
    harness.wait_for(
        lambda: registry.get_sample_value("mesbridge_parked_messages") == 3.0, timeout_s=15
    )
    assert registry.get_sample_value("mesbridge_outbox_backlog") == 0.0


def test_an_idoc_that_took_effect_and_comes_again_in_another_message_is_parked_not_stalling(
    make_service: Callable[..., Harness],
) -> None:
    """Outputs' message ids are per IDoc and order, inbox keys per message: an IDoc settled
    inside one packet that comes again alone (or twice in one file) must not break the
    outbox's unique message id and send its batch back to the queue forever."""
    harness = make_service(consumers=1)
    first, second, third = (
        OrderSpec(docnum=f"{n:016d}", order_number=str(610000 + n)) for n in (1, 2, 3)
    )
    harness.publish([build_loipro([first, second])])
    harness.wait_for(harness.settled(inputs=1))
    again = build_loipro([second])  # SAP sends one IDoc of the packet again, alone
    changed = build_loipro([dataclasses.replace(second, quantity="12.000")])
    twice = build_loipro([third, third])  # one IDoc twice in one file
    harness.publish([again, changed, twice, _order(4)])
    harness.wait_for(harness.settled(inputs=2, parked=3))

    schedules = harness.outputs(3)
    assert sorted(d.headers["x-mesbridge-orders"] for d in schedules) == [
        "000000600004",
        "000000610001",
        "000000610002",
    ]
    store = harness.service.store
    assert store is not None
    failures = {f.body: f for f in map(store.get_failure, (1, 2, 3)) if f is not None}
    assert set(failures) == {again, changed, twice}
    for body in (again, changed):
        assert failures[body].error_class == "IdempotencyConflict"
        assert "was made before" in failures[body].error_text
    # One IDoc twice in one file is the message's own fault, found by the transform.
    assert failures[twice].error_class == "MappingError"
    assert "is in the message twice" in failures[twice].error_text


def test_stop_drains_the_batch_and_flushes_the_outbox(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service()
    harness.publish([_order(n) for n in range(1, 201)])
    harness.wait_for(lambda: harness.count("inbox") > 0)
    harness.close()
    harness.service.stop()
    store = harness.service.store
    assert store is not None
    # Everything settled was delivered before the service returned from stop().
    assert store.outbox_backlog() == 0
    # Nothing is lost: what was not settled is still in the queue for the next start,
    # and nothing is doubled: 200 orders, 200 schedules over both runs.
    second = make_service()
    second.wait_for(second.settled(inputs=200))
    assert second.count("inbox") == 200
    assert len(second.outputs(200)) == 200


def test_readiness_and_health(make_service: Callable[..., Harness]) -> None:
    harness = make_service()
    port = harness.service.http.port  # type: ignore[union-attr]
    assert httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
    assert ready.status_code == 200, ready.text
    assert json.loads(ready.text)["checks"] == {
        "database": "ok",
        "broker": "ok",
        "contracts": "ok",
        "route process-order": "ok",
        "route performance": "ok",
    }


def test_an_input_that_took_effect_before_is_a_duplicate_without_being_transformed_again(
    make_service: Callable[..., Harness], tmp_path: Path
) -> None:
    # DESIGN §1: deduplicate, then validate and transform. Proven by a mapping under which
    # the repeated order could no longer be transformed: it must still count as the
    # duplicate it is, not be parked for a mapping gap.
    first = make_service()
    taken = _order(1)
    first.publish([taken])
    first.wait_for(first.settled(inputs=1))
    assert len(first.outputs(1)) == 1
    first.close()
    first.service.stop()
    default = DEFAULT_MAPPING.read_text(encoding="utf-8")
    assert _KILOGRAMS in default
    site_mapping = tmp_path / "mapping.toml"
    site_mapping.write_text(default.replace(_KILOGRAMS, ""), encoding="utf-8")

    second = make_service(mapping_file=str(site_mapping))
    new = _order(2)
    second.publish([taken, new])  # SAP sends order 1 again; order 2 is new, also in KG

    registry = second.service.metrics_registry
    second.wait_for(
        lambda: (
            registry.get_sample_value(
                "mesbridge_messages_processed_total",
                {"route": "process-order", "outcome": "duplicate"},
            )
            == 1.0
        )
    )
    second.wait_for(second.settled(inputs=1, parked=1))
    store = second.service.store
    assert store is not None
    only = store.get_failure(1)
    assert only is not None
    assert only.error_class == "MappingError"
    assert only.body == new
    assert store.get_failure(2) is None
    assert second.count("inbox") == 1
    assert second.outputs(0, timeout_s=0.5) == []
