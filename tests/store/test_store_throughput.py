"""Throughput of settle_batch for batches of 1 and 100: printed, not asserted (machines differ).

The test still checks that every input was accepted and every output is
pending, so a fast but wrong store cannot pass. Figures go to docs/storage.md.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from integration.store import InboundRecord, SettleOutcome, Store

RecordFactory = Callable[..., InboundRecord]


@pytest.mark.parametrize(("batch_size", "messages"), [(1, 600), (100, 6000)])
def test_settle_throughput(
    store: Store,
    make_record: RecordFactory,
    batch_size: int,
    messages: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    records = [
        make_record(f"sap-idoc:ERPCLNT200:LOIPRO:{n:016d}", body=f"<IDOC n='{n}'/>".encode())
        for n in range(messages)
    ]
    batches = [records[at : at + batch_size] for at in range(0, messages, batch_size)]
    store.settle_batch(batches[0])  # warm up: pool, statement cache

    started = time.perf_counter()
    outcomes = [outcome for batch in batches[1:] for outcome in store.settle_batch(batch)]
    elapsed = time.perf_counter() - started

    assert outcomes == [SettleOutcome.ACCEPTED] * (messages - batch_size)
    assert store.outbox_backlog() == messages
    backend = store.engine.dialect.name
    with capsys.disabled():
        rate = (messages - batch_size) / elapsed
        print(
            f"\n[store throughput] {backend:10} batch {batch_size:>3}: "
            f"{rate:>8,.0f} msg/s ({len(batches) - 1} transactions in {elapsed:.2f} s)"
        )
