"""Replay, edit and discard against the running service, on the in-process broker and RabbitMQ.

Messages are parked by the service itself (published to its inbound exchange
as SAP would); the analyst's actions go through ``FailureActions`` with the
CLI's publishing code; what comes out of ``<prefix>.to-pasx`` is counted.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from lxml import etree

from contracts.errors import MappingError
from integration.audit import AuditTrail, audit_entries, load_audit_key
from integration.broker import Envelope, PublishResult
from integration.cli.publishing import publish_with_progress
from integration.replay import ActionResult, FailureActions
from integration.store import FailedMessage, FailedMessages, FailureStatus, Store
from tests.service.conftest import Harness
from tests.support.idoc_factory import OrderSpec, build_loipro

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NS = {"b": "http://www.mesa.org/xml/B2MML-V0600"}


def _order(batch: str, *, docnum: int = 777, number: str = "600777") -> bytes:
    return build_loipro([OrderSpec(docnum=f"{docnum:016d}", order_number=number, batch=batch)])


INVALID = _order("FAR_TOO_LONG_BATCH")
FIXED = _order("P26L0001")


def park_fixed_order(store: Store) -> int:
    """A correct order parked for a mapping gap since fixed (how it got there does not matter)."""
    now = datetime.now(UTC)
    return store.record_failure(
        FailedMessage.from_error(
            MappingError("unit KGX unknown"),
            body=FIXED,
            headers={"routing_key": "sap.LOIPRO", "message_id": "sap-777"},
            route="process-order",
            contract="sap-idoc/LOIPRO01/1",
            attempts=1,
            first_failed_at=now,
            last_failed_at=now,
        )
    )


def _store(harness: Harness) -> Store:
    store = harness.service.store
    assert store is not None
    return store


def _actions(harness: Harness) -> FailureActions:
    store = _store(harness)
    trail = AuditTrail(store.engine, load_audit_key(harness.service.settings))
    return FailureActions(FailedMessages(store.engine), trail, actor="analyst-test")


def _replay(
    harness: Harness, ids: Sequence[int], *, force: bool = False, reason: str = "fixed upstream"
) -> list[ActionResult]:
    def publish(
        envelopes: Sequence[Envelope], on_batch: Callable[[int, Sequence[PublishResult]], None]
    ) -> None:
        publisher = harness.service.broker.publisher()
        try:
            publish_with_progress(publisher, envelopes, label="replaying", on_batch=on_batch)
        finally:
            publisher.close()

    return _actions(harness).replay(
        ids,
        exchange=harness.service.topology.inbound_exchange,
        publish=publish,
        reason=reason,
        force=force,
    )


def _failed(harness: Harness) -> FailedMessages:
    return FailedMessages(_store(harness).engine)


def _status(harness: Harness, failure_id: int) -> FailureStatus:
    detail = _failed(harness).get(failure_id)
    assert detail is not None
    return detail.summary.status


def _park_one(harness: Harness, body: bytes) -> int:
    before = {item.id for item in _failed(harness).find()}
    harness.publish([body])
    harness.wait_for(lambda: len(_failed(harness).find()) > len(before))
    (new,) = [item.id for item in _failed(harness).find() if item.id not in before]
    return new


def _orders_in(outputs: Sequence[object]) -> list[str]:
    numbers: list[str] = []
    for delivery in outputs:
        root = etree.fromstring(delivery.body)  # type: ignore[attr-defined]
        numbers += root.xpath("//b:ProductionRequest/b:ID/text()", namespaces=NS)
    return numbers


def test_an_edited_copy_is_replayed_once_and_resolves_the_failure(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service()
    failure_id = _park_one(harness, INVALID)
    (item,) = _failed(harness).find(ids=[failure_id])
    assert item.field == "/LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG"
    assert item.order_numbers == ("600777",)
    assert harness.outputs(0, timeout_s=0.5) == []

    kept = _actions(harness).edit(
        failure_id, body=FIXED, reason="batch number corrected in SAP", source_name="fixed.xml"
    )
    assert kept.ok, kept.detail
    assert "1 field(s) changed" in kept.detail
    (outcome,) = _replay(harness, [failure_id], reason="batch number corrected in SAP")
    assert outcome.ok, outcome.detail

    harness.wait_for(lambda: _status(harness, failure_id) is FailureStatus.RESOLVED)
    outputs = harness.outputs(1)
    assert _orders_in(outputs) == ["000000600777"]
    detail = _failed(harness).get(failure_id)
    assert detail is not None
    assert detail.body == INVALID  # the original is never overwritten
    (revision,) = detail.revisions
    assert revision.body == FIXED
    assert revision.replayed_at is not None
    assert "-" in revision.diff
    assert "FAR_TOO_LONG_BATCH" in revision.diff
    assert "took effect" in (detail.summary.resolution or "")
    entries = [e for e in audit_entries(_store(harness).engine) if e.subject.startswith("failed")]
    assert [e.action.value for e in entries] == ["edit", "replay"]
    edit, replay = entries
    assert edit.before_sha256 == hashlib.sha256(INVALID).hexdigest()
    assert edit.after_sha256 == hashlib.sha256(FIXED).hexdigest()
    assert edit.details["fields"] == [
        {
            "where": "/LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG",
            "old": "FAR_TOO_LONG_BATCH",
            "new": "P26L0001",
        }
    ]
    assert replay.after_sha256 == hashlib.sha256(FIXED).hexdigest()
    assert replay.details["revision"] == revision.id
    assert replay.actor == "analyst-test"
    # A resolved message is not replayed again: nothing can take effect twice.
    (again,) = _replay(harness, [failure_id])
    assert not again.ok
    assert "resolved" in again.detail


def test_concurrent_replays_of_one_message_take_effect_once(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service()
    failure_id = _park_one(harness, INVALID)
    assert _actions(harness).edit(failure_id, body=FIXED, reason="r", source_name="f").ok
    start = threading.Barrier(3)
    results: list[list[ActionResult]] = []

    def analyst() -> None:
        start.wait()
        results.append(_replay(harness, [failure_id], force=True))

    threads = [threading.Thread(target=analyst) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(results) == 3
    assert any(outcome.ok for (outcome,) in results)
    harness.wait_for(lambda: _status(harness, failure_id) is FailureStatus.RESOLVED)
    harness.wait_for(harness.settled(inputs=1))
    assert _orders_in(harness.outputs(1)) == ["000000600777"]
    assert harness.count("inbox") == 1


def test_a_replay_of_a_message_that_had_taken_effect_has_no_second_effect(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service()
    harness.publish([FIXED])
    harness.wait_for(harness.settled(inputs=1))
    assert len(harness.outputs(1)) == 1
    # Parked for a mapping gap since fixed (how it got here does not matter to the replay).
    store = _store(harness)
    failure_id = park_fixed_order(store)

    (outcome,) = _replay(harness, [failure_id])

    assert outcome.ok, outcome.detail
    harness.wait_for(lambda: _status(harness, failure_id) is FailureStatus.RESOLVED)
    assert harness.outputs(0, timeout_s=0.5) == []
    detail = _failed(harness).get(failure_id)
    assert detail is not None
    assert "no second effect" in (detail.summary.resolution or "")


def test_hostile_and_malformed_messages_are_parked_readably_and_fail_again_as_a_chain(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service()
    refused = FIXTURES / "hostile" / "refused"
    bodies = {
        name: (refused / name).read_bytes()
        for name in ("xxe-file-passwd.xml", "billion-laughs.xml", "truncated.xml")
    }
    harness.publish(list(bodies.values()))
    harness.wait_for(lambda: len(_failed(harness).find()) == 3)
    items = {item.error_class: item for item in _failed(harness).find()}
    assert set(items) == {"HostileInput", "MalformedInput"}
    for item in _failed(harness).find():
        assert item.field, item
        assert item.error_text
        assert item.findings[0].line is not None
    malformed = items["MalformedInput"]
    assert "not well-formed XML" in malformed.error_text
    assert malformed.field == "column 23"

    (outcome,) = _replay(harness, [malformed.id])
    assert outcome.ok, outcome.detail

    harness.wait_for(lambda: len(_failed(harness).find()) == 4)
    detail = _failed(harness).get(malformed.id)
    assert detail is not None
    assert detail.summary.status is FailureStatus.REPLAYED
    (again,) = detail.replay_failures
    assert again.replay_of == malformed.id
    assert again.status is FailureStatus.PARKED
    assert again.fingerprint == malformed.fingerprint
    # Replaying it once more needs --force; discarding the new failure closes it.
    (refused_again,) = _replay(harness, [malformed.id])
    assert not refused_again.ok
    assert f"failed again as {again.id}" in refused_again.detail
    assert _actions(harness).discard(again.id, reason="broken sender, ticket INC-1").ok
    assert _status(harness, again.id) is FailureStatus.DISCARDED
