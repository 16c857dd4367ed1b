"""Idempotency capability: accept, duplicate, conflict, in-batch repeats, atomicity, concurrency.

Written once, run on SQLite and PostgreSQL (``database_url`` is parametrised).
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import exc as sa_exc

from contracts.errors import TransientError
from integration.store import InboundRecord, SettleOutcome, Store
from tests.store.conftest import sha256

ACCEPTED, DUPLICATE, CONFLICT = (
    SettleOutcome.ACCEPTED,
    SettleOutcome.DUPLICATE,
    SettleOutcome.CONFLICT,
)
RecordFactory = Callable[..., InboundRecord]
Counts = Callable[[], dict[str, int]]
KEY = "sap-idoc:ERPCLNT200:LOIPRO:0000000000815001"


def test_an_accepted_input_leaves_its_outputs_pending(
    store: Store, make_record: RecordFactory, counts: Counts
) -> None:
    record = make_record(KEY, outputs=2)

    assert store.settle_batch([record]) == [ACCEPTED]

    assert counts() == {"inbox": 1, "outbox": 2, "failed_message": 0}
    assert store.outbox_backlog() == 2
    pending = store.pending_outbox(limit=10)
    assert [(r.message_id, r.destination, r.exchange, r.routing_key) for r in pending] == [
        (m.message_id, m.destination, m.exchange, m.routing_key) for m in record.outputs
    ]
    assert [r.body for r in pending] == [m.body for m in record.outputs]
    assert [dict(r.headers) for r in pending] == [dict(m.headers) for m in record.outputs]
    assert {r.content_type for r in pending} == {"application/xml"}
    entry = store.lookup(KEY)
    assert entry is not None
    assert {r.inbox_id for r in pending} == {entry.id}
    assert (entry.content_sha256, entry.route, entry.contract, entry.source_message_id) == (
        record.content_sha256,
        "sap.LOIPRO",
        "sap-idoc/LOIPRO01/1",
        f"amqp-{KEY}",
    )


def test_settled_contents_names_the_key_each_known_content_was_settled_under(
    store: Store, make_record: RecordFactory
) -> None:
    first = make_record(KEY, body=b"<IDOC>1</IDOC>")
    second = make_record(KEY.replace("815001", "815002"), body=b"<IDOC>2</IDOC>")
    conflicting = make_record(KEY, body=b"<IDOC>1, changed</IDOC>")
    assert store.settle_batch([first, second, conflicting]) == [ACCEPTED, ACCEPTED, CONFLICT]
    never_seen = sha256(b"<IDOC>3</IDOC>")

    found = store.settled_contents(
        [first.content_sha256, never_seen, second.content_sha256, conflicting.content_sha256]
    )

    assert found == {
        first.content_sha256: first.idempotency_key,
        second.content_sha256: second.idempotency_key,
    }
    assert store.settled_contents([]) == {}


def test_an_input_without_outputs_is_still_remembered(
    store: Store, make_record: RecordFactory, counts: Counts
) -> None:
    assert store.settle_batch([make_record(KEY, outputs=0)]) == [ACCEPTED]
    assert store.settle_batch([make_record(KEY, outputs=0)]) == [DUPLICATE]
    assert counts() == {"inbox": 1, "outbox": 0, "failed_message": 0}


def test_same_key_and_content_is_a_duplicate_that_writes_nothing(
    store: Store, make_record: RecordFactory, counts: Counts
) -> None:
    first = make_record(KEY, outputs=2)
    store.settle_batch([first])
    # Redelivered later: same bytes, new receive time; its outputs would be new rows.
    again = make_record(KEY, outputs=3, tag="-again", received_at=datetime(2026, 5, 10, tzinfo=UTC))

    assert store.settle_batch([again]) == [DUPLICATE]

    assert counts() == {"inbox": 1, "outbox": 2, "failed_message": 0}
    entry = store.lookup(KEY)
    assert entry is not None
    assert entry.received_at == first.received_at


def test_same_key_other_content_is_a_conflict_that_writes_nothing(
    store: Store, make_record: RecordFactory, counts: Counts
) -> None:
    store.settle_batch([make_record(KEY, body=b"<IDOC>v1</IDOC>")])
    changed = make_record(KEY, body=b"<IDOC>v2</IDOC>", tag="-v2")

    assert store.settle_batch([changed]) == [CONFLICT]

    assert counts() == {"inbox": 1, "outbox": 1, "failed_message": 0}
    entry = store.lookup(KEY)
    assert entry is not None
    assert entry.content_sha256 != changed.content_sha256


def test_repeats_inside_one_batch_first_wins(
    store: Store, make_record: RecordFactory, counts: Counts
) -> None:
    store.settle_batch([make_record("old", body=b"old")])
    batch = [
        make_record("b", body=b"b1"),
        make_record("a", body=b"a1"),
        make_record("a", body=b"a1", tag="-2"),
        make_record("a", body=b"a2", tag="-3"),
        make_record("old", body=b"old", tag="-2"),
        make_record("old", body=b"changed", tag="-3"),
        make_record("b", body=b"b2", tag="-2"),
        make_record("c", body=b"c1"),
    ]

    outcomes = store.settle_batch(batch)

    assert outcomes == [
        ACCEPTED,
        ACCEPTED,
        DUPLICATE,
        CONFLICT,
        DUPLICATE,
        CONFLICT,
        CONFLICT,
        ACCEPTED,
    ]
    assert counts() == {"inbox": 4, "outbox": 4, "failed_message": 0}
    assert sorted(r.message_id for r in store.pending_outbox(limit=10)) == [
        "a/out-0",
        "b/out-0",
        "c/out-0",
        "old/out-0",
    ]


def test_a_repeat_of_a_conflict_in_the_same_batch_is_still_a_conflict(
    store: Store, make_record: RecordFactory, counts: Counts
) -> None:
    store.settle_batch([make_record(KEY, body=b"v1")])

    outcomes = store.settle_batch(
        [
            make_record(KEY, body=b"v2", tag="-2"),
            make_record(KEY, body=b"v2", tag="-3"),  # judged against v1, as it would be alone
            make_record(KEY, body=b"v1", tag="-4"),
        ]
    )

    assert outcomes == [CONFLICT, CONFLICT, DUPLICATE]
    assert counts() == {"inbox": 1, "outbox": 1, "failed_message": 0}


def test_a_batch_has_the_outcomes_of_settling_one_by_one(
    store: Store, make_record: RecordFactory
) -> None:
    seen = Counter[SettleOutcome]()
    for seed in range(30):
        rng = random.Random(seed)
        # Some keys already hold a version, so a batch's first entry can itself be a repeat.
        before = {k: rng.choice([b"1", b"2"]) for k in "abc" if rng.random() < 0.5}
        entries = [(rng.choice("abc"), rng.choice([b"1", b"2"])) for _ in range(rng.randint(1, 12))]
        for mode in ("batch", "single"):
            store.settle_batch(
                [make_record(f"{seed}:{mode}:{k}", body=b, tag="-0") for k, b in before.items()]
            )
        batched = store.settle_batch(
            [
                make_record(f"{seed}:batch:{k}", body=b, tag=f"-{n + 1}")
                for n, (k, b) in enumerate(entries)
            ]
        )
        one_by_one = [
            outcome
            for n, (k, b) in enumerate(entries)
            for outcome in store.settle_batch(
                [make_record(f"{seed}:single:{k}", body=b, tag=f"-{n + 1}")]
            )
        ]
        assert batched == one_by_one, (seed, before, entries)
        seen.update(batched)
    assert set(seen) == {ACCEPTED, DUPLICATE, CONFLICT}  # every case was exercised


def test_an_empty_batch_is_no_work(store: Store, counts: Counts) -> None:
    assert store.settle_batch([]) == []
    assert counts() == {"inbox": 0, "outbox": 0, "failed_message": 0}


def test_a_batch_that_fails_midway_leaves_nothing(
    store: Store, make_record: RecordFactory, counts: Counts, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = make_record("k1", outputs=2)
    also_good = make_record("k2")

    def fail(*_args: object, **_kwargs: object) -> None:
        # After the inbox and outbox rows are written: the transaction must undo them.
        raise sa_exc.OperationalError("INSERT INTO order_context", {}, Exception("lost"))

    with monkeypatch.context() as patched:
        patched.setattr("integration.store.store.save_order_contexts", fail)
        with pytest.raises(TransientError):
            store.settle_batch([good, also_good])

    assert counts() == {"inbox": 0, "outbox": 0, "failed_message": 0}
    assert store.lookup("k1") is None
    # The same inputs are then accepted as new.
    assert store.settle_batch([good, also_good]) == [ACCEPTED, ACCEPTED]
    assert counts() == {"inbox": 2, "outbox": 3, "failed_message": 0}


def test_an_input_whose_output_was_made_before_takes_no_effect_and_the_rest_does(
    store: Store, make_record: RecordFactory, counts: Counts
) -> None:
    first = make_record("k1", outputs=2)
    store.settle_batch([first])
    clash = InboundRecord(  # a new key, but k1's output: the same IDoc in another message
        idempotency_key="k9",
        content_sha256=make_record("k9").content_sha256,
        route="sap.LOIPRO",
        contract="sap-idoc/LOIPRO01/1",
        source_message_id=None,
        received_at=datetime(2026, 5, 9, tzinfo=UTC),
        outputs=first.outputs[1:],
    )

    outcomes = store.settle_batch([make_record("k2"), clash])

    assert outcomes == [ACCEPTED, SettleOutcome.REPEATED_OUTPUT]
    assert counts() == {"inbox": 2, "outbox": 3, "failed_message": 0}
    assert store.lookup("k9") is None


def test_concurrent_settlers_accept_each_key_exactly_once(
    open_stores: Callable[..., Store], make_record: RecordFactory, store: Store, counts: Counts
) -> None:
    keys = [f"sap-idoc:ERPCLNT200:LOIPRO:{n:016d}" for n in range(240)]
    instances = [open_stores(instance_id=f"instance-{n}") for n in range(3)]
    start = threading.Barrier(len(instances))
    results: list[list[tuple[str, SettleOutcome]]] = [[] for _ in instances]
    errors: list[BaseException] = []

    def settle(index: int) -> None:
        order = keys[:]
        random.Random(index).shuffle(order)  # every instance sees the keys in its own order
        try:
            start.wait()
            for at in range(0, len(order), 20):
                batch = [make_record(key, body=key.encode()) for key in order[at : at + 20]]
                outcomes = instances[index].settle_batch(batch)
                results[index].extend(
                    zip([r.idempotency_key for r in batch], outcomes, strict=True)
                )
        except BaseException as error:  # reported below, with the thread's traceback
            errors.append(error)

    threads = [threading.Thread(target=settle, args=(n,)) for n in range(len(instances))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert not errors, errors
    accepted = Counter(key for result in results for key, o in result if o is ACCEPTED)
    assert accepted == Counter(dict.fromkeys(keys, 1))
    every = Counter(o for result in results for _, o in result)
    assert every == {ACCEPTED: len(keys), DUPLICATE: len(keys) * (len(instances) - 1)}
    assert counts() == {"inbox": len(keys), "outbox": len(keys), "failed_message": 0}
