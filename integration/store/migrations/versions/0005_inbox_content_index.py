"""Index the inbox by content hash: an input seen before is known before it is transformed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25

The consumer loop looks a batch's content hashes up before the pipeline step
(``Store.settled_contents``): a message whose exact bytes already took effect is
acknowledged as a duplicate without being validated and transformed again.

On PostgreSQL ``CREATE INDEX`` blocks writes to ``inbox`` while it builds: on an
inbox of millions of rows that is seconds to a minute at the upgrade.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_inbox_content_sha256", "inbox", ["content_sha256"])


def downgrade() -> None:
    op.drop_index("ix_inbox_content_sha256", table_name="inbox")
