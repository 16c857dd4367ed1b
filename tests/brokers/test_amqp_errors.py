"""Driver errors as mesbridge errors: an outage is transient, a wrong installation is not."""

from __future__ import annotations

from pika import exceptions as pika_errors
from pika.adapters.utils.connection_workflow import AMQPConnectorStackTimeout

from adapters.amqp.errors import translate
from contracts.errors import ConfigurationError, TransientError


def test_a_broker_that_never_finishes_the_handshake_is_an_outage_not_a_bug() -> None:
    error = translate(
        AMQPConnectorStackTimeout("Timeout during AMQP handshake"),
        action="consuming from queue 'q'",
        where="amqp://guest:***@127.0.0.1:5672/",
    )
    assert isinstance(error, TransientError)
    assert "Timeout during AMQP handshake" in str(error)


def test_wrong_credentials_stay_a_configuration_error() -> None:
    error = translate(
        pika_errors.ProbableAuthenticationError("ACCESS_REFUSED"),
        action="connecting",
        where="amqp://guest:***@127.0.0.1:5672/",
    )
    assert isinstance(error, ConfigurationError)
