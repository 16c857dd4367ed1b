"""Shared test data for the Tulip tests: the table, the credentials, virtual time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from adapters.tulip import tulip_column

TABLE = "WorkOrders01"
SECRET = "s3cr3t-Tulip-KEY-value"
KEY_ID = "apikey.2_TestKey42"

WORK_ORDER_COLUMNS = [
    tulip_column("ahvbb_material", "Material"),
    tulip_column("ahvbb_quantity", "Quantity", "float"),
    tulip_column("ahvbb_unit", "Unit"),
    tulip_column("ahvbb_phases", "Phases", "integer"),
    tulip_column("ahvbb_start", "Scheduled Start", "timestamp"),
    tulip_column("ahvbb_status", "Status"),
    tulip_column("ahvbb_old", "Old Quantity", "float", hidden=True),
]


class VirtualTime:
    """A monotonic clock that only moves when someone sleeps; records every sleep."""

    def __init__(self) -> None:
        self.now_s = 1000.0
        self.sleeps: list[float] = []
        self.wall = datetime(2026, 5, 4, 12, 0, 0, tzinfo=UTC)

    def clock(self) -> float:
        return self.now_s

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now_s += seconds

    def now(self) -> datetime:
        return self.wall + timedelta(seconds=self.now_s - 1000.0)
