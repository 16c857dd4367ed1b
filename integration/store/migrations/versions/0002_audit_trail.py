"""Create audit_entry, the append-only, HMAC-chained audit trail, and its guard triggers.

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-10

The triggers are defence in depth: a role that owns the table (or a database
administrator) can still disable or drop them, which is why every entry is
chained with HMAC-SHA256 under a key kept outside the database
(``integration.audit``). PostgreSQL refuses UPDATE, DELETE and TRUNCATE with a
statement-level trigger; SQLite refuses UPDATE and DELETE with ``RAISE(ABORT)``.
Dropping the table (downgrade) drops the triggers with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSED = "audit_entry is append-only: the audit trail may only be inserted into and read"

# No '%' and no ':name' in these statements: they pass through SQLAlchemy's text().
_PG_FUNCTION = f"""
CREATE FUNCTION audit_entry_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
    RAISE EXCEPTION USING
        ERRCODE = 'insufficient_privilege',
        MESSAGE = TG_OP || ' refused; {_REFUSED}';
END
$body$
"""
_PG_TRIGGER = """
CREATE TRIGGER audit_entry_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_entry
    FOR EACH STATEMENT EXECUTE FUNCTION audit_entry_refuse_change()
"""
_SQLITE_TRIGGERS = [
    f"""
CREATE TRIGGER audit_entry_no_{verb.lower()} BEFORE {verb} ON audit_entry
BEGIN
    SELECT RAISE(ABORT, '{verb} refused; {_REFUSED}');
END
"""
    for verb in ("UPDATE", "DELETE")
]


def upgrade() -> None:
    op.create_table(
        "audit_entry",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
            autoincrement=False,
        ),
        sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("before_sha256", sa.String(64), nullable=True),
        sa.Column("after_sha256", sa.String(64), nullable=True),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_mac", sa.String(64), nullable=False),
        sa.Column("mac", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_audit_entry"),
    )
    op.create_index("ix_audit_entry_recorded_at", "audit_entry", ["recorded_at"])
    op.create_index("ix_audit_entry_action_seq", "audit_entry", ["action", "seq"])
    dialect = op.get_context().dialect.name
    if dialect == "postgresql":
        op.execute(_PG_FUNCTION)
        op.execute(_PG_TRIGGER)
    elif dialect == "sqlite":
        for trigger in _SQLITE_TRIGGERS:
            op.execute(trigger)


def downgrade() -> None:
    op.drop_index("ix_audit_entry_action_seq", table_name="audit_entry")
    op.drop_index("ix_audit_entry_recorded_at", table_name="audit_entry")
    op.drop_table("audit_entry")
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP FUNCTION audit_entry_refuse_change()")
