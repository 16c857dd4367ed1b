"""Failed-message store: every failure is kept whole, nothing is deduplicated away.

Written once, run on SQLite and PostgreSQL (``database_url`` is parametrised).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contracts.errors import ContractViolation, Finding
from integration.store import FailedMessage, Store

Counts = Callable[[], dict[str, int]]
FIRST = datetime(2026, 5, 9, 7, 0, 0, 1, tzinfo=UTC)

# Not UTF-8, with a NUL: the original bytes must survive unchanged.
ORIGINAL = b"<?xml version='1.0' encoding='ISO-8859-1'?><LOIPRO01>\xe4\x00</LOIPRO01>"


def violation() -> ContractViolation:
    return ContractViolation(
        "LOIPRO01 does not satisfy contract sap-idoc/LOIPRO01/1",
        message_ref="sap-idoc:ERPCLNT200:LOIPRO:0000000000815001",
        findings=[
            Finding(
                where="/LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG",
                line=42,
                value="CRBN0001_LOT01",
                expected="at most 10 characters (SAP batch number)",
            ),
            Finding(where="E1AFKOL/GMEIN", expected="a unit of measure"),
        ],
    )


def parked(**changes: Any) -> FailedMessage:
    failure = FailedMessage.from_error(
        violation(),
        body=ORIGINAL,
        headers={"content-type": "application/xml", "x-sndprn": "ERPCLNT200"},
        route="sap.LOIPRO",
        contract="sap-idoc/LOIPRO01/1",
        attempts=1,
        first_failed_at=FIRST,
        last_failed_at=FIRST,
        idempotency_key="sap-idoc:ERPCLNT200:LOIPRO:0000000000815001",
    )
    return dataclasses.replace(failure, **changes)


def test_a_failure_is_kept_whole(store: Store) -> None:
    failure = parked()

    failure_id = store.record_failure(failure)

    assert store.get_failure(failure_id) == failure
    kept = store.get_failure(failure_id)
    assert kept is not None
    assert kept.body == ORIGINAL
    assert kept.error_class == "ContractViolation"
    assert "CRBN0001_LOT01" in kept.error_text
    assert kept.findings[0] == Finding(
        where="/LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG",
        line=42,
        value="CRBN0001_LOT01",
        expected="at most 10 characters (SAP batch number)",
    )
    assert kept.status == "parked"


def test_the_same_failure_twice_is_two_records(store: Store, counts: Counts) -> None:
    first = store.record_failure(parked())
    second = store.record_failure(parked())

    assert first != second
    assert store.get_failure(first) == store.get_failure(second)
    assert counts()["failed_message"] == 2


def test_a_failure_before_identification_has_no_contract_and_no_key(store: Store) -> None:
    unreadable = FailedMessage(
        body=b"\x00not xml",
        headers={},
        route="sap.LOIPRO",
        contract=None,
        error_class="MalformedInput",
        error_text="not well-formed XML: line 1, column 1",
        attempts=1,
        first_failed_at=FIRST,
        last_failed_at=FIRST,
    )

    kept = store.get_failure(store.record_failure(unreadable))

    assert kept == unreadable
    assert kept is not None
    assert (kept.contract, kept.idempotency_key, kept.findings) == (None, None, ())


def test_a_retried_failure_keeps_both_timestamps(store: Store) -> None:
    later = FIRST + timedelta(minutes=17, microseconds=5)
    kept = store.get_failure(store.record_failure(parked(attempts=5, last_failed_at=later)))

    assert kept is not None
    assert (kept.attempts, kept.first_failed_at, kept.last_failed_at) == (5, FIRST, later)


def test_an_unknown_failure_id_is_none(store: Store) -> None:
    assert store.get_failure(987654) is None


def test_nonsense_records_are_refused_before_the_database() -> None:
    with pytest.raises(ValueError, match="attempts"):
        parked(attempts=0)
    with pytest.raises(ValueError, match="time zone"):
        parked(first_failed_at=datetime(2026, 5, 9))
