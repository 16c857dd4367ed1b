"""MES → ERP through the running service: performance messages in, MBGMCR03 IDocs out, once."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from lxml import etree
from sqlalchemy import text

from contracts.registry import ContractRegistry
from tests.service.conftest import Harness
from tests.support.idoc_factory import ComponentSpec, OrderSpec, PhaseSpec, build_loipro
from tests.support.performance_factory import (
    ActualSpec,
    PerformanceSpec,
    SegmentSpec,
    build_performance,
)


def _performance(number: int, **overrides: object) -> bytes:
    spec = PerformanceSpec(
        bodid=f"PP-{number:06d}",
        order_number=str(700000 + number),
        segments=[
            SegmentSpec(
                phase="0010",
                actuals=[
                    ActualSpec(
                        material="4711",
                        quantity=f"{number}.125",
                        lot=f"lot{number:04d}",
                        properties={"SAPStorageLocation": "0001"},
                    )
                ],
            ),
            SegmentSpec(
                phase="0020",
                actuals=[
                    ActualSpec(
                        material="900100", quantity="1000", unit="ST", use="Produced", lot="B1"
                    )
                ],
            ),
        ],
    )
    for name, value in overrides.items():
        object.__setattr__(spec, name, value)
    return build_performance(spec)


def _items(body: bytes) -> list[dict[str, str]]:
    root = etree.fromstring(body)
    return [
        {child.tag: child.text or "" for child in item}
        for item in root.iter("E1BP2017_GM_ITEM_CREATE")
    ]


def test_each_performance_message_posts_its_goods_movements_exactly_once(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service()
    messages = [_performance(n) for n in range(1, 21)]
    harness.publish(messages + messages[:6], routing_key="pasx.ProductionPerformance")
    harness.wait_for(harness.settled(inputs=20))
    # Each message consumed one material (GM_CODE 03) and yielded one (GM_CODE 02).
    outputs = harness.outputs(40, target="sap")
    assert len(outputs) == 40
    assert len({delivery.message_id for delivery in outputs}) == 40
    registry = ContractRegistry.load()
    contract = registry.get("sap-idoc/MBGMCR03/1")
    by_source: dict[str, list[etree._Element]] = defaultdict(list)
    for delivery in outputs:
        assert delivery.routing_key == "sap.MBGMCR"
        # Traceable to the input's contract and the mapping profile version that made it.
        assert delivery.headers["x-mesbridge-input-contract"] == (
            "b2mml/ProductionPerformance/V0600"
        )
        assert delivery.headers["x-mesbridge-mapping"] == "embedded-1"
        assert delivery.headers["x-mesbridge-contract"] == "sap-idoc/MBGMCR03/1"
        root = etree.fromstring(delivery.body)
        assert registry.validate_xml(root, contract) is contract
        by_source[delivery.headers["x-mesbridge-source"]].append(root)
    assert set(by_source) == {f"b2mml:PASX-PLANT1:PP-{n:06d}" for n in range(1, 21)}
    docnums = [
        root.findtext("IDOC/EDI_DC40/DOCNUM") for roots in by_source.values() for root in roots
    ]
    assert len(set(docnums)) == 40
    for n in range(1, 21):
        roots = by_source[f"b2mml:PASX-PLANT1:PP-{n:06d}"]
        codes = sorted(root.findtext(".//GM_CODE") for root in roots)
        assert codes == ["02", "03"]
        issue = next(r for r in roots if r.findtext(".//GM_CODE") == "03")
        (item,) = _items(etree.tostring(issue))
        assert item["MOVE_TYPE"] == "261"
        assert item["MATERIAL"] == "000000000000004711"
        assert item["ORDERID"] == f"{700000 + n:012d}"
        assert item["BATCH"] == f"LOT{n:04d}"
        assert Decimal(item["ENTRY_QNT"]) == Decimal(f"{n}.125")
        assert item["PLANT"] == "1000"
    assert harness.count("failed_message") == 0


def test_goods_movements_take_plant_storage_and_reservation_from_the_order_sap_sent(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service()
    order = OrderSpec(
        docnum="0000000000900001",
        order_number="800001",
        plant="1100",
        phases=[
            PhaseSpec(
                number="0010",
                components=[
                    ComponentSpec(material="4711", reservation_item="0003", storage_location="RM01")
                ],
            )
        ],
    )
    harness.publish([build_loipro([order])])
    harness.wait_for(harness.settled(inputs=1))
    # PAS-X names neither plant nor storage location nor reservation.
    message = _performance(1, order_number="800001", plant=None)
    harness.publish([message], routing_key="pasx.ProductionPerformance")
    harness.wait_for(harness.settled(inputs=2))
    outputs = harness.outputs(2, target="sap")
    assert len(outputs) == 2
    issue = next(o for o in outputs if etree.fromstring(o.body).findtext(".//GM_CODE") == "03")
    (item,) = _items(issue.body)
    assert item["PLANT"] == "1100"
    # The message's own storage location wins over the order's.
    assert item["STGE_LOC"] == "0001"
    assert item["RESERV_NO"] == "0000765432"
    assert item["RES_ITEM"] == "0003"
    receipt = next(o for o in outputs if etree.fromstring(o.body).findtext(".//GM_CODE") == "02")
    (yield_item,) = _items(receipt.body)
    assert yield_item["PLANT"] == "1100"


def test_an_unmappable_performance_message_is_parked_naming_field_and_value(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service()
    bad = _performance(1)
    bad = bad.replace(
        b"<UnitOfMeasure>ST</UnitOfMeasure>", b"<UnitOfMeasure>BARREL</UnitOfMeasure>"
    )
    harness.publish([bad, _performance(2)], routing_key="pasx.ProductionPerformance")
    harness.wait_for(harness.settled(inputs=1, parked=1))
    assert len(harness.outputs(2, target="sap")) == 2  # the good message went through
    store = harness.service.store
    assert store is not None
    with store.engine.connect() as connection:
        row = connection.execute(
            text("SELECT route, contract, error_class, findings FROM failed_message")
        ).one()
    assert row.route == "performance"
    assert row.contract == "b2mml/ProductionPerformance/V0600"
    assert row.error_class == "MappingError"
    findings = row.findings if isinstance(row.findings, list) else json.loads(row.findings)
    assert any(f["value"] == "BARREL" and "UnitOfMeasure" in f["where"] for f in findings)


TULIP_EVENT = Path(__file__).parents[1] / "fixtures/tulip/completion/1/valid/phase_final.json"


def test_a_tulip_completion_posts_goods_movements_and_the_confirmation_once(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service()
    event = TULIP_EVENT.read_bytes()
    harness.publish([event, event], routing_key="tulip.completion")
    harness.wait_for(harness.settled(inputs=1))
    outputs = harness.outputs(4, target="sap")
    # Consumption (03), yield (02), by-product (05), and the phase confirmation.
    assert sorted(o.routing_key for o in outputs) == ["sap.MBGMCR"] * 3 + ["sap.PROCORDCONF"]
    assert len({o.message_id for o in outputs}) == 4
    registry = ContractRegistry.load()
    (confirmation,) = [o for o in outputs if o.routing_key == "sap.PROCORDCONF"]
    document = json.loads(confirmation.body)
    registry.validate_json(document, registry.get("sap/procordconf/1"))
    assert document["ProcOrdConf2"]["OrderID"] == "000000600001"
    assert document["ProcOrdConf2"]["ConfirmationYieldQuantity"] == "120.000"
    assert document["ProcOrdConf2"]["IsFinalConfirmation"] is True
    sources = {o.headers["x-mesbridge-source"] for o in outputs}
    assert sources == {"tulip:tulip:6f0c2a1e-0f5b-4c1e-9a0e-3d2b7c9e4a11"}
    assert harness.count("inbox") == 1  # the second post was a duplicate
