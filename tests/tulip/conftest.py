"""Fixtures for the Tulip adapter tests: a fake Tulip over real HTTP and virtual time."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from tulip_testdata import KEY_ID, SECRET, TABLE, WORK_ORDER_COLUMNS, VirtualTime

from adapters.tulip import FakeTulip, TulipSettings, TulipTablesClient


@pytest.fixture
def fake() -> Iterator[FakeTulip]:
    with FakeTulip(
        tables={TABLE: WORK_ORDER_COLUMNS}, api_key_id=KEY_ID, api_key_secret=SECRET
    ) as server:
        yield server


@pytest.fixture
def vtime() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def make_client(fake: FakeTulip) -> Iterator[Callable[..., TulipTablesClient]]:
    """A client of the fake's table; ``virtual=VirtualTime`` swaps in virtual time."""
    clients: list[TulipTablesClient] = []

    def build(*, virtual: VirtualTime | None = None, **changes: Any) -> TulipTablesClient:
        settings: TulipSettings = fake.client_settings(changes.pop("table_id", TABLE), **changes)
        timing: dict[str, Any] = {}
        if virtual is not None:
            timing = {"clock": virtual.clock, "sleep": virtual.sleep, "now": virtual.now}
        client = TulipTablesClient(settings, **timing)
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
