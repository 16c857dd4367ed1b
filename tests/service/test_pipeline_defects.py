"""A defect in mesbridge fails the one message it hit, which is parked; it never stalls a route.

``Pipeline.process`` turns an exception mesbridge did not raise on purpose into a
``ProcessingFailure`` naming the exception and where it was raised. Errors raised on
purpose keep their meaning: a dependency away (``TransientError``) or a wrong
installation (``ConfigurationError``) still propagate to the consumer loop, which backs
off without parking anything. The service-level path of the same park (a message that
kills its worker process) is tests/faults/test_worker_death.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from contracts.errors import ConfigurationError, TransientError
from integration.broker import Delivery
from integration.lockstep import Steps
from integration.routes import Accepted, Translation, Translator
from tests.support.idoc_factory import OrderSpec, build_loipro
from tests.support.pipelines import process_order_pipeline


def _delivery() -> Delivery:
    return Delivery(
        body=build_loipro([OrderSpec(docnum=f"{42:016d}", order_number="4711")]),
        exchange="mesbridge.in",
        routing_key="sap.LOIPRO",
        delivery_tag=7,
        message_id="sap-42",
    )


def _broken_translate(error: BaseException) -> Callable[..., Steps[Translation]]:
    def translate_steps(
        self: Translator, accepted: Accepted, targets: object, *, created_at: datetime
    ) -> Steps[Translation]:
        raise error
        yield  # a generator, as the one it replaces

    return translate_steps


def test_an_unexpected_exception_parks_the_message_naming_the_defect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        Translator, "translate_steps", _broken_translate(ZeroDivisionError("x / 0"))
    )

    result = process_order_pipeline().process(_delivery())

    assert result.record is None and result.retry is None
    failure = result.failure
    assert failure is not None
    assert failure.error_class == "ProcessingFailure"
    assert failure.contract == result.contract == "sap-idoc/LOIPRO01/1"
    text = failure.error_text
    assert text.startswith("AMQP mesbridge.in/sap.LOIPRO message sap-42: ")
    assert "mesbridge failed on this message: unexpected ZeroDivisionError: x / 0 at " in text
    assert "test_pipeline_defects.py" in text and "in translate_steps" in text
    assert "Replay the message once it is fixed" in text
    assert failure.body == _delivery().body
    assert failure.order_numbers == ("4711",)


def test_a_very_long_exception_text_is_shortened_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Translator, "translate_steps", _broken_translate(KeyError("k" * 2000)))

    failure = process_order_pipeline().process(_delivery()).failure

    assert failure is not None
    assert "… (2002 characters; the log has all)" in failure.error_text
    assert len(failure.error_text) < 1000


@pytest.mark.parametrize(
    "error",
    [TransientError("the order-context store is unreachable"), ConfigurationError("bad install")],
    ids=["transient", "configuration"],
)
def test_errors_raised_on_purpose_still_propagate(
    monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    monkeypatch.setattr(Translator, "translate_steps", _broken_translate(error))

    with pytest.raises(type(error)):
        process_order_pipeline().process(_delivery())
