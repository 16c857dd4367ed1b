"""The process-order pipeline step as the service builds it, on the embedded settings."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from integration.bootstrap import Components
from integration.pipeline import Pipeline
from integration.service import process_order_route
from integration.settings import Settings


def process_order_pipeline(
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Pipeline:
    components = Components(Settings())
    return Pipeline(
        process_order_route(tulip=False),
        components.translator(),
        limits=components.limits,
        outbound_exchange="mesbridge.out",
        clock=clock,
    )
