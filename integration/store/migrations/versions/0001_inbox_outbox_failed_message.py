"""Create inbox, outbox and failed_message.

Revision ID: 0001
Revises:
Create Date: 2026-05-09

Types are spelt out here rather than imported from models.py, so this
revision keeps meaning what it meant when it was released. Timestamps are
``DateTime(timezone=True)``: ``timestamp with time zone`` on PostgreSQL; on
SQLite a DATETIME column that ``models.UTCDateTime`` fills with ISO UTC text.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _id() -> sa.Column[int]:
    return sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False)


def _instant(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "inbox",
        _id(),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("contract", sa.Text(), nullable=False),
        sa.Column("source_message_id", sa.Text(), nullable=True),
        _instant("received_at", nullable=False),
        _instant("settled_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_inbox"),
        sa.UniqueConstraint("idempotency_key", name="uq_inbox_idempotency_key"),
    )
    op.create_table(
        "outbox",
        _id(),
        sa.Column("inbox_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("message_id", sa.Text(), nullable=False),
        sa.Column("destination", sa.Text(), nullable=False),
        sa.Column("exchange", sa.Text(), nullable=True),
        sa.Column("routing_key", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", sa.Text(), nullable=False),
        _instant("created_at", nullable=False),
        sa.Column("claimed_by", sa.Text(), nullable=True),
        _instant("claimed_until", nullable=True),
        _instant("sent_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.ForeignKeyConstraint(["inbox_id"], ["inbox.id"], name="fk_outbox_inbox_id_inbox"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index("ix_outbox_inbox_id", "outbox", ["inbox_id"])
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["created_at", "id"],
        postgresql_where=sa.text("sent_at IS NULL"),
        sqlite_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "failed_message",
        _id(),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("contract", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("error_class", sa.Text(), nullable=False),
        sa.Column("error_text", sa.Text(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        _instant("first_failed_at", nullable=False),
        _instant("last_failed_at", nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_failed_message"),
    )
    op.create_index(
        "ix_failed_message_status_last_failed_at", "failed_message", ["status", "last_failed_at"]
    )
    op.create_index("ix_failed_message_idempotency_key", "failed_message", ["idempotency_key"])


def downgrade() -> None:
    op.drop_table("failed_message")
    op.drop_index("ix_outbox_pending", table_name="outbox")
    op.drop_index("ix_outbox_inbox_id", table_name="outbox")
    op.drop_table("outbox")
    op.drop_table("inbox")
