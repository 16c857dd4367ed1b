"""The store: inbox and outbox (exactly-once effect), and the failed-message store.

SQLite for one machine, PostgreSQL when several instances share the work;
the schema is managed by Alembic (``integration.store.migrate``). See
docs/storage.md for the tables, the idempotency rules and the figures.

    store = Store.connect("sqlite:///var/mesbridge.db")   # migrates to head
    outcomes = store.settle_batch(records)                 # ONE transaction
    rows = store.pending_outbox(limit=100)                 # claimed for a lease
    store.mark_sent([r.id for r in rows], sent_at=now)

Database outages surface as ``contracts.errors.TransientError``.
"""

from .failed import (
    FailedMessages,
    FailureDetail,
    FailureGroup,
    FailureStatus,
    FailureSummary,
    Revision,
)
from .fingerprint import Fingerprint
from .migrate import current_revision, downgrade, head_revision, upgrade
from .records import (
    Destination,
    FailedMessage,
    InboundRecord,
    InboxEntry,
    OrderContextRow,
    OutboundMessage,
    OutboxRow,
    SettleOutcome,
)
from .store import DEFAULT_CLAIM_LEASE, Store
from .translate import TRANSIENT_DB_ERRORS, is_transient

__all__ = [
    "DEFAULT_CLAIM_LEASE",
    "TRANSIENT_DB_ERRORS",
    "Destination",
    "FailedMessage",
    "FailedMessages",
    "FailureDetail",
    "FailureGroup",
    "FailureStatus",
    "FailureSummary",
    "Fingerprint",
    "InboundRecord",
    "InboxEntry",
    "OrderContextRow",
    "OutboundMessage",
    "OutboxRow",
    "Revision",
    "SettleOutcome",
    "Store",
    "current_revision",
    "downgrade",
    "head_revision",
    "is_transient",
    "upgrade",
]
