"""The GMP audit trail (21 CFR 11.10(e), EU GMP Annex 11 §9): append-only, HMAC-chained.

    trail = AuditTrail(store.engine, load_audit_key(settings))
    trail.record(actor=current_actor(), action=AuditAction.DISCARD,
                 subject="failed_message:42", reason="duplicate of order 1000240",
                 before_sha256=old, after_sha256=new)
    result = trail.verify()          # ok, checked, first_broken_seq, problem

    with trail.begin() as connection:     # change a record and audit it atomically
        connection.execute(update(...))
        trail.record(..., connection=connection)

See docs/audit.md: what is recorded, the chain, the key, what ``verify`` can
and cannot detect, the PostgreSQL grants and trigger.
"""

from .configuration import (
    CONFIGURATION_SUBJECT,
    audit_service_start,
    configuration_description,
    configuration_fingerprint,
    contract_digests,
    mapping_profile_sha256,
    public_settings,
    record_configuration,
)
from .keys import current_actor, default_key_path, load_audit_key
from .trail import (
    AUDIT_LOCK_KEY,
    GENESIS_MAC,
    MIN_KEY_BYTES,
    AuditAction,
    AuditEntry,
    AuditTrail,
    AuditVerification,
    audit_entries,
    canonical_json,
)

__all__ = [
    "AUDIT_LOCK_KEY",
    "CONFIGURATION_SUBJECT",
    "GENESIS_MAC",
    "MIN_KEY_BYTES",
    "AuditAction",
    "AuditEntry",
    "AuditTrail",
    "AuditVerification",
    "audit_entries",
    "audit_service_start",
    "canonical_json",
    "configuration_description",
    "configuration_fingerprint",
    "contract_digests",
    "current_actor",
    "default_key_path",
    "load_audit_key",
    "mapping_profile_sha256",
    "public_settings",
    "record_configuration",
]
