"""Failure fingerprints: what makes two parked messages "the same problem".

500 messages that fail because one material is missing from the master data
should read as one group, not as 500 lines. A fingerprint is built from

- the error class (``ContractViolation``, ``MappingError``, ...),
- the contract key (``sap-idoc/LOIPRO01/1``; ``-`` when the message failed
  before it was identified),
- the *field* of the first finding, with what varies from message to message
  removed: positions (``E1AFKOL[2]`` → ``E1AFKOL``), parenthesised details
  (``MaterialActual[3] (consumed 300010) BATCH`` → ``MaterialActual BATCH``),
  quoted values and free-standing numbers (``column 23`` → ``column #``,
  ``order 600001: ...`` → ``order #: ...``). Digits inside names
  (``E1AFKOL``, ``LOIPRO01``) are kept.

The digest is the first 12 hex digits of the SHA-256 of those three parts;
the label is the same parts, readable. Values (the wrong batch, the unknown
unit) are deliberately not part of it: the group is "CHARG too long", and each
message's own value is in its findings.

Pure functions, no IO.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from contracts.errors import Finding

__all__ = [
    "DIGEST_LENGTH",
    "UNGROUPED",
    "UNGROUPED_LABEL",
    "Fingerprint",
    "failure_fingerprint",
    "normalise_field",
]

DIGEST_LENGTH = 12
# Rows parked before migration 0003 when it was applied as reviewed SQL (no Python to hash).
UNGROUPED = "0" * DIGEST_LENGTH
UNGROUPED_LABEL = "not grouped: parked before the store learnt fingerprints (revision 0003)"

_POSITION = re.compile(r"\[[^\]]*\]")
_PARENTHESISED = re.compile(r"\([^)]*\)")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*(?![\w.])")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True, kw_only=True)
class Fingerprint:
    """A group of failures: ``digest`` (12 hex digits, what ``--group`` takes) and a label."""

    digest: str
    label: str


def normalise_field(where: str) -> str:
    """``where`` without positions, parenthesised details, quoted values and numbers."""
    text = _POSITION.sub("", where)
    text = _PARENTHESISED.sub("", text)
    text = _QUOTED.sub("'…'", text)
    text = _NUMBER.sub("#", text)
    return _SPACES.sub(" ", text).strip()


def failure_fingerprint(
    error_class: str, contract: str | None, findings: Sequence[Finding]
) -> Fingerprint:
    """The fingerprint of a failure; see the module docstring."""
    field = normalise_field(findings[0].where) if findings else ""
    parts = (error_class, contract or "-", field)
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:DIGEST_LENGTH]
    label = f"{error_class} {contract or '(unidentified)'}"
    if field:
        label += f" at {field}"
    return Fingerprint(digest=digest, label=label)
