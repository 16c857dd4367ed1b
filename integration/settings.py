"""Settings: read once at the entry point from ``MESBRIDGE_*`` variables, overridable by a file.

Every setting has an environment variable ``MESBRIDGE_<NAME>`` and a key
``<name>`` in the TOML config file (``mesbridge run --config FILE``); the file
wins. An unknown variable or key stops start-up with the nearest known name, so
a typo never silently falls back to a default. One exception: ``routes``, the
per-route overrides, comes only from the file's ``[routes.<name>]`` tables.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from contracts.errors import ConfigurationError
from integration.retry import RetryPolicy

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "MESBRIDGE_"
_MIB = 1024 * 1024

# Variables with the prefix that are not settings (read by tools, not by the service).
_NOT_SETTINGS = frozenset(
    {
        "MESBRIDGE_TEST_AMQP_URL",
        "MESBRIDGE_TEST_POSTGRES_URL",
        "MESBRIDGE_TEST_CRASH_AT",
        "MESBRIDGE_TEST_CRASH_ON",
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """All of mesbridge's settings. Defaults run the service on one machine with nothing else."""

    broker_url: str = "memory://"
    database_url: str = "sqlite:///var/mesbridge.db"
    http_port: int = 8080
    http_host: str = "127.0.0.1"
    # Refuse messages larger than this before parsing: a 100 MB IDoc costs ~1 GB to parse.
    max_message_bytes: int = 10 * _MIB
    # A site's mapping profile (units, plants, Tulip columns); empty: the embedded one.
    mapping_file: str = ""
    # Extra contract directories (site WE60 schemas, new versions), separated by ':'.
    contracts_path: str = ""
    # Directory of the official MESA B2MML schemas; set it to validate outputs strictly.
    b2mml_official_dir: str = ""
    # B2MML profile for PAS-X schedules: V0600 or V7.
    pasx_profile: str = "V0600"
    # Micro-batching: up to batch_size deliveries, or what arrived within batch_wait_ms,
    # are settled in one database transaction and acknowledged with one multiple-ack.
    batch_size: int = 100
    batch_wait_ms: int = 5
    # Unacknowledged deliveries per consumer. prefetch // batch_size batches are in the
    # pipeline step at once: the loop settles the oldest while the workers have the rest.
    prefetch: int = 300
    # Consumer loops per route. One settles the route's messages in the order the queue
    # delivered them; several compete for the queue and settle in no fixed order.
    consumers: int = 1
    # Processes for the CPU-bound pipeline step: -1 one per usable CPU (integration/cpus.py),
    # 0 in-thread (no guard against a message that crashes the process).
    pipeline_workers: int = -1
    # Names of exchanges and queues: <prefix>.in, <prefix>.out, <prefix>.parked, ...
    topology_prefix: str = "mesbridge"
    # Seconds a stopping service may take to finish its batch and flush the outbox.
    shutdown_timeout_s: int = 30
    # Seconds an outbox row stays claimed by the relay that took it. If that relay's process
    # dies before marking the row sent, another relay sends it again once the lease runs out.
    outbox_lease_s: int = 60
    # Tulip Tables API (flow F2): the route's Tulip target is off unless all four are set.
    tulip_url: str = ""
    tulip_api_key_id: str = ""
    tulip_api_key_secret: str = field(default="", repr=False)
    tulip_table_id: str = ""
    # Bearer token Tulip sends to POST /ingest/tulip/events (flow F4); empty: endpoint off.
    tulip_ingest_token: str = field(default="", repr=False)
    # The audit trail's HMAC key: a file of at least 32 bytes, kept outside the database.
    # Empty: with SQLite, audit.key beside the database file (created); with PostgreSQL, an error.
    audit_key_file: str = ""
    # Processed inbox keys are kept at least this long: a replay within it is still recognised.
    replay_window_days: int = 400
    # A message that cannot take effect yet (RetryLater) goes through delay queues: the wait
    # before each further attempt; the attempts in all, the first included (6: the first try
    # and 5 retries, then parked); the age past which a failing message is parked at once.
    retry_delays: str = "5s,30s,2m,10m,30m"
    retry_max_attempts: int = 6
    retry_max_age: str = "24h"
    # Per-route overrides of the three, from the config file only: [routes.<name>] tables.
    routes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.pasx_profile not in ("V0600", "V7"):
            raise ConfigurationError(
                f"setting pasx_profile: {self.pasx_profile!r} is not supported; use V0600 or V7"
            )
        minimum = {"http_port": 0, "pipeline_workers": -1}
        checked = ("batch_size", "prefetch", "http_port", "max_message_bytes", "pipeline_workers")
        for name in (*checked, "consumers", "outbox_lease_s"):
            if getattr(self, name) < minimum.get(name, 1):
                raise ConfigurationError(f"setting {name}: {getattr(self, name)} is too small")
        if self.replay_window_days < 1:
            raise ConfigurationError(
                f"setting replay_window_days: {self.replay_window_days} is too small; at least 1"
            )
        if self.prefetch < self.batch_size:
            raise ConfigurationError(
                f"setting prefetch ({self.prefetch}) must be at least batch_size "
                f"({self.batch_size}), or a batch can never fill"
            )
        for route in (None, *self.routes):
            self.retry_policy(route)  # refuse an unusable policy at start-up

    def retry_policy(self, route: str | None = None) -> RetryPolicy:
        """The retry policy of ``route``: the ``retry_*`` settings, with its overrides."""
        override = self.routes.get(route, {}) if route is not None else {}
        return RetryPolicy.from_settings(
            delays=override.get("retry_delays", self.retry_delays),
            max_attempts=override.get("retry_max_attempts", self.retry_max_attempts),
            max_age=override.get("retry_max_age", self.retry_max_age),
            what=f"routes.{route}.retry" if override else "retry",
        )

    def check_routes(self, known: Iterable[str]) -> None:
        """Refuse a ``[routes.<name>]`` table for a route the service does not have."""
        names = sorted(known)
        for route in self.routes:
            if route in names:
                continue
            hint = difflib.get_close_matches(route, names, n=1)
            suggestion = f"; did you mean [routes.{hint[0]}]?" if hint else ""
            raise ConfigurationError(
                f"config file table [routes.{route}]: there is no route {route!r} "
                f"(routes: {', '.join(names)}){suggestion}"
            )

    @property
    def tulip_enabled(self) -> bool:
        return all(
            (self.tulip_url, self.tulip_api_key_id, self.tulip_api_key_secret, self.tulip_table_id)
        )

    @classmethod
    def load(cls, environ: Mapping[str, str], *, config_file: Path | None = None) -> Settings:
        values: dict[str, Any] = {}
        names = {f.name for f in fields(cls)}
        for key, raw in environ.items():
            if not key.startswith(ENV_PREFIX) or key in _NOT_SETTINGS:
                continue
            name = key.removeprefix(ENV_PREFIX).lower()
            _check_known(name, names, f"environment variable {key}", prefix=ENV_PREFIX)
            if name == "routes":
                raise ConfigurationError(
                    f"environment variable {key}: per-route settings are read from the config "
                    "file only, as [routes.<name>] tables (e.g. [routes.performance] "
                    "retry_max_attempts = 10)"
                )
            values[name] = raw
        if config_file is not None:
            for name, raw in _read_config_file(config_file).items():
                _check_known(name, names, f"{config_file}: key {name!r}", prefix="")
                values[name] = raw
        return cls(**{name: _coerce(cls, name, raw) for name, raw in values.items()})

    def contract_dirs(self) -> tuple[Path, ...]:
        return tuple(Path(part) for part in self.contracts_path.split(":") if part)

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)


def _read_config_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(f"cannot read config file {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path} is not valid TOML: {exc}") from exc


def _check_known(name: str, names: set[str], what: str, *, prefix: str) -> None:
    if name in names:
        return
    hint = difflib.get_close_matches(name, sorted(names), n=1)
    suggestion = f"; did you mean {prefix}{hint[0].upper() if prefix else hint[0]}?" if hint else ""
    raise ConfigurationError(f"unknown setting: {what}{suggestion}")


def _coerce(cls: type[Settings], name: str, raw: Any) -> Any:
    if name == "routes":
        return _route_tables(raw)
    default = next(f.default for f in fields(cls) if f.name == name)
    if isinstance(default, int):
        if isinstance(raw, int):
            return raw
        try:
            return int(str(raw).strip())
        except ValueError as exc:
            raise ConfigurationError(f"setting {name}: {raw!r} is not a whole number") from exc
    if not isinstance(raw, str):
        raise ConfigurationError(f"setting {name}: expected a string, found {raw!r}")
    return raw


_ROUTE_KEYS = frozenset({"retry_delays", "retry_max_attempts", "retry_max_age"})


def _route_tables(raw: Any) -> dict[str, dict[str, Any]]:
    """``[routes.<name>]`` tables: each a table of known keys (route names are checked later)."""
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"setting routes: expected [routes.<name>] tables, found {raw!r}")
    tables: dict[str, dict[str, Any]] = {}
    for route, table in raw.items():
        if not isinstance(table, Mapping):
            raise ConfigurationError(
                f"setting routes.{route}: expected a table ([routes.{route}]), found {table!r}"
            )
        for key in table:
            _check_known(key, set(_ROUTE_KEYS), f"[routes.{route}]: key {key!r}", prefix="")
        tables[str(route)] = dict(table)
    return tables
