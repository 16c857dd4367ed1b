"""A message that kills the pipeline worker process working on it is parked; the rest flow.

The service runs with two pipeline worker processes, armed with
``MESBRIDGE_TEST_CRASH_ON`` (integration/faults.py): a worker that is about to
process a body containing the marker ends itself with ``os._exit(137)``, as a
crash in native code or the out-of-memory killer would end it. Before, such a
message returned its whole batch to the queue again and again and the route
stalled; now the batch is processed again one message at a time, the killer is
parked with a ``ProcessingFailure`` once it killed a fresh worker twice, and
every other order gets its one schedule.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from tests.faults.rig import ORDER_BASE, FaultRig, order_stream, wait_until

pytestmark = [pytest.mark.rabbitmq, pytest.mark.postgres]

ORDERS = 100
KILLER = 57


def test_a_message_that_kills_its_worker_is_parked_and_the_rest_flow(rig: FaultRig) -> None:
    stream = order_stream(ORDERS, 0)
    killer_body = dict(stream)[KILLER]
    marker = f"<AUFNR>{ORDER_BASE + KILLER}<"  # the killer's order number: in its body only
    assert [n for n, body in stream if marker.encode() in body] == [KILLER]
    rig.publish(stream)

    service = rig.start(PIPELINE_WORKERS="2", TEST_CRASH_ON=marker)

    def settled() -> bool:
        counts = rig.counts()
        return (
            counts["inbox"] == ORDERS - 1
            and counts["failed"] == 1
            and counts["unsent"] == 0
            and rig.queue(rig.input_queue)[0] == 0
        )

    wait_until(settled, 120, f"{ORDERS - 1} orders settled and 1 parked", rig.seen)
    assert service.process.poll() is None, "the service itself must survive its workers"
    log = service.log_path.read_text(errors="replace")
    assert log.count("hit MESBRIDGE_TEST_CRASH_ON") >= 3  # the batch, then twice alone
    assert "processing it again one message at a time" in log

    outputs = rig.drain_outputs()
    orders = sorted(int(header) - ORDER_BASE for _, header, _ in outputs)
    assert orders == [n for n in range(1, ORDERS + 1) if n != KILLER]
    assert len({message_id for message_id, _, _ in outputs}) == ORDERS - 1

    failed = rig.failed_messages()
    (summary,) = failed.find()
    assert summary.error_class == "ProcessingFailure"
    assert "the pipeline worker process died while processing this message" in summary.error_text
    assert "2 times in a fresh process" in summary.error_text
    assert summary.route == "process-order"
    assert summary.order_numbers == (str(ORDER_BASE + KILLER),)
    detail = failed.get(summary.id)
    assert detail is not None and detail.body == killer_body
    assert rig.queue(rig.topology.parked_queue)[0] == 1

    assert service.stop() == 0, service.log_tail()


def _process_group(pgid: int) -> list[int]:
    """Every live process in process group ``pgid`` (zombies are gone already)."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(stat.parent.name))
    return members


def test_workers_exit_when_the_main_process_is_killed_alone(rig: FaultRig) -> None:
    # The out-of-memory killer or a crash ends the main process only; its pipeline
    # workers (and the forkserver that started them) must not live on as orphans.
    service = rig.start(PIPELINE_WORKERS="2")
    group = service.pid  # the service runs in a session of its own: its group is its pid
    wait_until(
        lambda: len(_process_group(group)) >= 4,
        30,
        "the service, its forkserver and 2 pipeline workers",
        lambda: f"process group {group}: {_process_group(group)}",
    )

    os.kill(service.pid, signal.SIGKILL)
    service.process.wait(30)

    wait_until(
        lambda: _process_group(group) == [],
        15,
        "every process the service started gone with it",
        lambda: f"still running in process group {group}: {_process_group(group)}",
    )
