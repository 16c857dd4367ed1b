"""The exception tree of mesbridge, shaped by what the caller must do next.

It lives in ``contracts``, the bottom layer, so that every layer (contracts,
transforms, adapters, the runtime) raises and catches the same classes without
importing upward.

    MesbridgeError
    ├── PermanentError            park at once, never retry
    │   ├── UnusableInput         cannot be read as a message at all (CLI exit 2)
    │   │   ├── OversizedMessage  larger than the configured cap, refused before parsing
    │   │   ├── HostileInput      DOCTYPE, entity declaration or reference, processing trick
    │   │   └── MalformedInput    not well-formed XML/JSON, invalid encoding, truncated
    │   ├── UnknownContract       well-formed, but no registered contract matches it
    │   ├── ContractViolation     fails its contract's schema (one finding per problem)
    │   ├── MappingError          valid, but a value cannot be mapped without guessing
    │   ├── IdempotencyConflict   a key seen before arrives with different content
    │   └── ProcessingFailure     mesbridge itself failed on this message (a defect, or a
    │                             worker process that died on it): parked so others flow
    ├── TransientError            may succeed later: retry with backoff
    │   └── RetryLater            THIS message cannot go on yet (an order SAP has not sent,
    │                             SAP says the order is locked): delay it, let others flow
    └── ConfigurationError        the installation is wrong; refuse to start

A plain ``TransientError`` means a dependency (database, broker, downstream
system) is away: the consumer stops consuming and backs off, and nothing is
parked for it. ``RetryLater`` is about one message: it goes through the delay
queues and is parked when its attempts or its age run out.

Every message-related error names the message (``message_ref``) and carries
``findings``: where (XPath or segment/field), the line, the value found and what
was expected, so that an ERP analyst can act on it without reading code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "ConfigurationError",
    "ContractViolation",
    "Finding",
    "HostileInput",
    "IdempotencyConflict",
    "MalformedInput",
    "MappingError",
    "MesbridgeError",
    "OversizedMessage",
    "PermanentError",
    "ProcessingFailure",
    "RetryLater",
    "TransientError",
    "UnknownContract",
    "UnusableInput",
]

_MAX_VALUE_SHOWN = 80


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One concrete problem in one message: where, what was found, what was expected."""

    where: str
    expected: str
    value: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        location = self.where if self.line is None else f"{self.where} (line {self.line})"
        if self.value is None:
            return f"{location}: expected {self.expected}"
        return f"{location}: found {_quote(self.value)}, expected {self.expected}"


def _quote(value: str) -> str:
    # Long values are shortened for display only; the message itself is kept whole.
    shown = value if len(value) <= _MAX_VALUE_SHOWN else value[:_MAX_VALUE_SHOWN] + "…"
    return repr(shown)


class MesbridgeError(Exception):
    """Root of every error mesbridge raises on purpose."""

    def __init__(
        self,
        summary: str,
        *,
        message_ref: str | None = None,
        findings: Iterable[Finding] = (),
    ) -> None:
        self.summary = summary
        self.message_ref = message_ref
        self.findings: tuple[Finding, ...] = tuple(findings)
        super().__init__(self.render())

    def render(self) -> str:
        head = self.summary if self.message_ref is None else f"{self.message_ref}: {self.summary}"
        if not self.findings:
            return head
        return head + "".join(f"\n  - {finding}" for finding in self.findings)

    def with_message_ref(self, message_ref: str) -> MesbridgeError:
        """The same error, naming the message it is about (keeps the class)."""
        clone = self.__class__.__new__(self.__class__)
        clone.__dict__.update(self.__dict__)
        MesbridgeError.__init__(
            clone, self.summary, message_ref=message_ref, findings=self.findings
        )
        return clone


class PermanentError(MesbridgeError):
    """Retrying cannot help: the message is parked at once for an analyst."""


class UnusableInput(PermanentError):
    """The bytes cannot be read as a message at all."""


class OversizedMessage(UnusableInput):
    """The message is larger than the configured cap; it was not parsed."""


class HostileInput(UnusableInput):
    """The message uses XML features that can cost memory or leak files; it was not parsed."""


class MalformedInput(UnusableInput):
    """Not well-formed XML or JSON, an invalid encoding, or a truncated document."""


class UnknownContract(PermanentError):
    """Well-formed, but no registered contract matches the type and version it declares."""


class ContractViolation(PermanentError):
    """The message does not satisfy the schema of its contract (``contract``: its key)."""

    def __init__(
        self,
        summary: str,
        *,
        message_ref: str | None = None,
        findings: Iterable[Finding] = (),
        contract: str | None = None,
    ) -> None:
        self.contract = contract
        super().__init__(summary, message_ref=message_ref, findings=findings)


class MappingError(PermanentError):
    """The message is valid, but a value cannot be mapped without truncating or guessing."""


class IdempotencyConflict(PermanentError):
    """The idempotency key was seen before with other content: parked for review, never dropped."""


class ProcessingFailure(PermanentError):
    """mesbridge failed on this message: an unexpected exception, or the worker process
    working on it died twice. Parked so that the messages behind it flow; replay it once
    the cause is fixed."""


class TransientError(MesbridgeError):
    """A dependency is unavailable or busy; the same message may succeed later."""


class RetryLater(TransientError):
    """This message cannot take effect yet, though nothing is broken; others may go on."""


class ConfigurationError(MesbridgeError):
    """The installation (settings, mapping files, contracts) is wrong: refuse to start."""
