"""One consumer loop keeps several batches in the pipeline step, and settles them in order;
byte-identical copies within one batch go through the step once."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import pytest

from integration.broker import Delivery
from integration.pipeline import PendingResults, PipelineResult
from integration.workers import InlinePipelines
from tests.service.conftest import Harness
from tests.service.test_service_flow import _order
from tests.support.rabbit import ready_messages


class Recorder:
    """What the service hands to its (in-thread) pipeline step, in order.

    ``events`` gets ("submit", n) when batch n is handed over and ("results", n) when the
    loop asks for its results; ``bodies`` every message that went through the step. With
    ``hold_first`` set, the first batch's results wait for ``release``.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, hold_first: bool = False) -> None:
        self.events: list[tuple[str, int]] = []
        self.bodies: list[bytes] = []
        self.release = threading.Event()
        if not hold_first:
            self.release.set()
        recorder = self

        class Recording(InlinePipelines):
            def submit(self, route: str, deliveries: Sequence[Delivery]) -> PendingResults:
                return recorder.wrap(super().submit(route, deliveries), deliveries)

        monkeypatch.setattr("integration.service.InlinePipelines", Recording)

    def wrap(self, pending: PendingResults, deliveries: Sequence[Delivery]) -> PendingResults:
        batch = sum(1 for kind, _ in self.events if kind == "submit")
        self.events.append(("submit", batch))
        self.bodies += [delivery.body for delivery in deliveries]

        def results() -> list[PipelineResult]:
            self.events.append(("results", batch))
            if batch == 0:
                assert self.release.wait(30)
            return pending()

        return results


def test_the_loop_hands_over_the_next_batches_before_it_settles_the_first(
    make_service: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(monkeypatch)
    # prefetch 30 / batch 10: up to three batches in the pipeline step at once.
    harness = make_service(batch_size=10, prefetch=30)
    harness.publish([_order(n) for n in range(1, 101)])
    harness.wait_for(harness.settled(inputs=100))
    assert len(harness.outputs(100)) == 100

    submitted = [batch for kind, batch in recorder.events if kind == "submit"]
    settled = [batch for kind, batch in recorder.events if kind == "results"]
    assert settled == submitted == list(range(len(submitted))), "settled in the order fetched"
    in_step, most = 0, 0
    for kind, _ in recorder.events:
        in_step += 1 if kind == "submit" else -1
        most = max(most, in_step)
    assert most == 3, f"at most {most} batches were in the pipeline step at once"


def test_identical_copies_in_one_batch_go_through_the_step_once(
    make_service: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    recorder = Recorder(monkeypatch, hold_first=True)
    harness = make_service(batch_size=50, prefetch=50)  # one batch in the step at a time
    harness.publish([_order(100)])
    harness.wait_for(lambda: ("results", 0) in recorder.events)  # the loop waits on it
    copied, other, bad = _order(1), _order(2), _order(3, quantity="1,5")
    harness.publish([copied, copied, copied, other, bad, bad])
    # All six in the consumer's hands before the first batch settles, so they form the next
    # batch: RabbitMQ pushes them within the prefetch window (the memory broker hands out
    # whatever is queued at the next fetch).
    if harness.service.settings.broker_url.startswith("amqp"):
        url, queue = harness.service.settings.broker_url, f"{harness.prefix}.process-order"
        harness.wait_for(lambda: ready_messages(url, queue) == 0)
    recorder.release.set()
    harness.wait_for(harness.settled(inputs=3, parked=2))

    assert recorder.bodies.count(copied) == 1
    # A copy of a message that fails goes through the step itself: its failed message is
    # its own.
    assert recorder.bodies.count(bad) == 2
    store = harness.service.store
    assert store is not None
    failures = [store.get_failure(n) for n in (1, 2)]
    assert [f.body if f else None for f in failures] == [bad, bad]
    # harness.publish numbers its messages: the bad ones were test-4 and test-5.
    assert [f.headers.get("message_id") if f else None for f in failures] == ["test-4", "test-5"]
    assert len(harness.outputs(3)) == 3
    registry = harness.service.metrics_registry
    processed = {
        outcome: registry.get_sample_value(
            "mesbridge_messages_processed_total", {"route": "process-order", "outcome": outcome}
        )
        for outcome in ("ok", "duplicate", "parked")
    }
    assert processed == {"ok": 3.0, "duplicate": 2.0, "parked": 2.0}
    # The processing histogram observes the work done: five messages went through the step.
    observed = registry.get_sample_value(
        "mesbridge_processing_seconds_count", {"route": "process-order"}
    )
    assert observed == 5.0
