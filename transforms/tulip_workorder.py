"""``ProcessOrder`` → one Tulip Work Orders table record (flow F2).

The record's ``id`` is the order number, so writing it again is an update, not a
second order. Column keys are Tulip's internal column ids from the mapping
profile (a field without a configured id is not written). Decimals go as exact
strings (sent with ``X-Tulip-Number-Format: decimal``), times as ISO 8601 with
the plant's offset.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from transforms.mapping import MappingProfile
from transforms.model import ProcessOrder

__all__ = ["TulipRecord", "order_to_tulip_record"]

TulipRecord = dict[str, str | None]


def order_to_tulip_record(order: ProcessOrder, profile: MappingProfile) -> TulipRecord:
    values: Mapping[str, str | None] = {
        "material": order.material,
        "quantity": format(order.total.value, "f"),
        "unit": profile.units.partner_code(order.total.unit, "tulip"),
        "batch": order.batch,
        "plant": order.plant,
        "order_type": order.order_type,
        "scheduled_start": _iso(order.start),
        "scheduled_finish": _iso(order.finish),
        "status": " ".join(order.status) or None,
        "phases": "; ".join(
            f"{phase.number} {phase.description}" if phase.description else phase.number
            for phase in order.phases
        )
        or None,
        "source_idoc": "/".join(order.control.idempotency_key),
    }
    record: TulipRecord = {"id": order.order_number}
    for field, column_id in profile.tulip_columns.ids.items():
        if field in values:
            record[column_id] = values[field]
    return record


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
