"""Broker URLs: masking the password for every message and repr, and pika connection parameters.

``amqp://user:password@host:5672/vhost?heartbeat=30`` (``amqps://`` for TLS, verified
against the system's CA store). Query options are pika's (``heartbeat``,
``socket_timeout``, ``blocked_connection_timeout``, ``connection_attempts``, …).

Failure modes: a URL pika cannot use (wrong scheme, bad option, no host) raises
``ConfigurationError`` naming the masked URL. The password never appears in a
message, a log line or a repr: :func:`mask_url` is applied to every URL shown.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import pika

from contracts.errors import ConfigurationError

__all__ = ["MASK", "connection_parameters", "mask_url", "url_scheme"]

MASK = "***"


def url_scheme(url: str) -> str:
    """The scheme of ``url`` in lower case ('' when it has none)."""
    head, separator, _ = url.partition("://")
    return head.lower() if separator else ""


def mask_url(url: str) -> str:
    """``url`` with the password (the userinfo after the first ':') replaced by ``***``.

    Works on text ``urlsplit`` would reject (a bad port, stray characters), because the
    URL being shown is often the one that is wrong.
    """
    prefix, userinfo, hostport, tail = _split_authority(url)
    if userinfo is not None and ":" in userinfo:
        user = userinfo.split(":", 1)[0]
        return f"{prefix}{user}:{MASK}@{hostport}{tail}"
    return url


def _split_authority(url: str) -> tuple[str, str | None, str, str]:
    """(``scheme://``, userinfo or None, host[:port], the rest) without validating anything."""
    head, separator, rest = url.partition("://")
    prefix = f"{head}://" if separator else ""
    if not separator:
        rest = url
    end = len(rest)
    for stop in "/?#":
        found = rest.find(stop)
        if found != -1:
            end = min(end, found)
    authority, tail = rest[:end], rest[end:]
    userinfo, at, hostport = authority.rpartition("@")
    return prefix, (userinfo if at else None), hostport, tail


def connection_parameters(
    url: str,
    *,
    connection_name: str,
    heartbeat_s: int | None = None,
    connect_timeout_s: float | None = None,
    blocked_connection_timeout_s: float | None = None,
) -> pika.URLParameters:
    """pika parameters for ``url``; keyword options override the URL's query options."""
    shown = mask_url(url)
    if url_scheme(url) not in {"amqp", "amqps"}:
        raise ConfigurationError(f"broker URL {shown}: expected an amqp:// or amqps:// URL")
    try:
        host = urlsplit(url).hostname
        parameters = pika.URLParameters(url)
    except (ValueError, TypeError) as exc:
        # pika's messages may quote the URL; show only the masked one.
        raise ConfigurationError(
            f"broker URL {shown} cannot be used: {type(exc).__name__}{_safe_detail(str(exc), url)}"
        ) from None
    if not host:
        raise ConfigurationError(f"broker URL {shown}: no host name")
    parameters.client_properties = {"connection_name": connection_name}
    try:
        if heartbeat_s is not None:
            parameters.heartbeat = heartbeat_s
        if connect_timeout_s is not None:
            parameters.socket_timeout = connect_timeout_s
            # The whole TCP + TLS + AMQP handshake, not only the socket connect.
            parameters.stack_timeout = connect_timeout_s
        if blocked_connection_timeout_s is not None:
            parameters.blocked_connection_timeout = blocked_connection_timeout_s
    except (ValueError, TypeError) as exc:
        raise ConfigurationError(f"broker {shown}: option refused: {exc}") from None
    return parameters


def _safe_detail(detail: str, url: str) -> str:
    _, userinfo, _, _ = _split_authority(url)
    password = userinfo.split(":", 1)[1] if userinfo and ":" in userinfo else ""
    if not detail or (password and (password in detail or unquote(password) in detail)):
        return ""
    return f": {detail}"
