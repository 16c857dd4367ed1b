"""Settings of the Tulip Tables API client, checked when they are built.

The environment is read by the entry point, not here; the variables are
``MESBRIDGE_TULIP_URL`` (``base_url``, e.g. ``https://acme.tulip.co/api/v3``),
``MESBRIDGE_TULIP_API_KEY_ID`` (``apikey.2_…``), ``MESBRIDGE_TULIP_API_KEY_SECRET``
and ``MESBRIDGE_TULIP_TABLE_ID`` (see docs/tulip.md).

Failure modes: any invalid value is a ``ConfigurationError`` naming the setting
and what was expected. Plain ``http://`` is refused except on loopback (the fake
server), because Basic auth would send the secret in clear text. The secret is
never shown: not in errors, not in ``repr()``.
"""

from __future__ import annotations

import ipaddress
import math
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from contracts.errors import ConfigurationError

__all__ = ["TulipSettings"]

# Tulip's documented pattern for table ids (path parameter tableId).
_TABLE_ID = re.compile(r"^[A-Za-z0-9_]+$")
_LOOPBACK_NAMES = frozenset({"localhost"})


@dataclass(frozen=True, kw_only=True)
class TulipSettings:
    """Where the Tulip table is, how to authenticate, and how hard to push."""

    base_url: str
    api_key_id: str
    api_key_secret: str = field(repr=False)
    table_id: str
    timeout_s: float = 10.0
    writes_per_second: float = 10.0
    # Single-record reads have their own, larger budget at Tulip (50/s per table).
    reads_per_second: float = 50.0
    # Retries inside one call for 429, 5xx and network errors; then TransientError.
    max_retries: int = 3
    # First backoff step when Tulip gives no Retry-After; doubles per attempt.
    backoff_s: float = 0.5
    # A longer Retry-After is not slept through in-process: the call fails transient
    # at once and the service's retry queue takes over, so a worker is not blocked.
    max_retry_after_s: float = 30.0

    def __post_init__(self) -> None:
        _check_url(self.base_url)
        if not self.api_key_id.strip():
            raise ConfigurationError(
                "Tulip api_key_id is empty; expected an API key id like 'apikey.2_…'"
            )
        if ":" in self.api_key_id:
            raise ConfigurationError(
                f"Tulip api_key_id {self.api_key_id!r} contains ':'; "
                "HTTP Basic user names cannot, expected an API key id like 'apikey.2_…'"
            )
        if not self.api_key_secret:
            raise ConfigurationError("Tulip api_key_secret is empty; expected the API key's secret")
        if not _TABLE_ID.match(self.table_id):
            raise ConfigurationError(
                f"Tulip table_id {self.table_id!r} is not a Tulip table id; "
                "expected letters, digits and '_' only (as in the table's URL)"
            )
        for name in ("timeout_s", "writes_per_second", "reads_per_second", "backoff_s"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0 and math.isfinite(value)):
                raise ConfigurationError(f"Tulip {name} is {value!r}; expected a positive number")
        if not (isinstance(self.max_retry_after_s, int | float) and self.max_retry_after_s >= 0):
            raise ConfigurationError(
                f"Tulip max_retry_after_s is {self.max_retry_after_s!r}; expected 0 or more seconds"
            )
        if not (isinstance(self.max_retries, int) and self.max_retries >= 0):
            raise ConfigurationError(
                f"Tulip max_retries is {self.max_retries!r}; expected a whole number, 0 or more"
            )

    @property
    def api_root(self) -> str:
        """``base_url`` with exactly one trailing slash, so relative paths join below it."""
        return self.base_url.rstrip("/") + "/"


def _check_url(url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in {"https", "http"} or not parts.hostname:
        raise ConfigurationError(
            f"Tulip base_url {url!r} is not an http(s) URL; "
            "expected https://<instance>.tulip.co/api/v3"
        )
    if parts.username is not None or parts.password is not None:
        raise ConfigurationError(
            "Tulip base_url contains credentials; set them as the API key id and secret instead"
        )
    if parts.query or parts.fragment:
        raise ConfigurationError(
            f"Tulip base_url {url!r} has a query or fragment; expected https://<instance>.tulip.co/api/v3"
        )
    if parts.scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigurationError(
            f"Tulip base_url {url!r} uses plain http to a remote host, which would send the API "
            "secret in clear text; expected https:// (http is only allowed on loopback)"
        )


def _is_loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
