"""The store's tables (SQLAlchemy Core) and the UTC timestamp type they share.

The tables, created by the migrations in ``migrations/versions``:

- ``inbox``: one row per input that took effect, unique on ``idempotency_key``;
  a repeat is recognised by the database, never by process memory.
- ``outbox``: the outputs written in the same transaction as their inbox row,
  unique on ``message_id``; a row is pending while ``sent_at`` is NULL and a
  relay holds it while ``claimed_until`` lies in the future.
- ``failed_message``: every parked input, kept whole; never deduplicated.
- ``failed_message_revision`` (0003): an analyst's edited copies, beside the original.
- ``audit_entry`` (0002): the GMP audit trail, append-only and HMAC-chained
  (``integration.audit``); triggers refuse UPDATE and DELETE.

These definitions and the migration must agree: a test runs Alembic's
``compare_metadata`` against the migrated database. Change both, together,
through a new revision.

Failure modes: binding a naive ``datetime`` raises ``ValueError`` (a caller
bug: mesbridge stores instants, and a naive value has no instant).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator, TypeEngine

__all__ = [
    "UTCDateTime",
    "audit_entry",
    "failed_message",
    "failed_message_revision",
    "inbox",
    "metadata",
    "outbox",
]

# Deterministic constraint and index names: migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

# Fixed width, so that text comparison on SQLite orders instants correctly (leases, oldest first).
_SQLITE_STORAGE = (
    "%(year)04d-%(month)02d-%(day)02dT%(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06dZ"
)
_SQLITE_PATTERN = r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d{6})Z$"


class UTCDateTime(TypeDecorator[datetime]):
    """An instant: stored in UTC, always returned timezone-aware (UTC).

    PostgreSQL keeps it in ``timestamp with time zone``; SQLite has no
    timestamp type, so it is kept as ISO 8601 text in UTC with a ``Z``
    (``2026-05-09T07:35:25.000123Z``).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            # sqlite.DATETIME's constructor carries no annotations in SQLAlchemy.
            text_instant = sqlite.DATETIME(  # type: ignore[no-untyped-call]
                storage_format=_SQLITE_STORAGE, regexp=_SQLITE_PATTERN
            )
            return dialect.type_descriptor(text_instant)
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()}: the store keeps instants; "
                "attach a time zone (e.g. datetime.now(UTC))"
            )
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # SQLite hands back the stored UTC text as a naive datetime.
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _id_column() -> Column[int]:
    # BIGINT on PostgreSQL (an identity that outlives years of traffic); on SQLite only
    # "INTEGER PRIMARY KEY" becomes the auto-numbered rowid.
    return Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True)


inbox = Table(
    "inbox",
    metadata,
    _id_column(),
    Column("idempotency_key", Text(), nullable=False),
    Column("content_sha256", String(64), nullable=False),
    Column("route", Text(), nullable=False),
    Column("contract", Text(), nullable=False),
    Column("source_message_id", Text(), nullable=True),
    Column("received_at", UTCDateTime(), nullable=False),
    Column("settled_at", UTCDateTime(), nullable=False),
    UniqueConstraint("idempotency_key"),
    # 0005: the consumer loop finds inputs whose exact bytes took effect before (duplicates)
    # before it transforms them.
    Index("ix_inbox_content_sha256", "content_sha256"),
)

outbox = Table(
    "outbox",
    metadata,
    _id_column(),
    Column("inbox_id", ForeignKey("inbox.id"), nullable=False),
    Column("message_id", Text(), nullable=False),
    Column("destination", Text(), nullable=False),
    Column("exchange", Text(), nullable=True),
    Column("routing_key", Text(), nullable=False),
    Column("headers", JSON(), nullable=False),
    Column("body", LargeBinary(), nullable=False),
    Column("content_type", Text(), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("claimed_by", Text(), nullable=True),
    Column("claimed_until", UTCDateTime(), nullable=True),
    Column("sent_at", UTCDateTime(), nullable=True),
    UniqueConstraint("message_id"),
    Index("ix_outbox_inbox_id", "inbox_id"),
)

# Only pending rows are indexed: the relay's "oldest first" scan stays small however
# many rows have been sent.
Index(
    "ix_outbox_pending",
    outbox.c.created_at,
    outbox.c.id,
    postgresql_where=outbox.c.sent_at.is_(None),
    sqlite_where=outbox.c.sent_at.is_(None),
)

failed_message = Table(
    "failed_message",
    metadata,
    _id_column(),
    Column("idempotency_key", Text(), nullable=True),
    Column("route", Text(), nullable=False),
    Column("contract", Text(), nullable=True),
    Column("body", LargeBinary(), nullable=False),
    Column("headers", JSON(), nullable=False),
    Column("error_class", Text(), nullable=False),
    Column("error_text", Text(), nullable=False),
    Column("findings", JSON(), nullable=False),
    Column("attempts", Integer(), nullable=False),
    Column("first_failed_at", UTCDateTime(), nullable=False),
    Column("last_failed_at", UTCDateTime(), nullable=False),
    Column("status", Text(), nullable=False),
    # 0003: the analyst's review (integration.store.failed, docs/failed-messages.md).
    Column("fingerprint", Text(), nullable=False),
    Column("order_numbers", Text(), nullable=True),
    Column("replay_of", ForeignKey("failed_message.id"), nullable=True),
    Column("resolved_at", UTCDateTime(), nullable=True),
    Column("resolution", Text(), nullable=True),
    Index("ix_failed_message_status_last_failed_at", "status", "last_failed_at"),
    Index("ix_failed_message_idempotency_key", "idempotency_key"),
    Index("ix_failed_message_fingerprint", "fingerprint"),
    Index("ix_failed_message_replay_of", "replay_of"),
)

# 0003: an analyst's edited copy of a failed message; the original body is never overwritten.
failed_message_revision = Table(
    "failed_message_revision",
    metadata,
    _id_column(),
    Column("failed_message_id", ForeignKey("failed_message.id"), nullable=False),
    Column("created_at", UTCDateTime(), nullable=False),
    Column("actor", Text(), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("body", LargeBinary(), nullable=False),
    Column("sha256", String(64), nullable=False),
    Column("diff", Text(), nullable=False),
    Column("replayed_at", UTCDateTime(), nullable=True),
    Index("ix_failed_message_revision_failed_message_id", "failed_message_id"),
)

# The audit trail (integration.audit): ``seq`` is assigned by the appender under its lock,
# because the entry's MAC covers it; it is never reused and never has gaps.
audit_entry = Table(
    "audit_entry",
    metadata,
    Column(
        "seq",
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=False,
    ),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("actor", Text(), nullable=False),
    Column("action", Text(), nullable=False),
    Column("subject", Text(), nullable=False),
    Column("reason", Text(), nullable=False),
    Column("before_sha256", String(64), nullable=True),
    Column("after_sha256", String(64), nullable=True),
    Column("details", Text(), nullable=False),
    Column("prev_mac", String(64), nullable=False),
    Column("mac", String(64), nullable=False),
    Index("ix_audit_entry_recorded_at", "recorded_at"),
    Index("ix_audit_entry_action_seq", "action", "seq"),
)

# What SAP sent about each process order (plant, storage locations, reservations), kept so
# goods movements the MES reports later can be completed (transforms.order_context). The
# latest process order for an order number wins: an order change replaces its context.
order_context = Table(
    "order_context",
    metadata,
    Column("order_number", Text(), primary_key=True),
    Column("plant", Text(), nullable=False),
    Column("context", JSON(), nullable=False),
    Column("source_key", Text(), nullable=False),
    Column("updated_at", UTCDateTime(), nullable=False),
)
