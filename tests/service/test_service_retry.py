"""RetryLater through the running service: delay queues, exact attempts, parking, on both brokers.

The natural RetryLater: a performance message for an order mesbridge has not
received from SAP, naming no plant (integration/routes.py). Delays are short
("0.2s,0.4s") so that a message goes through its stages within a second.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import text

from contracts.errors import RetryLater
from integration.broker import Delivery, Envelope, PublishResult
from integration.pipeline import PendingResults, PipelineResult
from integration.store.failed import FailedMessages
from tests.service.conftest import Harness
from tests.support.idoc_factory import OrderSpec, build_loipro
from tests.support.performance_factory import (
    ActualSpec,
    PerformanceSpec,
    SegmentSpec,
    build_performance,
)

PERFORMANCE = "pasx.ProductionPerformance"
SHORT_RETRY = {"retry_delays": "0.2s,0.4s", "retry_max_attempts": 3}


def _performance(
    number: int, *, order_number: str | None = None, plant: str | None = "1000"
) -> bytes:
    return build_performance(
        PerformanceSpec(
            bodid=f"PP-{number:06d}",
            order_number=order_number or str(700000 + number),
            plant=plant,
            segments=[
                SegmentSpec(
                    phase="0010",
                    actuals=[ActualSpec(material="4711", quantity=f"{number}.5", lot=f"L{number}")],
                ),
                SegmentSpec(
                    phase="0020",
                    actuals=[
                        ActualSpec(material="900100", quantity="10", unit="ST", use="Produced")
                    ],
                ),
            ],
        )
    )


def _publish(harness: Harness, messages: Sequence[tuple[str, str, bytes]]) -> None:
    """(message id, routing key, body) on the inbound exchange, as the MES or SAP would."""
    publisher = harness.service.broker.publisher()
    try:
        results = publisher.publish_batch(
            [
                Envelope(
                    exchange=harness.service.topology.inbound_exchange,
                    routing_key=routing_key,
                    body=body,
                    message_id=message_id,
                    content_type="application/xml",
                )
                for message_id, routing_key, body in messages
            ]
        )
    finally:
        publisher.close()
    assert set(results) == {PublishResult.CONFIRMED}


def _sample(harness: Harness, name: str, **labels: str) -> float:
    value = harness.service.metrics_registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def _processed(harness: Harness, outcome: str, route: str = "performance") -> float:
    return _sample(harness, "mesbridge_messages_processed_total", route=route, outcome=outcome)


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def test_a_poison_message_is_parked_after_exactly_the_configured_attempts_while_the_rest_flow(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service(**SHORT_RETRY)
    poison = ("poison-1", PERFORMANCE, _performance(0, order_number="799999", plant=None))
    good = [(f"good-{n}", PERFORMANCE, _performance(n)) for n in range(1, 101)]

    _publish(harness, [poison, *good])

    harness.wait_for(harness.settled(inputs=100, parked=1))
    harness.wait_for(lambda: _processed(harness, "parked") == 1)
    # Every good message behind the poison took effect, once.
    outputs = harness.outputs(200, target="sap")
    assert len(outputs) == 200
    assert len({delivery.message_id for delivery in outputs}) == 200
    assert _processed(harness, "ok") == 100
    # Exactly three attempts: the first and two retries, one per delay; then parked.
    assert _sample(harness, "mesbridge_messages_received_total", route="performance") == 103
    assert _processed(harness, "retried") == 2
    assert _sample(harness, "mesbridge_retries_total", route="performance") == 2

    store = harness.service.store
    assert store is not None
    failed = FailedMessages(store.engine)
    (summary,) = failed.find()
    assert (summary.route, summary.error_class, summary.attempts) == (
        "performance",
        "RetryLater",
        3,
    )
    assert "gave up after 3 attempts over" in summary.error_text
    assert "order 000000799999 has not been received from SAP yet" in summary.error_text
    assert summary.contract == "b2mml/ProductionPerformance/V0600"
    assert summary.order_numbers == ("799999",)
    detail = failed.get(summary.id)
    assert detail is not None
    assert detail.body == poison[2]
    headers = detail.headers
    # The copies kept the message id, where it was published, and the first-seen time.
    assert headers["message_id"] == "poison-1"
    assert headers["routing_key"] == PERFORMANCE
    assert headers["x-mesbridge-attempts"] == "3"
    first_seen = datetime.fromisoformat(headers["x-mesbridge-first-seen"])
    assert _aware(summary.first_failed_at) == first_seen
    # It waited through both delays (less at most the jitter) between first and last attempt.
    assert _aware(summary.last_failed_at) - first_seen >= timedelta(seconds=0.6 * 0.9)
    assert "has not been received from SAP yet" in headers["x-mesbridge-last-error"]
    assert not any(key.startswith("x-death") for key in headers)

    parked = harness.service.broker.consumer(harness.service.topology.parked_queue, prefetch=10)
    try:
        copies: list[Delivery] = []
        for _ in range(20):
            copies += parked.fetch(10, 0.1)
            if copies:
                break
    finally:
        parked.close()
    assert len(copies) == 1
    assert copies[0].body == poison[2]
    assert copies[0].headers["x-mesbridge-error-class"] == "RetryLater"
    for spec in harness.service.topology.queues:
        if ".retry." in spec.name:
            assert harness.service.broker.queue_depth(spec.name) == 0  # type: ignore[attr-defined]


def test_a_message_that_waits_for_its_order_takes_effect_once_sap_sends_it(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service(retry_delays="0.3s", retry_max_attempts=100)
    early = _performance(1, order_number="800002", plant=None)

    _publish(harness, [("early-1", PERFORMANCE, early)])
    harness.wait_for(lambda: _processed(harness, "retried") >= 2)
    assert harness.count("inbox") == 0
    order = OrderSpec(docnum="0000000000900002", order_number="800002", plant="1100")
    _publish(harness, [("order-1", "sap.LOIPRO", build_loipro([order]))])

    harness.wait_for(harness.settled(inputs=2))
    outputs = harness.outputs(2, target="sap")
    assert len(outputs) == 2
    assert all(b"<PLANT>1100</PLANT>" in delivery.body for delivery in outputs)
    store = harness.service.store
    assert store is not None
    with store.engine.connect() as connection:
        source = connection.execute(
            text("SELECT source_message_id FROM inbox WHERE route = 'performance'")
        ).scalar_one()
    assert source == "early-1"  # the retry copies carried the original message id
    assert harness.count("failed_message") == 0
    assert _processed(harness, "parked") == 0


@pytest.mark.parametrize("broker_url", [f"memory://retry-{uuid.uuid4().hex[:8]}"])
def test_a_dead_worker_process_is_replaced_and_nothing_is_lost_or_parked(
    make_service: Callable[..., Harness],
) -> None:
    before = set(multiprocessing.active_children())
    harness = make_service(pipeline_workers=1, retry_delays="0.2s", retry_max_attempts=2)
    workers = [child for child in multiprocessing.active_children() if child not in before]
    assert workers, "the pipeline pool started no worker process"
    orders = [
        build_loipro([OrderSpec(docnum=f"{n:016d}", order_number=str(510000 + n))])
        for n in range(1, 41)
    ]
    _publish(harness, [(f"o-{n}", "sap.LOIPRO", body) for n, body in enumerate(orders[:20])])
    harness.wait_for(harness.settled(inputs=20))

    for worker in workers:
        assert worker.pid is not None
        os.kill(worker.pid, signal.SIGKILL)
    later = [(f"o-{n}", "sap.LOIPRO", body) for n, body in enumerate(orders[20:], start=20)]
    # A RetryLater crosses the process boundary too.
    waiting = ("wait-1", PERFORMANCE, _performance(9, order_number="799998", plant=None))
    _publish(harness, [*later, waiting])

    harness.wait_for(harness.settled(inputs=40, parked=1), timeout_s=90)
    deaths = sum(
        _sample(harness, "mesbridge_pipeline_worker_deaths_total", route=route)
        for route in ("process-order", "performance")
    )
    assert deaths == 1, "one death, counted once however many batches it broke"
    assert len({delivery.message_id for delivery in harness.outputs(40)}) == 40
    store = harness.service.store
    assert store is not None
    (summary,) = FailedMessages(store.engine).find()
    assert (summary.error_class, summary.attempts) == ("RetryLater", 2)


@pytest.mark.parametrize("broker_url", [f"memory://retry-{uuid.uuid4().hex[:8]}"])
def test_readyz_names_a_route_whose_consumer_keeps_failing_until_it_recovers(
    make_service: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    harness = make_service()
    service = harness.service
    processor = service._processor
    assert processor is not None
    real = processor.submit
    broken = {"on": True}

    def submit(route: str, deliveries: Sequence[Delivery]) -> PendingResults:
        pending = real(route, deliveries)

        def results() -> list[PipelineResult]:
            if route == "performance" and broken["on"]:
                raise RuntimeError("a bug in the performance step")
            return pending()

        return results

    monkeypatch.setattr(processor, "submit", submit)
    assert service.http is not None
    url = f"http://127.0.0.1:{service.http.port}/readyz"

    _publish(harness, [("perf-1", PERFORMANCE, _performance(1))])
    harness.wait_for(lambda: httpx.get(url).status_code == 503)
    checks = httpx.get(url).json()["checks"]
    assert checks["route performance"].startswith("RuntimeError: route performance: ")
    assert "failures in a row" in checks["route performance"]
    assert "a bug in the performance step" in checks["route performance"]
    assert checks["route process-order"] == "ok"
    assert _sample(harness, "mesbridge_consumer_errors_total", route="performance") >= 3
    assert harness.count("failed_message") == 0

    broken["on"] = False
    harness.wait_for(harness.settled(inputs=1), timeout_s=60)
    harness.wait_for(lambda: httpx.get(url).status_code == 200, timeout_s=60)
    assert harness.count("failed_message") == 0
    assert len(harness.outputs(2, target="sap", timeout_s=10)) == 2


def test_retry_later_survives_the_trip_back_from_a_worker_process() -> None:
    error = RetryLater("order 1 has not been received from SAP yet", message_ref="AMQP x")
    copy = pickle.loads(pickle.dumps(error))
    assert (type(copy), copy.summary, copy.message_ref) == (RetryLater, error.summary, "AMQP x")
    assert str(copy) == str(error)
