"""One consumer loop keeps several batches in the pipeline step, and settles them in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

import pytest

from integration.broker import Delivery
from integration.pipeline import PendingResults, PipelineResult
from integration.workers import InlinePipelines
from tests.service.conftest import Harness
from tests.service.test_service_flow import _order


def test_the_loop_hands_over_the_next_batches_before_it_settles_the_first(
    make_service: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    events: list[tuple[str, int]] = []

    class Recording(InlinePipelines):
        def submit(self, route: str, deliveries: Sequence[Delivery]) -> PendingResults:
            batch = len([event for event in events if event[0] == "submit"])
            events.append(("submit", batch))
            pending = super().submit(route, deliveries)

            def results() -> list[PipelineResult]:
                events.append(("results", batch))
                return pending()

            return results

    monkeypatch.setattr("integration.service.InlinePipelines", Recording)
    # prefetch 30 / batch 10: up to three batches in the pipeline step at once.
    harness = make_service(batch_size=10, prefetch=30)
    harness.publish([_order(n) for n in range(1, 101)])
    harness.wait_for(harness.settled(inputs=100))
    assert len(harness.outputs(100)) == 100

    submitted = [batch for kind, batch in events if kind == "submit"]
    settled = [batch for kind, batch in events if kind == "results"]
    assert settled == submitted == list(range(len(submitted))), "settled in the order fetched"
    in_step, most = 0, 0
    for kind, _ in events:
        in_step += 1 if kind == "submit" else -1
        most = max(most, in_step)
    assert most == 3, f"at most {most} batches were in the pipeline step at once"


def test_identical_copies_in_one_batch_go_through_the_step_once(
    make_service: Callable[..., Harness], monkeypatch: pytest.MonkeyPatch
) -> None:
    submitted: list[bytes] = []
    gate = threading.Event()

    class Gated(InlinePipelines):
        """Records what reaches the step; holds the first batch until the next is queued."""

        def submit(self, route: str, deliveries: Sequence[Delivery]) -> PendingResults:
            first = not submitted
            submitted.extend(delivery.body for delivery in deliveries)
            pending = super().submit(route, deliveries)

            def results() -> list[PipelineResult]:
                if first:
                    assert gate.wait(30)
                return pending()

            return results

    monkeypatch.setattr("integration.service.InlinePipelines", Gated)
    harness = make_service(batch_size=50, prefetch=50)  # one batch in the step at a time
    harness.publish([_order(100)])
    harness.wait_for(lambda: len(submitted) == 1)
    copied, other, bad = _order(1), _order(2), _order(3, quantity="1,5")
    harness.publish([copied, copied, copied, other, bad, bad])
    time.sleep(0.3)  # all six in the consumer's hands before the gate opens: one batch
    gate.set()
    harness.wait_for(harness.settled(inputs=3, parked=2))

    assert submitted.count(copied) == 1
    # A copy of a message that fails goes through the step itself: its failed message is
    # its own.
    assert submitted.count(bad) == 2
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
