"""The analyst's review of failed messages: fingerprints, order numbers, replay links, revisions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-05-10

Adds to ``failed_message``: ``fingerprint`` (the failure group, indexed),
``order_numbers`` (for ``mesbridge failed list --order``), ``replay_of`` (a
failure of a replayed message points to the row it replayed), ``resolved_at``
and ``resolution`` (set when a replay took effect or was found to have taken
effect before). Creates ``failed_message_revision``: an analyst's edited copy,
kept beside the original body, which is never overwritten.

Rows that exist already get their fingerprint and order numbers computed here,
with the code of ``integration.store.fingerprint`` and
``integration.store.order_numbers`` (the same rules new rows get). Rendered as
SQL for review (``upgrade --sql``), Python cannot run: existing rows then get
the fingerprint ``000000000000`` (shown as "not grouped") and no order numbers.

SQLite cannot add a foreign key or make a column NOT NULL in place: Alembic's
batch mode copies the table there; on PostgreSQL the same steps are plain
``ALTER TABLE`` statements.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BACKFILL_CHUNK = 200


def _id_type() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _failed_message(*, reviewed: bool) -> sa.Table:
    """The table as it is before (``reviewed=False``) or after this revision's first step.

    Batch mode copies SQLite tables from this description instead of reading the
    database, which it cannot do when the SQL is only rendered for review.
    """
    columns: list[sa.Column[object]] = [
        sa.Column("id", _id_type(), primary_key=True),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("contract", sa.Text(), nullable=True),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("error_class", sa.Text(), nullable=False),
        sa.Column("error_text", sa.Text(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
    ]
    constraints: list[sa.Constraint] = [sa.PrimaryKeyConstraint("id", name="pk_failed_message")]
    if reviewed:
        columns += _review_columns()
        constraints.append(_replay_of_fk())
    return sa.Table(
        "failed_message",
        sa.MetaData(),
        *columns,
        *constraints,
        sa.Index("ix_failed_message_status_last_failed_at", "status", "last_failed_at"),
        sa.Index("ix_failed_message_idempotency_key", "idempotency_key"),
    )


def _review_columns() -> list[sa.Column[object]]:
    return [
        sa.Column("fingerprint", sa.Text(), nullable=True),
        sa.Column("order_numbers", sa.Text(), nullable=True),
        sa.Column("replay_of", _id_type(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.Text(), nullable=True),
    ]


def _replay_of_fk() -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["replay_of"], ["failed_message.id"], name="fk_failed_message_replay_of_failed_message"
    )


def upgrade() -> None:
    with op.batch_alter_table("failed_message", copy_from=_failed_message(reviewed=False)) as batch:
        for column in _review_columns():
            batch.add_column(column)
        batch.create_foreign_key(
            "fk_failed_message_replay_of_failed_message", "failed_message", ["replay_of"], ["id"]
        )
    _backfill()
    with op.batch_alter_table("failed_message", copy_from=_failed_message(reviewed=True)) as batch:
        batch.alter_column("fingerprint", existing_type=sa.Text(), nullable=False)
        batch.create_index("ix_failed_message_fingerprint", ["fingerprint"])
        batch.create_index("ix_failed_message_replay_of", ["replay_of"])
    op.create_table(
        "failed_message_revision",
        sa.Column("id", _id_type(), nullable=False),
        sa.Column("failed_message_id", _id_type(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("body", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("diff", sa.Text(), nullable=False),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_failed_message_revision"),
        sa.ForeignKeyConstraint(
            ["failed_message_id"],
            ["failed_message.id"],
            name="fk_failed_message_revision_failed_message_id_failed_message",
        ),
    )
    op.create_index(
        "ix_failed_message_revision_failed_message_id",
        "failed_message_revision",
        ["failed_message_id"],
    )


def _backfill() -> None:
    if op.get_context().as_sql:
        # integration.store.fingerprint.UNGROUPED, spelt out: this revision keeps its meaning.
        op.execute("UPDATE failed_message SET fingerprint = '000000000000'")
        return
    # Imported here: only an upgrade over existing rows needs them.
    from integration.store.fingerprint import failure_fingerprint  # noqa: PLC0415
    from integration.store.order_numbers import order_numbers_in  # noqa: PLC0415
    from integration.store.records import findings_from_json  # noqa: PLC0415

    table = sa.table(
        "failed_message",
        sa.column("id", _id_type()),
        sa.column("contract", sa.Text()),
        sa.column("body", sa.LargeBinary()),
        sa.column("error_class", sa.Text()),
        sa.column("findings", sa.JSON()),
        sa.column("fingerprint", sa.Text()),
        sa.column("order_numbers", sa.Text()),
    )
    connection = op.get_bind()
    last_id = 0
    while True:
        rows = connection.execute(
            sa.select(
                table.c.id, table.c.contract, table.c.body, table.c.error_class, table.c.findings
            )
            .where(table.c.id > last_id)
            .order_by(table.c.id)
            .limit(_BACKFILL_CHUNK)
        ).all()
        if not rows:
            return
        for row in rows:
            findings = findings_from_json(row.findings)
            numbers = order_numbers_in(bytes(row.body))
            connection.execute(
                sa.update(table)
                .where(table.c.id == row.id)
                .values(
                    fingerprint=failure_fingerprint(row.error_class, row.contract, findings).digest,
                    order_numbers=",".join(numbers) or None,
                )
            )
        last_id = rows[-1].id


def downgrade() -> None:
    op.drop_index(
        "ix_failed_message_revision_failed_message_id", table_name="failed_message_revision"
    )
    op.drop_table("failed_message_revision")
    after = _failed_message(reviewed=True)
    after.c.fingerprint.nullable = False
    sa.Index("ix_failed_message_fingerprint", after.c.fingerprint)
    sa.Index("ix_failed_message_replay_of", after.c.replay_of)
    with op.batch_alter_table("failed_message", copy_from=after) as batch:
        batch.drop_index("ix_failed_message_replay_of")
        batch.drop_index("ix_failed_message_fingerprint")
        batch.drop_constraint("fk_failed_message_replay_of_failed_message", type_="foreignkey")
        batch.drop_column("resolution")
        batch.drop_column("resolved_at")
        batch.drop_column("replay_of")
        batch.drop_column("order_numbers")
        batch.drop_column("fingerprint")
