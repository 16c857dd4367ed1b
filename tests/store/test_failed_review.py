"""The analyst's view of failed messages: filters, groups, details, status changes, resolution.

Written once, run on SQLite and PostgreSQL (``database_url`` is parametrised).
"""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from contracts.errors import ContractViolation, Finding, MalformedInput, MappingError
from integration.store import (
    FailedMessage,
    FailedMessages,
    FailureStatus,
    InboundRecord,
    SettleOutcome,
    Store,
    downgrade,
    upgrade,
)
from integration.store.engine import create_store_engine
from integration.store.failed import replay_link
from tests.support.idoc_factory import OrderSpec, build_loipro

T0 = datetime(2026, 5, 9, 7, 0, tzinfo=UTC)
ORDER = build_loipro([OrderSpec(order_number="1000234", batch="G26L0042_RETEST")])


def charg_violation(index: int = 1) -> ContractViolation:
    return ContractViolation(
        "does not satisfy sap-idoc/LOIPRO01/1 (1 problem)",
        message_ref="sap-idoc:ERPCLNT200:LOIPRO:0000000000815001",
        contract="sap-idoc/LOIPRO01/1",
        findings=[
            Finding(
                where=f"/LOIPRO01/IDOC[{index}]/E1AFKOL/E1AFPOL/CHARG",
                line=40 + index,
                value=f"BATCH_{index:04d}_TOO_LONG",
                expected="at most 10 characters (SAP CHAR 10)",
            )
        ],
    )


def failure(
    error: Exception | None = None,
    *,
    body: bytes = ORDER,
    route: str = "process-order",
    at: datetime = T0,
    replay_of: int | None = None,
) -> FailedMessage:
    chosen = error if error is not None else charg_violation()
    assert isinstance(chosen, ContractViolation | MappingError | MalformedInput)
    return FailedMessage.from_error(
        chosen,
        body=body,
        headers={"routing_key": "sap.LOIPRO", "message_id": "m-1"},
        route=route,
        contract=None,
        attempts=1,
        first_failed_at=at,
        last_failed_at=at,
        replay_of=replay_of,
    )


def settled_replay(body: bytes, replay_of: int, key: str = "sap-idoc:X:LOIPRO:1") -> InboundRecord:
    return InboundRecord(
        idempotency_key=key,
        content_sha256=hashlib.sha256(body).hexdigest(),
        route="process-order",
        contract="sap-idoc/LOIPRO01/1",
        source_message_id="m-1",
        received_at=T0,
        replay_of=replay_of,
    )


@pytest.fixture
def failed(store: Store) -> FailedMessages:
    return FailedMessages(store.engine)


def status_of(failed: FailedMessages, failure_id: int) -> FailureStatus:
    detail = failed.get(failure_id)
    assert detail is not None
    return detail.summary.status


def test_a_failure_is_stored_with_its_group_orders_and_contract(
    store: Store, failed: FailedMessages
) -> None:
    failure_id = store.record_failure(failure())

    (item,) = failed.find()
    assert item.id == failure_id
    assert item.status is FailureStatus.PARKED
    # The violation names its contract although the pipeline never learnt it.
    assert item.contract == "sap-idoc/LOIPRO01/1"
    assert item.order_numbers == ("1000234",)
    assert item.field == "/LOIPRO01/IDOC[1]/E1AFKOL/E1AFPOL/CHARG"
    assert "BATCH_0001_TOO_LONG" in item.error_summary
    assert item.fingerprint == failure().fingerprint.digest
    assert item.group_label == (
        "ContractViolation sap-idoc/LOIPRO01/1 at /LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG"
    )
    kept = store.get_failure(failure_id)
    assert kept is not None
    assert kept.order_numbers == ("1000234",)
    assert kept.fingerprint == failure().fingerprint


def test_filters_select_by_route_status_time_order_and_group(
    store: Store, failed: FailedMessages
) -> None:
    other_order = build_loipro([OrderSpec(order_number="000001000240")])
    a = store.record_failure(failure(at=T0))
    b = store.record_failure(failure(charg_violation(2), at=T0 + timedelta(hours=1)))
    c = store.record_failure(failure(body=other_order, route="performance", at=T0))
    malformed = MalformedInput(
        "not well-formed", findings=[Finding(where="column 7", line=1, expected="well-formed XML")]
    )
    d = store.record_failure(failure(malformed, body=b"<broken", at=T0 + timedelta(hours=2)))
    with store.engine.begin() as connection:
        assert failed.change_status(
            connection, a, to=FailureStatus.DISCARDED, allowed_from={FailureStatus.PARKED}
        )

    def ids(**filters: object) -> list[int]:
        return [item.id for item in failed.find(**filters)]  # type: ignore[arg-type]

    assert ids() == [d, b, c, a]  # most recent failure first
    assert ids(route="performance") == [c]
    assert ids(status=FailureStatus.DISCARDED) == [a]
    assert ids(status=FailureStatus.PARKED) == [d, b, c]
    assert ids(since=T0 + timedelta(minutes=30)) == [d, b]
    assert ids(order="1000240") == [c]
    assert ids(order="000001000240") == [c]  # SAP's zero-padded form finds it too
    assert ids(order="100024") == []  # a number is matched whole, never as a prefix
    assert ids(order="10%") == []
    group = failure().fingerprint.digest
    assert ids(group=group) == [b, c, a]  # positions and values do not split the group
    assert ids(group=group[:5]) == [b, c, a]
    assert ids(limit=2) == [d, b]
    assert failed.count() == 4
    assert failed.count(group=group, status=FailureStatus.PARKED) == 2
    assert failed.ids(group=group, status=FailureStatus.PARKED) == [b, c]


def test_groups_count_a_master_data_gap_as_one_problem(
    store: Store, failed: FailedMessages
) -> None:
    for index in range(1, 26):
        store.record_failure(failure(charg_violation(index), at=T0 + timedelta(minutes=index)))
    unit = MappingError(
        "unit cannot be mapped",
        findings=[Finding(where="order 600001: E1AFKOL/GMEIN", value="XYZ", expected="a unit")],
    )
    store.record_failure(failure(unit, at=T0))

    groups = failed.groups()

    assert [group.count for group in groups] == [25, 1]
    big = groups[0]
    assert big.label == (
        "ContractViolation sap-idoc/LOIPRO01/1 at /LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG"
    )
    assert big.statuses == {"parked": 25}
    assert big.routes == ("process-order",)
    assert big.first_failed_at == T0 + timedelta(minutes=1)
    assert big.last_failed_at == T0 + timedelta(minutes=25)
    assert groups[1].label == "MappingError (unidentified) at order #: E1AFKOL/GMEIN"


def test_status_changes_are_conditional(store: Store, failed: FailedMessages) -> None:
    failure_id = store.record_failure(failure())
    with store.engine.begin() as connection:
        assert failed.change_status(
            connection, failure_id, to=FailureStatus.REPLAYED, allowed_from={FailureStatus.PARKED}
        )
        # A second analyst expecting "parked" is refused: the row moved on.
        assert not failed.change_status(
            connection, failure_id, to=FailureStatus.DISCARDED, allowed_from={FailureStatus.PARKED}
        )
        assert failed.status_of(connection, failure_id) is FailureStatus.REPLAYED
        assert failed.status_of(connection, 987654) is None


def test_revisions_are_kept_beside_the_untouched_original(
    store: Store, failed: FailedMessages
) -> None:
    failure_id = store.record_failure(failure())
    fixed = ORDER.replace(b"G26L0042_RETEST", b"G26L0042")
    with store.engine.begin() as connection:
        first = failed.add_revision(
            connection,
            failure_id,
            body=fixed,
            actor="alice",
            reason="batch",
            diff="-a\n+b\n",
            now=T0,
        )
        second = failed.add_revision(
            connection,
            failure_id,
            body=fixed + b"\n",
            actor="bob",
            reason="ws",
            diff="+\n",
            now=T0 + timedelta(minutes=1),
        )
        failed.mark_revision_replayed(connection, second, T0 + timedelta(minutes=2))

    detail = failed.get(failure_id)

    assert detail is not None
    assert detail.body == ORDER
    assert [r.id for r in detail.revisions] == [first, second]
    assert detail.revisions[0].actor == "alice"
    assert detail.revisions[0].sha256 == hashlib.sha256(fixed).hexdigest()
    assert detail.revisions[1].replayed_at == T0 + timedelta(minutes=2)
    assert detail.current_body == fixed + b"\n"
    assert detail.current_sha256 == hashlib.sha256(fixed + b"\n").hexdigest()
    assert detail.body_sha256 == hashlib.sha256(ORDER).hexdigest()


def _mark(store: Store, failed: FailedMessages, failure_id: int, status: FailureStatus) -> None:
    with store.engine.begin() as connection:
        assert failed.change_status(
            connection, failure_id, to=status, allowed_from=set(FailureStatus)
        )


@pytest.mark.parametrize("outcome", [SettleOutcome.ACCEPTED, SettleOutcome.DUPLICATE])
def test_a_settled_replay_resolves_its_failed_message(
    store: Store, failed: FailedMessages, outcome: SettleOutcome
) -> None:
    failure_id = store.record_failure(failure())
    _mark(store, failed, failure_id, FailureStatus.REPLAYED)
    record = settled_replay(ORDER, failure_id)
    if outcome is SettleOutcome.DUPLICATE:
        # The message had taken effect before: its replay is a duplicate.
        store.settle_batch([dataclasses.replace(record, replay_of=None)])

    assert store.settle_batch([record]) == [outcome]

    detail = failed.get(failure_id)
    assert detail is not None
    assert detail.summary.status is FailureStatus.RESOLVED
    assert detail.summary.resolved_at is not None
    expected = "took effect" if outcome is SettleOutcome.ACCEPTED else "no second effect"
    assert expected in (detail.summary.resolution or "")


def test_a_replay_settled_before_the_command_marked_it_still_resolves(
    store: Store, failed: FailedMessages
) -> None:
    failure_id = store.record_failure(failure())
    store.settle_batch([settled_replay(ORDER, failure_id)])
    assert status_of(failed, failure_id) is FailureStatus.RESOLVED


def test_discarded_messages_and_conflicts_are_not_resolved(
    store: Store, failed: FailedMessages
) -> None:
    discarded = store.record_failure(failure())
    _mark(store, failed, discarded, FailureStatus.DISCARDED)
    replayed = store.record_failure(failure())
    _mark(store, failed, replayed, FailureStatus.REPLAYED)
    store.settle_batch([settled_replay(ORDER, discarded, key="k1")])
    store.settle_batch([settled_replay(b"other content", 0, key="k2")])

    # Same key as k2, other content: a CONFLICT, which is no resolution.
    outcome = store.settle_batch([settled_replay(ORDER, replayed, key="k2")])

    assert outcome == [SettleOutcome.CONFLICT]
    assert status_of(failed, discarded) is FailureStatus.DISCARDED
    assert status_of(failed, replayed) is FailureStatus.REPLAYED


def test_a_stray_replay_header_resolves_and_links_nothing(
    store: Store, failed: FailedMessages
) -> None:
    victim = store.record_failure(failure())
    other = b"<LOIPRO01>other</LOIPRO01>"

    store.settle_batch([settled_replay(other, victim)])
    stray = store.record_failure(failure(body=other, replay_of=victim))
    missing = store.record_failure(failure(replay_of=987654))

    assert status_of(failed, victim) is FailureStatus.PARKED
    assert store.get_failure(stray).replay_of is None  # type: ignore[union-attr]
    assert store.get_failure(missing).replay_of is None  # type: ignore[union-attr]
    with store.engine.connect() as connection:
        assert replay_link(connection, victim, hashlib.sha256(ORDER).hexdigest()) == victim
        assert replay_link(connection, victim, hashlib.sha256(other).hexdigest()) is None


def test_an_edited_copy_links_and_resolves_like_the_original(
    store: Store, failed: FailedMessages
) -> None:
    failure_id = store.record_failure(failure())
    fixed = ORDER.replace(b"G26L0042_RETEST", b"G26L0042")
    with store.engine.begin() as connection:
        failed.add_revision(
            connection, failure_id, body=fixed, actor="a", reason="r", diff="", now=T0
        )
    _mark(store, failed, failure_id, FailureStatus.REPLAYED)

    store.settle_batch([settled_replay(fixed, failure_id)])

    assert status_of(failed, failure_id) is FailureStatus.RESOLVED


def test_a_replay_that_fails_again_is_chained_and_resolving_it_closes_the_chain(
    store: Store, failed: FailedMessages
) -> None:
    first = store.record_failure(failure())
    _mark(store, failed, first, FailureStatus.REPLAYED)
    second = store.record_failure(failure(replay_of=first, at=T0 + timedelta(hours=1)))
    _mark(store, failed, second, FailureStatus.REPLAYED)

    detail = failed.get(first)
    assert detail is not None
    assert [item.id for item in detail.replay_failures] == [second]
    assert failed.get(second).summary.replay_of == first  # type: ignore[union-attr]
    assert status_of(failed, first) is FailureStatus.REPLAYED

    store.settle_batch([settled_replay(ORDER, second)])

    assert status_of(failed, second) is FailureStatus.RESOLVED
    assert status_of(failed, first) is FailureStatus.RESOLVED
    resolution = failed.get(first).summary.resolution  # type: ignore[union-attr]
    assert resolution is not None
    assert f"failed message {second}" in resolution


def test_a_backfilled_row_gets_its_fingerprint_on_upgrade(database_url: str) -> None:
    engine = create_store_engine(database_url)
    try:
        upgrade(engine, "0002")
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO failed_message (route, contract, body, headers, error_class, "
                    "error_text, findings, attempts, first_failed_at, last_failed_at, status) "
                    "VALUES ('process-order', 'sap-idoc/LOIPRO01/1', :body, '{}', "
                    "'ContractViolation', 'x', :findings, 1, :at, :at, 'parked')"
                ),
                {
                    "body": ORDER,
                    "findings": '[{"where": "/LOIPRO01/IDOC[1]/E1AFKOL/E1AFPOL/CHARG", '
                    '"line": 41, "value": "x", "expected": "y"}]',
                    "at": "2026-05-09T07:00:00.000000Z" if engine.dialect.name == "sqlite" else T0,
                },
            )
        upgrade(engine)
        (item,) = FailedMessages(engine).find()
        assert item.fingerprint == failure().fingerprint.digest
        assert item.order_numbers == ("1000234",)
        downgrade(engine, "0002")
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM failed_message")).scalar() == 1
    finally:
        engine.dispose()
