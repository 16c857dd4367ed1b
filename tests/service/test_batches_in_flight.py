"""One consumer loop keeps several batches in the pipeline step, and settles them in order."""

from __future__ import annotations

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
