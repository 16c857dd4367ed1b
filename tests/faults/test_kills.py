"""``kill -9`` at random moments while 1,200 process orders (and 120 repeats) flow in.

The service (two pipeline worker processes) is killed, process group and all,
four times at seeded random moments after it reports running, and restarted
each time while the orders keep arriving. Then: every order has its schedule
(0 lost), no order has two (0 duplicated effects), resends under the same
message id are counted apart, the inbox holds one row per order, nothing is
parked. The seed is printed; ``FAULT_TEST_SEED=<seed>`` repeats the schedule of
kills (the machine's timing still varies).
"""

from __future__ import annotations

import os
import random
import time

import pytest

from tests.faults.rig import FaultRig, Figures, OrderFeed, order_stream

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

ORDERS = 1200
REPEATS = 120
KILLS = 4
RATE = 100.0  # orders/s: the feed lasts about as long as the kills and restarts


def test_kill_9_at_random_moments_under_load(rig: FaultRig) -> None:
    seed = int(os.environ.get("FAULT_TEST_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nrandom kills: seed {seed} (FAULT_TEST_SEED={seed} repeats the schedule)")
    chance = random.Random(seed)
    stream = order_stream(ORDERS, REPEATS)
    service = rig.start(PIPELINE_WORKERS="2")
    feed = OrderFeed(rig, stream, rate=RATE).start()
    moments: list[str] = []
    flowing_at_kill: list[bool] = []
    for _ in range(KILLS):
        time.sleep(chance.uniform(0.3, 2.5))
        inbox = rig.counts()["inbox"]
        flowing_at_kill.append(feed.published < len(stream) or inbox < ORDERS)
        service.kill()
        moments.append(f"{time.monotonic() - service.started_at:.1f}s/inbox {inbox}")
        service = rig.start(PIPELINE_WORKERS="2")
    feed.join(120)
    rig.wait_done(ORDERS, timeout_s=120)
    assert service.stop() == 0, service.log_tail()

    rig.verify(
        Figures(
            test="random kill -9",
            orders=ORDERS,
            messages_published=feed.published,
            kills=KILLS,
            notes={"seed": seed, "kills_at": "; ".join(moments)},
        ),
        range(1, ORDERS + 1),
    )
    assert flowing_at_kill[0], f"the first kill came after the work was done: {moments}"
