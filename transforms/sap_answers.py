"""SAP's answer to a posting → accepted, transient (retry later) or permanent (park now).

SAP answers a BAPI call with BAPIRET2-like return messages (TYPE, ID = message class,
NUMBER, MESSAGE) and an OData call of ``API_PROC_ORDER_CONFIRMATION_2_SRV`` with an error
body whose ``code`` is ``<class>/<number>`` (``RU/494``). ``raise_for_answer`` reads those
messages the way SAP's own MES integration does: an order (or a material) locked by another
user or process is **transient**: SAP rejected the posting only because someone else holds
the lock, and the same message succeeds once the lock is released, so the caller retries
with backoff and parks only when attempts run out. Every other error is **permanent**.
docs/order-confirmations.md lists the lock messages, where each comes from and which are
unverified.

The lock messages are data (``LockMessage``), not code: a site adds the numbers its own
system answers with (``locks=DEFAULT_LOCK_MESSAGES + (...)``).

Rules:

- no message of TYPE ``E`` (error) or ``A`` (abort), and no TYPE mesbridge does not know →
  accepted (``raise_for_answer`` returns the messages it read);
- any error is a known lock → ``TransientError``: SAP stops at the lock, so the other errors
  of the same answer may be its consequences; the retry limit bounds the cost of being wrong;
- otherwise → ``SapRejected`` (a ``PermanentError``) naming every error message.

Pure: no IO; whoever calls SAP passes the messages in (no service route does yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from contracts.errors import Finding, PermanentError, TransientError

__all__ = [
    "DEFAULT_LOCK_MESSAGES",
    "LockMessage",
    "SapMessage",
    "SapRejected",
    "is_lock",
    "messages_from_odata_error",
    "raise_for_answer",
]

_OK_TYPES = frozenset({"S", "I", "W"})  # success, information, warning
_ODATA_SEVERITY = {"success": "S", "info": "I", "warning": "W", "error": "E", "abort": "A"}


@dataclass(frozen=True, slots=True, kw_only=True)
class SapMessage:
    """One SAP return message (BAPIRET2: TYPE, ID, NUMBER, MESSAGE)."""

    type: str  # S success, I information, W warning, E error, A abort
    id: str  # message class, e.g. "RU"
    number: str  # three digits, e.g. "494"
    message: str = ""

    @property
    def key(self) -> str:
        return f"{self.id} {self.number}"

    @property
    def is_error(self) -> bool:
        return self.type.strip().upper() not in _OK_TYPES


@dataclass(frozen=True, slots=True, kw_only=True)
class LockMessage:
    """An SAP message that means "locked by another user or process": retry later."""

    id: str
    number: str
    meaning: str
    verified: bool  # False: seen in public material, not confirmed against an SAP system

    @property
    def key(self) -> str:
        return f"{self.id} {self.number}"


# docs/order-confirmations.md, "SAP answers", gives the source of each entry.
DEFAULT_LOCK_MESSAGES: tuple[LockMessage, ...] = (
    LockMessage(
        id="M3",
        number="897",
        meaning="the plant data of a material is locked by a user",
        verified=False,
    ),
    LockMessage(
        id="MC",
        number="601",
        meaning="the requested object is locked by a user (enqueue conflict)",
        verified=False,
    ),
    LockMessage(
        id="CO",
        number="469",
        meaning="the order is being processed (locked) by a user",
        verified=False,
    ),
)


class SapRejected(PermanentError):
    """SAP refused the posting for a reason a retry cannot remove: park it for an analyst."""


def is_lock(message: SapMessage, locks: Iterable[LockMessage] = DEFAULT_LOCK_MESSAGES) -> bool:
    """True when ``message`` is one of the lock messages (class and number, case-insensitive)."""
    wanted = (message.id.strip().upper(), message.number.strip().zfill(3))
    return any((lock.id.upper(), lock.number.zfill(3)) == wanted for lock in locks)


def raise_for_answer(
    messages: Sequence[SapMessage],
    *,
    message_ref: str,
    locks: Iterable[LockMessage] = DEFAULT_LOCK_MESSAGES,
) -> Sequence[SapMessage]:
    """``messages`` when SAP accepted the posting; else ``TransientError`` or ``SapRejected``."""
    known_locks = tuple(locks)
    errors = [message for message in messages if message.is_error]
    if not errors:
        return messages
    locked = [message for message in errors if is_lock(message, known_locks)]
    if locked:
        raise TransientError(
            f"SAP answered {', '.join(m.key for m in locked)}: locked by another user or "
            "process; the posting is retried later",
            message_ref=message_ref,
            findings=[
                _finding(message, locked=is_lock(message, known_locks)) for message in errors
            ],
        )
    raise SapRejected(
        f"SAP rejected the posting ({len(errors)} error message{'s' if len(errors) != 1 else ''})",
        message_ref=message_ref,
        findings=[_finding(message, locked=False) for message in errors],
    )


def _finding(message: SapMessage, *, locked: bool) -> Finding:
    return Finding(
        where=f"SAP message {message.key} (type {message.type})",
        value=message.message or None,
        expected=(
            "the lock to be released: the same posting is sent again after a retry delay"
            if locked
            else "an answer without error: correct the data or SAP's customising, then replay"
        ),
    )


def messages_from_odata_error(payload: Mapping[str, Any]) -> tuple[SapMessage, ...]:
    """The messages of an SAP Gateway OData V2 error body, in the order SAP lists them.

    ``{"error": {"code": "RU/494", "message": {"lang": "en", "value": "..."},
    "innererror": {"errordetails": [{"code": "RU/494", "message": "...",
    "severity": "error"}, ...]}}}``: the details when there are any (they repeat the main
    message), else the main message. ``ValueError`` when ``payload`` is not such a body.
    """
    error = payload.get("error")
    if not isinstance(error, Mapping):
        raise ValueError("not an SAP OData error body: no 'error' object")
    inner = error.get("innererror")
    details = inner.get("errordetails") if isinstance(inner, Mapping) else None
    if isinstance(details, list) and details:
        return tuple(_detail(detail) for detail in details)
    text = error.get("message")
    if isinstance(text, Mapping):
        text = text.get("value")
    return (_message(error.get("code"), text, "error"),)


def _detail(detail: object) -> SapMessage:
    if not isinstance(detail, Mapping):
        raise ValueError(f"not an SAP OData error detail: {detail!r}")
    return _message(detail.get("code"), detail.get("message"), detail.get("severity"))


def _message(code: object, text: object, severity: object) -> SapMessage:
    if not isinstance(code, str) or not code.strip():
        raise ValueError(f"SAP OData error without a message code: {code!r}")
    # Classes may contain '/' themselves (/IWBEP/CM_MGW_RT/020): the number follows the last.
    message_class, _, number = code.strip().rpartition("/")
    if not message_class or not number.isdigit():
        message_class, number = code.strip(), ""
    kind = _ODATA_SEVERITY.get(str(severity).strip().lower(), "E")  # unknown: never success
    return SapMessage(
        type=kind, id=message_class, number=number, message=text if isinstance(text, str) else ""
    )
