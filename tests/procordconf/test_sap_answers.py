"""SAP answers: accepted, locked (transient: retry) or rejected (permanent: park)."""

from __future__ import annotations

import pytest

from contracts.errors import PermanentError, TransientError
from transforms.sap_answers import (
    DEFAULT_LOCK_MESSAGES,
    LockMessage,
    SapMessage,
    SapRejected,
    is_lock,
    messages_from_odata_error,
    raise_for_answer,
)

REF = "b2mml:PASX01:EV-77-0001"
LOCKED = SapMessage(
    type="E", id="M3", number="897", message="The plant data of material 4711 is locked by MILLER"
)
CLOSED = SapMessage(type="E", id="RU", number="494", message="Order 1000510 closed")


def test_an_answer_without_errors_is_accepted() -> None:
    answer = [
        SapMessage(type="S", id="RU", number="100", message="Confirmation saved"),
        SapMessage(type="W", id="RU", number="030", message="Actual quantity exceeds plan"),
        SapMessage(type="I", id="RU", number="200", message="Information"),
    ]

    assert raise_for_answer(answer, message_ref=REF) == answer
    assert raise_for_answer([], message_ref=REF) == []


@pytest.mark.parametrize("lock", DEFAULT_LOCK_MESSAGES, ids=lambda lock: lock.key)
def test_every_default_lock_message_is_transient(lock: LockMessage) -> None:
    message = SapMessage(type="E", id=lock.id, number=lock.number, message="locked")

    with pytest.raises(TransientError) as caught:
        raise_for_answer([message], message_ref=REF)

    assert not isinstance(caught.value, PermanentError)
    assert caught.value.message_ref == REF
    (finding,) = caught.value.findings
    assert finding.where == f"SAP message {lock.id} {lock.number} (type E)"
    assert finding.value == "locked"
    assert "sent again after a retry delay" in finding.expected


def test_a_lock_makes_the_whole_answer_transient_and_names_every_error() -> None:
    with pytest.raises(TransientError) as caught:
        raise_for_answer([CLOSED, LOCKED], message_ref=REF)

    assert caught.value.summary == (
        "SAP answered M3 897: locked by another user or process; the posting is retried later"
    )
    assert [f.where for f in caught.value.findings] == [
        "SAP message RU 494 (type E)",
        "SAP message M3 897 (type E)",
    ]
    assert "correct the data" in caught.value.findings[0].expected


def test_any_other_error_is_a_permanent_rejection() -> None:
    with pytest.raises(SapRejected) as caught:
        raise_for_answer([CLOSED], message_ref=REF)

    error = caught.value
    assert isinstance(error, PermanentError)
    assert error.summary == "SAP rejected the posting (1 error message)"
    (finding,) = error.findings
    assert (finding.where, finding.value) == ("SAP message RU 494 (type E)", "Order 1000510 closed")


@pytest.mark.parametrize("kind", ["A", "X", ""])
def test_abort_and_unknown_message_types_are_never_success(kind: str) -> None:
    with pytest.raises(SapRejected):
        raise_for_answer([SapMessage(type=kind, id="RU", number="494")], message_ref=REF)


def test_a_lock_warning_is_not_an_error() -> None:
    warning = SapMessage(type="W", id="M3", number="897")

    assert raise_for_answer([warning], message_ref=REF) == [warning]


def test_lock_messages_are_matched_by_class_and_number_only() -> None:
    assert is_lock(SapMessage(type="E", id="m3", number="897"))
    assert is_lock(SapMessage(type="E", id="MC", number="601"))
    assert not is_lock(SapMessage(type="E", id="M3", number="898"))
    assert not is_lock(SapMessage(type="E", id="M7", number="897"))


def test_a_site_adds_its_own_lock_messages() -> None:
    site_lock = SapMessage(type="E", id="ZPP", number="7")
    locks = (
        *DEFAULT_LOCK_MESSAGES,
        LockMessage(id="ZPP", number="007", meaning="site lock", verified=True),
    )

    with pytest.raises(SapRejected):
        raise_for_answer([site_lock], message_ref=REF)
    with pytest.raises(TransientError):
        raise_for_answer([site_lock], message_ref=REF, locks=locks)


def test_odata_error_details_become_messages() -> None:
    body = {
        "error": {
            "code": "M3/897",
            "message": {"lang": "en", "value": "The plant data of material 4711 is locked"},
            "innererror": {
                "errordetails": [
                    {"code": "M3/897", "message": "The plant data ... locked", "severity": "error"},
                    {"code": "RU/030", "message": "Quantity exceeds plan", "severity": "warning"},
                    {"code": "/IWBEP/CM_MGW_RT/020", "message": "Gateway", "severity": "info"},
                ]
            },
        }
    }

    messages = messages_from_odata_error(body)

    assert [(m.type, m.id, m.number) for m in messages] == [
        ("E", "M3", "897"),
        ("W", "RU", "030"),
        ("I", "/IWBEP/CM_MGW_RT", "020"),
    ]
    with pytest.raises(TransientError):
        raise_for_answer(messages, message_ref=REF)


def test_odata_error_without_details_uses_the_main_message() -> None:
    body = {"error": {"code": "RU/494", "message": {"lang": "en", "value": "Order 1000510 closed"}}}

    (message,) = messages_from_odata_error(body)

    assert message == SapMessage(type="E", id="RU", number="494", message="Order 1000510 closed")


def test_an_odata_code_without_number_and_an_unknown_severity_stay_errors() -> None:
    body = {
        "error": {
            "code": "SY/530",
            "innererror": {"errordetails": [{"code": "CX_SY_ZERODIVIDE", "severity": "fatal"}]},
        }
    }

    (message,) = messages_from_odata_error(body)

    assert (message.type, message.id, message.number) == ("E", "CX_SY_ZERODIVIDE", "")


@pytest.mark.parametrize(
    "body",
    [{}, {"error": "boom"}, {"error": {"message": "no code"}}, {"error": {"code": ""}}],
)
def test_a_body_that_is_no_odata_error_is_a_value_error(body: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="OData error"):
        messages_from_odata_error(body)
