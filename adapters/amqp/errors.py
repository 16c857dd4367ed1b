"""pika and socket errors translated into mesbridge's error tree, declared as data.

Like kombu's ``connection_errors``: the adapter lists which driver errors mean "the
broker is unreachable or the connection/channel is gone" (:data:`TRANSIENT_ERRORS`,
retry with a new connection; unacknowledged deliveries come back) and which mean the
installation is wrong (:data:`CONFIGURATION_ERRORS`: wrong user, password or virtual
host, no permission; retrying cannot help). Anything else is a bug and is not caught.

A channel closed by the broker is transient (a missing queue or exchange may be
declared again, a consumer timeout redelivers), except ``403 ACCESS_REFUSED``.
"""

from __future__ import annotations

from pika import exceptions as pika_errors
from pika.adapters.utils.connection_workflow import (
    AMQPConnectionWorkflowFailed,
    AMQPConnectorException,
)

from contracts.errors import ConfigurationError, MesbridgeError, TransientError

__all__ = [
    "CONFIGURATION_ERRORS",
    "CONFIGURATION_REPLY_CODES",
    "TRANSIENT_ERRORS",
    "describe",
    "translate",
]

CONFIGURATION_ERRORS: tuple[type[BaseException], ...] = (
    pika_errors.ProbableAuthenticationError,  # wrong user or password
    pika_errors.ProbableAccessDeniedError,  # unknown virtual host, or no access to it
    pika_errors.AuthenticationError,  # no common SASL mechanism
)

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    pika_errors.AMQPConnectionError,  # refused, lost, heartbeat missed, blocked too long, closed
    pika_errors.AMQPChannelError,  # channel closed by the broker, consumer cancelled
    OSError,  # socket errors and timeouts below pika
    # Connecting: the broker took the TCP connection but never finished the AMQP handshake
    # (AMQPConnectorStackTimeout), or every connection attempt failed.
    AMQPConnectorException,
    AMQPConnectionWorkflowFailed,
)

# AMQP reply codes on a channel close that mean "the installation is wrong".
CONFIGURATION_REPLY_CODES = frozenset({403})


def describe(exc: BaseException) -> str:
    """A one-line account of a driver error, for an operator."""
    if isinstance(exc, pika_errors.ChannelClosed | pika_errors.ConnectionClosed):
        return f"{exc.reply_code} {exc.reply_text}"
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def translate(exc: BaseException, *, action: str, where: str) -> MesbridgeError | None:
    """The mesbridge error for a driver error, or None when ``exc`` is not a driver error.

    ``action`` says what was being done ("consuming from queue 'x'"), ``where`` is the
    masked broker URL.
    """
    if isinstance(exc, CONFIGURATION_ERRORS):
        return ConfigurationError(
            f"RabbitMQ at {where} refused the connection while {action}: {describe(exc)}; "
            "check the user, password and virtual host of the broker URL"
        )
    if (
        isinstance(exc, pika_errors.ChannelClosedByBroker)
        and exc.reply_code in CONFIGURATION_REPLY_CODES
    ):
        return ConfigurationError(
            f"RabbitMQ at {where} refused {action}: {describe(exc)}; "
            "check the user's permissions on the virtual host"
        )
    if isinstance(exc, TRANSIENT_ERRORS):
        return TransientError(f"RabbitMQ at {where}: {action} failed: {describe(exc)}")
    return None
