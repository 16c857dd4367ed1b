"""``connect_broker(url)``: the broker adapter for a URL (the composition root calls this).

``amqp://`` and ``amqps://`` → :class:`adapters.amqp.RabbitBroker` (RabbitMQ, pika);
``memory://`` or ``memory://name`` → the process-wide in-process broker of that name
(:func:`adapters.memory_broker.memory_broker`; ``memory://`` is ``memory://default``).

Options are the keyword arguments of ``RabbitBroker`` (``connection_name``,
``heartbeat_s``, ``connect_timeout_s``, ``blocked_connection_timeout_s``); the
in-process broker accepts and ignores them, so one configuration works for both.

Failure modes: an unsupported scheme, an unknown option (with the nearest known
name) or a malformed URL raise ``ConfigurationError``; the URL is shown with its
password masked. Nothing is connected here: reachability is ``Broker.ping()``.
"""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from adapters.amqp.broker import RabbitBroker
from adapters.amqp.url import mask_url, url_scheme
from adapters.memory_broker import memory_broker
from contracts.errors import ConfigurationError
from integration.broker import Broker

__all__ = ["BROKER_OPTIONS", "SUPPORTED_SCHEMES", "connect_broker"]

SUPPORTED_SCHEMES = ("amqp", "amqps", "memory")

BROKER_OPTIONS = frozenset(
    name
    for name, parameter in inspect.signature(RabbitBroker).parameters.items()
    if parameter.kind is inspect.Parameter.KEYWORD_ONLY
)


def connect_broker(url: str, **options: Any) -> Broker:
    """The broker for ``url``; see the module docstring."""
    shown = mask_url(url)
    for name in options:
        if name not in BROKER_OPTIONS:
            hint = difflib.get_close_matches(name, sorted(BROKER_OPTIONS), n=1)
            suggestion = f"; did you mean {hint[0]!r}?" if hint else ""
            raise ConfigurationError(
                f"broker URL {shown}: unknown option {name!r}{suggestion} "
                f"(known: {', '.join(sorted(BROKER_OPTIONS))})"
            )
    scheme = url_scheme(url)
    if scheme in {"amqp", "amqps"}:
        return RabbitBroker(url, **options)
    if scheme == "memory":
        return memory_broker(_memory_name(url, shown))
    hint = difflib.get_close_matches(scheme, SUPPORTED_SCHEMES, n=1)
    suggestion = f" (did you mean {hint[0]}://?)" if hint and scheme else ""
    found = f"scheme {scheme!r}" if scheme else "no scheme"
    raise ConfigurationError(
        f"broker URL {shown}: {found} is not supported{suggestion}; "
        "use amqp://, amqps:// (RabbitMQ) or memory:// (in-process)"
    )


def _memory_name(url: str, shown: str) -> str:
    rest = url.partition("://")[2]
    name, _, path = rest.partition("/")
    if path or "?" in name or "#" in name or "@" in name:
        raise ConfigurationError(
            f"broker URL {shown}: expected memory:// or memory://NAME (a name, no path, "
            "user or options)"
        )
    return name or "default"
