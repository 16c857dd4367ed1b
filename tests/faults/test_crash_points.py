"""Crash points: the service dies in the narrowest windows, restarts, loses and doubles nothing.

Each test preloads 300 process orders and 30 repeats of them (SAP resending
the same IDoc), starts ``mesbridge run`` armed with one crash point
(``MESBRIDGE_TEST_CRASH_AT``, integration/faults.py), waits for it to end
itself with status 137, checks that the crash left the state the window
promises, restarts it unarmed and waits until everything is delivered.

- ``mid-batch``: the batch was transformed, nothing settled: it is simply redone.
- ``after-commit-before-ack``: inbox and outbox committed, the deliveries not
  acknowledged: they come back, and the inbox turns them into duplicates.
- ``after-publish-before-mark-sent``: outputs confirmed by the broker, their outbox
  rows not marked sent: they go out again after the lease (``OUTBOX_LEASE_S``),
  under their own message ids, and are counted as resends, not as effects.
"""

from __future__ import annotations

import pytest

from integration.faults import EXIT_STATUS
from tests.faults.rig import FaultRig, Figures, order_stream

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

ORDERS = 300
REPEATS = 30


@pytest.mark.parametrize(
    ("point", "nth"),
    [("mid-batch", 3), ("after-commit-before-ack", 3), ("after-publish-before-mark-sent", 2)],
)
def test_crash_point_then_restart_loses_and_doubles_nothing(
    rig: FaultRig, point: str, nth: int
) -> None:
    stream = order_stream(ORDERS, REPEATS)
    published = rig.publish(stream)
    crashed = rig.start(crash_at=f"{point}:{nth}", wait=False)
    status = crashed.wait_exit(90)
    assert status == EXIT_STATUS, f"exit status {status}, not the crash:\n{crashed.log_tail()}"
    assert f"crash point {point} reached" in crashed.log_tail(40)
    rig.wait_consumers_gone()
    at_crash = rig.counts()
    ready, _ = rig.queue(rig.input_queue)
    outputs_at_crash, _ = rig.queue(rig.count_queue)
    # Only the distinct orders come before the repeats, and the crash is in the first batches:
    # whatever the inbox holds beyond the acknowledged inputs is the crashed, unacked batch.
    back_again = at_crash["inbox"] + ready - published
    unmarked = outputs_at_crash - at_crash["sent"]
    if point == "after-commit-before-ack":
        assert back_again > 0, f"no committed input left unacknowledged: {at_crash}, ready {ready}"
    if point == "after-publish-before-mark-sent":
        assert unmarked > 0, f"no output published and left unmarked: {at_crash}"

    restarted = rig.start()
    rig.wait_done(ORDERS)
    assert restarted.stop() == 0, restarted.log_tail()

    figures = rig.verify(
        Figures(
            test=f"crash-point {point}",
            orders=ORDERS,
            messages_published=published,
            kills=1,
            notes={"inbox_at_crash": at_crash["inbox"], "redelivered_settled": max(back_again, 0)},
        ),
        range(1, ORDERS + 1),
    )
    if point == "after-publish-before-mark-sent":
        assert figures.resends >= unmarked, (
            f"{unmarked} output(s) were out and unmarked at the crash; "
            f"only {figures.resends} came again"
        )
