"""Alembic environment: migrates on the connection ``integration.store.migrate`` hands over.

Online, ``config.attributes["connection"]`` is an open connection inside a
transaction that already holds the migration lock; every revision runs in it.
Without one (``upgrade --sql``), Alembic renders the SQL for the URL's dialect
instead of running it.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from integration.store.models import metadata

config = context.config


def _run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def _run_online(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    _run_offline()
else:
    handed_over = config.attributes.get("connection")
    if not isinstance(handed_over, Connection):
        raise RuntimeError(
            "run the store's migrations through integration.store.migrate "
            "(python -m integration.store upgrade), which takes the migration lock"
        )
    _run_online(handed_over)
