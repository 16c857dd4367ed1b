"""The Tulip adapter's errors: the project's tree (contracts.errors), made specific.

    PermanentError                (contracts.errors) park the message, never retry
    └── TulipRecordRejected       400/422: Tulip refused the record (unknown column, bad value)
    TransientError                (contracts.errors) retry later with backoff
    └── TulipRateLimited          429 still refused after the in-call retries, or a Retry-After
                                  longer than the client will sleep; carries ``retry_after_s``
    ConfigurationError            (contracts.errors) the route cannot work until an operator acts
    ├── TulipAuthError            401/403: API key id or secret wrong, key revoked, or missing scope
    └── TulipTableNotFound        404 on the table itself: wrong MESBRIDGE_TULIP_TABLE_ID

Auth and table errors are ``ConfigurationError`` on purpose: retrying a message
cannot help, and parking every order would bury the one real problem under
hundreds of parked messages. The service is expected to stop the Tulip route,
report not-ready on ``/readyz`` with the error's text, and leave the orders queued
until an operator fixes the setting.

Other outcomes use the plain classes: network errors, timeouts and 5xx are
``TransientError``; any other unexpected 4xx is ``PermanentError``; a redirect is a
``ConfigurationError`` (the base URL is not the API root). Messages never contain
the API key secret.
"""

from __future__ import annotations

from collections.abc import Iterable

from contracts.errors import ConfigurationError, Finding, PermanentError, TransientError

__all__ = ["TulipAuthError", "TulipRateLimited", "TulipRecordRejected", "TulipTableNotFound"]


class TulipAuthError(ConfigurationError):
    """Tulip refused the API key (401) or the key lacks a scope (403): the route cannot work."""


class TulipTableNotFound(ConfigurationError):
    """The configured Tulip table does not exist on the instance (or the key cannot see it)."""


class TulipRecordRejected(PermanentError):
    """Tulip answered 400/422 to a record write: the record, not the connection, is wrong."""


class TulipRateLimited(TransientError):
    """Tulip kept answering 429; ``retry_after_s`` is Tulip's last Retry-After, if it sent one."""

    def __init__(
        self,
        summary: str,
        *,
        retry_after_s: float | None,
        message_ref: str | None = None,
        findings: Iterable[Finding] = (),
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(summary, message_ref=message_ref, findings=findings)
