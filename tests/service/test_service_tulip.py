"""Flow F2 through the service: one Tulip work-order record per order, over real HTTP."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from adapters.tulip import FakeTulip, tulip_column
from tests.service.conftest import Harness
from tests.support.idoc_factory import OrderSpec, build_loipro

TABLE = "T_WorkOrders"
COLUMNS = [
    tulip_column(name, name.replace("_", " ").title(), kind)
    for name, kind in [
        ("material", "string"),
        ("quantity", "float"),
        ("unit", "string"),
        ("batch", "string"),
        ("plant", "string"),
        ("order_type", "string"),
        ("scheduled_start", "timestamp"),
        ("scheduled_finish", "timestamp"),
        ("status", "string"),
        ("phases", "string"),
        ("source_idoc", "string"),
    ]
]


@pytest.fixture
def fake_tulip() -> Iterator[FakeTulip]:
    with FakeTulip(
        tables={TABLE: COLUMNS}, api_key_id="apikey.2_svc", api_key_secret="svc-secret"
    ) as fake:
        yield fake


def test_work_orders_are_upserted_once_per_order(
    make_service: Callable[..., Harness], fake_tulip: FakeTulip
) -> None:
    harness = make_service(
        tulip_url=fake_tulip.base_url,
        tulip_api_key_id="apikey.2_svc",
        tulip_api_key_secret="svc-secret",
        tulip_table_id=TABLE,
    )
    orders = [
        build_loipro(
            [OrderSpec(docnum=f"{n:016d}", order_number=str(700000 + n), quantity="12.500")]
        )
        for n in range(1, 13)
    ]
    harness.publish(orders + orders[:4])
    harness.wait_for(harness.settled(inputs=12), timeout_s=30)
    records = fake_tulip.records(TABLE)
    assert sorted(str(r["id"]) for r in records) == [f"{700000 + n:012d}" for n in range(1, 13)]
    assert {r["quantity"] for r in records} == {"12.500"}
    assert len(harness.outputs(12)) == 12  # the PAS-X schedules went out as well
