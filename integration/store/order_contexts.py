"""Keep and read what SAP said about each process order (``transforms.order_context``).

``save`` runs inside ``Store.settle_batch``'s transaction, so an order's context
exists exactly when its process order took effect. ``OrderContexts.lookup`` is
what the performance route's translator calls for each message: one primary-key
read. A later process order for the same order number (an order change)
replaces the context.

Failure modes: an unreachable database raises ``TransientError`` (the message is
retried, never parked for it); a stored context that no longer reads as an
``OrderContext`` raises ``ValueError`` (a bug or a hand-edited row).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, Engine, Text, bindparam, select
from sqlalchemy.dialects import sqlite

from transforms.order_context import OrderContext

from .engine import READ_ONLY, safe_url
from .models import order_context
from .records import OrderContextRow
from .translate import translate_errors
from .unnest import Unnest

__all__ = ["OrderContexts", "save_order_contexts"]

_UPSERT = Unnest(
    order_context,
    [
        ("order_number", "text"),
        ("plant", "text"),
        ("context", "json"),
        ("source_key", "text"),
        ("updated_at", "timestamptz"),
    ],
    conflict=(
        "ON CONFLICT (order_number) DO UPDATE SET plant = excluded.plant, "
        "context = excluded.context, source_key = excluded.source_key, "
        "updated_at = excluded.updated_at"
    ),
    serialised_json=True,  # OrderContextRow.context_json
)


def save_order_contexts(
    connection: Connection, contexts: Sequence[tuple[OrderContextRow, str]], *, now: datetime
) -> None:
    """Upsert ``(context, source idempotency key)`` pairs; the last one of an order wins."""
    latest = {context.order_number: (context, key) for context, key in contexts}
    if not latest:
        return
    rows = [
        {
            "order_number": number,
            "plant": context.plant,
            "context": context.context_json,
            "source_key": key,
            "updated_at": now,
        }
        for number, (context, key) in sorted(latest.items())
    ]
    if connection.dialect.name == "postgresql":
        _UPSERT.insert(connection, rows)  # one statement for the batch (unnest.py)
        return
    # The JSON is written already: bound as text, not serialised again by the JSON type.
    statement = sqlite.insert(order_context).values(context=bindparam("context", type_=Text()))
    statement = statement.on_conflict_do_update(
        index_elements=[order_context.c.order_number],
        set_={
            "plant": statement.excluded.plant,
            "context": statement.excluded.context,
            "source_key": statement.excluded.source_key,
            "updated_at": statement.excluded.updated_at,
        },
    )
    connection.execute(statement, rows)


class OrderContexts:
    """Reads order contexts; callable as a ``routes.OrderContextLookup``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._database = safe_url(engine.url)

    def __call__(self, order_number: str) -> OrderContext | None:
        return self.lookup(order_number)

    def lookup(self, order_number: str) -> OrderContext | None:
        with (
            translate_errors("reading an order context", database=self._database),
            self._engine.connect() as connection,
        ):
            connection.execution_options(**READ_ONLY)
            raw = connection.execute(
                select(order_context.c.context).where(order_context.c.order_number == order_number)
            ).scalar_one_or_none()
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise ValueError(f"order_context {order_number}: stored context is not an object")
        return OrderContext.from_json(raw)
