"""Tulip Tables API: the client mesbridge writes Work Order records with, and a fake Tulip.

``TulipTablesClient`` (sync, httpx) reads a table's schema, reads records and
upserts a record by its ``id`` under Tulip's 10 writes/s/table limit; see
``adapters/tulip/client.py`` and docs/tulip.md for the upsert rule and the failure
modes. ``FakeTulip`` is a real HTTP server on loopback that speaks the same API,
shipped in the package (like kombu's ``memory://``) for tests and the demo.
"""

from adapters.tulip.client import (
    CONFIGURATION_TRANSPORT_ERRORS,
    TRANSIENT_TRANSPORT_ERRORS,
    TulipTablesClient,
    UpsertOutcome,
    UpsertResult,
)
from adapters.tulip.errors import (
    TulipAuthError,
    TulipRateLimited,
    TulipRecordRejected,
    TulipTableNotFound,
)
from adapters.tulip.fake import FakeTulip, LoggedRequest, tulip_column
from adapters.tulip.ratelimit import TokenBucket, parse_retry_after
from adapters.tulip.settings import TulipSettings

__all__ = [
    "CONFIGURATION_TRANSPORT_ERRORS",
    "TRANSIENT_TRANSPORT_ERRORS",
    "FakeTulip",
    "LoggedRequest",
    "TokenBucket",
    "TulipAuthError",
    "TulipRateLimited",
    "TulipRecordRejected",
    "TulipSettings",
    "TulipTableNotFound",
    "TulipTablesClient",
    "UpsertOutcome",
    "UpsertResult",
    "parse_retry_after",
    "tulip_column",
]
