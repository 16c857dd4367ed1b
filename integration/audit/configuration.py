"""Configuration changes in the audit trail: a fingerprint of what the service runs with.

The configuration is described as data: every setting (secrets shown only as
set or not, passwords masked in URLs), the SHA-256 of the mapping profile, and
per contract the SHA-256 of its directory (manifest, schemas and included
files). Its fingerprint is the SHA-256 of that description's canonical JSON.
At start-up the service appends a ``config-change`` entry when the fingerprint
differs from the one the newest ``config-change`` entry recorded (the first
start records one too): ``before_sha256`` / ``after_sha256`` are the old and
new fingerprints, ``details`` holds the whole description.

Instances sharing one database with different settings (another HTTP port,
say) record a change each time the other one starts: that is what happened.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import fields
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine

from adapters.amqp.url import mask_url
from contracts.errors import ConfigurationError
from contracts.registry import ContractRegistry
from integration.settings import Settings

from .keys import current_actor, load_audit_key
from .trail import AuditAction, AuditEntry, AuditTrail, canonical_json

__all__ = [
    "CONFIGURATION_SUBJECT",
    "audit_service_start",
    "configuration_description",
    "configuration_fingerprint",
    "contract_digests",
    "mapping_profile_sha256",
    "public_settings",
    "record_configuration",
]

log = logging.getLogger("mesbridge.audit")

CONFIGURATION_SUBJECT = "configuration"
_SET, _UNSET = "(set)", ""


def public_settings(settings: Settings) -> dict[str, object]:
    """The settings without secrets: a secret shows only whether it is set; URLs are masked."""
    shown: dict[str, object] = {}
    for item in fields(settings):
        value = getattr(settings, item.name)
        if not item.repr:
            shown[item.name] = _SET if value else _UNSET
        elif item.name.endswith("_url") and isinstance(value, str):
            shown[item.name] = mask_url(value)
        else:
            shown[item.name] = value
    return shown


def mapping_profile_sha256(settings: Settings) -> str:
    """SHA-256 of the mapping profile file in use (the embedded one when none is set)."""
    if settings.mapping_file:
        try:
            data = Path(settings.mapping_file).read_bytes()
        except OSError as error:
            raise ConfigurationError(
                f"cannot read mapping file {settings.mapping_file}: {error.strerror}"
            ) from error
    else:
        data = resources.files("integration.defaults").joinpath("mapping.toml").read_bytes()
    return hashlib.sha256(data).hexdigest()


def contract_digests(registry: ContractRegistry) -> dict[str, str]:
    """Per contract key, the SHA-256 over its directory's files (names and bytes)."""
    return {str(contract.key): _directory_sha256(contract.directory) for contract in registry}


def _directory_sha256(directory: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        digest.update(path.relative_to(directory).as_posix().encode("utf-8") + b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def configuration_description(
    settings: Settings,
    *,
    mapping_sha256: str,
    contracts: Mapping[str, str] | Iterable[str],
) -> dict[str, object]:
    """What the service runs with, as data for the audit entry (no secrets)."""
    if isinstance(contracts, Mapping):
        contract_part: object = dict(sorted(contracts.items()))
    else:
        contract_part = sorted(contracts)
    return {
        "settings": public_settings(settings),
        "mapping_profile_sha256": mapping_sha256,
        "contracts": contract_part,
    }


def configuration_fingerprint(description: Mapping[str, object]) -> str:
    """SHA-256 (hex) of the description's canonical JSON."""
    return hashlib.sha256(canonical_json(dict(description)).encode("utf-8")).hexdigest()


def record_configuration(
    trail: AuditTrail,
    settings_fingerprint: str,
    description: Mapping[str, object],
    actor: str,
    *,
    reason: str = "service started with this configuration",
) -> AuditEntry | None:
    """Append a ``config-change`` entry unless the newest one has this fingerprint.

    Looking and appending happen under the append lock, so instances starting
    together record one entry, not one each. Returns the new entry, or None.
    """
    with trail.begin() as connection:
        last = trail.latest(AuditAction.CONFIG_CHANGE, connection=connection)
        if last is not None and last.after_sha256 == settings_fingerprint:
            return None
        return trail.record(
            actor=actor,
            action=AuditAction.CONFIG_CHANGE,
            subject=CONFIGURATION_SUBJECT,
            reason=reason,
            before_sha256=None if last is None else last.after_sha256,
            after_sha256=settings_fingerprint,
            details={"fingerprint": settings_fingerprint, "configuration": dict(description)},
            connection=connection,
        )


def audit_service_start(
    engine: Engine, settings: Settings, registry: ContractRegistry, *, actor: str | None = None
) -> AuditTrail:
    """The service's trail: a ``config-change`` entry if the configuration changed, head logged.

    The head (newest ``seq`` and ``mac``) goes to the log on every start: kept
    outside the database, it is the anchor that shows a removed tail.
    """
    trail = AuditTrail(engine, load_audit_key(settings))
    description = configuration_description(
        settings,
        mapping_sha256=mapping_profile_sha256(settings),
        contracts=contract_digests(registry),
    )
    fingerprint = configuration_fingerprint(description)
    entry = record_configuration(trail, fingerprint, description, actor or current_actor())
    if entry is not None:
        log.info("audit: configuration %s recorded as entry %d", fingerprint[:12], entry.seq)
    head = trail.head()
    if head is not None:
        log.info("audit trail head: entry %d, mac %s", head[0], head[1])
    return trail
