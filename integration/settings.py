"""Settings: read once at the entry point from ``MESBRIDGE_*`` variables, overridable by a file.

Every setting has an environment variable ``MESBRIDGE_<NAME>`` and a key
``<name>`` in the TOML config file (``mesbridge run --config FILE``); the file
wins. An unknown variable or key stops start-up with the nearest known name, so
a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import difflib
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from contracts.errors import ConfigurationError

__all__ = ["ENV_PREFIX", "Settings"]

ENV_PREFIX = "MESBRIDGE_"
_MIB = 1024 * 1024

# Variables with the prefix that are not settings (read by tools, not by the service).
_NOT_SETTINGS = frozenset({"MESBRIDGE_TEST_AMQP_URL", "MESBRIDGE_TEST_POSTGRES_URL"})


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
    prefetch: int = 200
    # Consumer loops per route: while one settles its batch, another's is being processed.
    consumers: int = 2
    # Processes for the CPU-bound pipeline step: -1 one per CPU (none on one CPU), 0 in-thread.
    pipeline_workers: int = -1
    # Names of exchanges and queues: <prefix>.in, <prefix>.out, <prefix>.parked, ...
    topology_prefix: str = "mesbridge"
    # Seconds a stopping service may take to finish its batch and flush the outbox.
    shutdown_timeout_s: int = 30
    # Tulip Tables API (flow F2): the route's Tulip target is off unless all four are set.
    tulip_url: str = ""
    tulip_api_key_id: str = ""
    tulip_api_key_secret: str = field(default="", repr=False)
    tulip_table_id: str = ""

    def __post_init__(self) -> None:
        if self.pasx_profile not in ("V0600", "V7"):
            raise ConfigurationError(
                f"setting pasx_profile: {self.pasx_profile!r} is not supported; use V0600 or V7"
            )
        minimum = {"http_port": 0, "pipeline_workers": -1}
        checked = ("batch_size", "prefetch", "http_port", "max_message_bytes", "pipeline_workers")
        for name in (*checked, "consumers"):
            if getattr(self, name) < minimum.get(name, 1):
                raise ConfigurationError(f"setting {name}: {getattr(self, name)} is too small")
        if self.prefetch < self.batch_size:
            raise ConfigurationError(
                f"setting prefetch ({self.prefetch}) must be at least batch_size "
                f"({self.batch_size}), or a batch can never fill"
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
