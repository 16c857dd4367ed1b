"""PerformanceReport → MBGMCR03: golden files, MappingError cases, properties, contract."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import MappingError
from contracts.registry import ContractRegistry
from integration.mapping_files import load_mapping_profile
from tests.support.sap_sender import idoc_sender
from transforms.mapping import MappingProfile
from transforms.mbgmcr import GoodsMovementIdoc, goods_movement_idocs
from transforms.model import MaterialActual, MaterialRole, PerformanceReport, Quantity, Unit
from transforms.movements import DEFAULT_MOVEMENT_RULES, reversal_type

GOLDEN = (
    Path(__file__).resolve().parent.parent / "fixtures" / "sap-idoc" / "MBGMCR03" / "1" / "valid"
)
KG = Unit(sap="KG", iso="KGM")
PC = Unit(sap="ST", iso="PCE")
SENDER = idoc_sender()
CREATED = datetime(2026, 12, 2, 13, 10, tzinfo=UTC)
PROFILE: MappingProfile = load_mapping_profile()
REGISTRY = ContractRegistry.load()
CONTRACT = REGISTRY.get("sap-idoc/MBGMCR03/1")


def _report(
    *actuals: MaterialActual, plant: str | None = "1000", **changes: object
) -> PerformanceReport:
    report = PerformanceReport(
        sender="PASX01",
        document_id="EV-77-0001",
        contract="b2mml/ProductionPerformance/V0600",
        order_number="600001",
        # 23:30 UTC on 1 Dec is 2 Dec in Berlin: the posting date must be the plant's day.
        event_time=datetime(2026, 12, 1, 23, 30, tzinfo=UTC),
        plant=plant,
        actuals=actuals,
    )
    return replace(report, **changes)  # type: ignore[arg-type]


def _actual(role: MaterialRole, material: str, qty: str, **kw: object) -> MaterialActual:
    return MaterialActual(
        role=role,
        material=material,
        quantity=Quantity(value=Decimal(qty), unit=kw.pop("unit", KG)),  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


def _idocs(report: PerformanceReport, base: int = 4200) -> list[GoodsMovementIdoc]:
    return goods_movement_idocs(
        report, PROFILE, sender=SENDER, created_at=CREATED, docnum_base=base
    )


def _text(idoc: GoodsMovementIdoc, path: str) -> list[str]:
    return [str(e.text) for e in idoc.element.iterfind(path)]


CASES = {
    "consumption": _report(
        _actual(
            MaterialRole.CONSUMED,
            "300010",
            "39.95",
            batch="x25j0001",
            storage_location="RM01",
            reservation="1234",
            reservation_item="1",
            final=True,
        ),
        _actual(MaterialRole.CONSUMED, "300011", "0.125", storage_location="RM01", plant="1100"),
    ),
    "yield-with-by-product": _report(
        _actual(
            MaterialRole.PRODUCED,
            "500001",
            "12000",
            unit=PC,
            batch="B26001",
            storage_location="FG01",
            final=True,
        ),
        _actual(
            MaterialRole.BY_PRODUCT, "500900", "3.5", batch="B26001BP", storage_location="FG01"
        ),
    ),
    "reversal": _report(
        _actual(
            MaterialRole.CONSUMED,
            "300010",
            "1.5",
            batch="X25J0001",
            storage_location="RM01",
            reversal=True,
        ),
        _actual(MaterialRole.PRODUCED, "500001", "10", unit=PC, batch="B26001", reversal=True),
        _actual(MaterialRole.BY_PRODUCT, "500900", "0.5", reversal=True),
    ),
    "long-material": _report(
        _actual(
            MaterialRole.CONSUMED,
            "API-CARBOPLATIN-SOLUTION-10MG-ML-EU",
            "2.000",
            storage_location="RM02",
        ),
        document_id="urn:pasx:bod:0f6e1c2a-9d41-4b8e-a3c1-7b2f4e6d9a10",
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    idocs = _idocs(CASES[name])
    written = b"".join(idoc.to_bytes() for idoc in idocs)
    for idoc in idocs:
        REGISTRY.validate_xml(idoc.element)  # identified and validated by the registry
    expected_path = GOLDEN / f"{name}.xml"
    if os.environ.get("MESBRIDGE_REGENERATE_GOLDEN") == "1":
        expected_path.write_bytes(written)
    assert written == expected_path.read_bytes()


def test_consumption_fields() -> None:
    [idoc] = _idocs(CASES["consumption"])
    assert idoc.gm_code == "03"
    assert idoc.docnum == "0000000000420003"
    assert _text(idoc, ".//E1BP2017_GM_ITEM_CREATE/MATERIAL") == [
        "000000000000300010",
        "000000000000300011",
    ]
    assert _text(idoc, ".//ORDERID") == ["000000600001", "000000600001"]
    assert _text(idoc, ".//BATCH") == ["X25J0001"]
    assert _text(idoc, ".//ENTRY_QNT") == ["39.950", "0.125"]
    assert _text(idoc, ".//PLANT") == ["1000", "1100"]
    assert _text(idoc, ".//RESERV_NO") == ["0000001234"]
    assert _text(idoc, ".//RES_ITEM") == ["0001"]
    assert _text(idoc, ".//WITHDRAWN") == ["X"]
    assert _text(idoc, ".//MVT_IND") == []
    assert _text(idoc, ".//PSTNG_DATE") == ["20261202"]
    assert _text(idoc, ".//CREDAT") + _text(idoc, ".//CRETIM") == ["20261202", "141000"]
    assert _text(idoc, ".//DIRECT") == ["2"]


def test_yield_and_by_product_are_two_documents() -> None:
    receipt, by_product = _idocs(CASES["yield-with-by-product"])
    assert (receipt.gm_code, by_product.gm_code) == ("02", "05")
    assert _text(receipt, ".//MOVE_TYPE") == ["101"]
    assert _text(receipt, ".//MVT_IND") == ["F"]
    assert _text(receipt, ".//NO_MORE_GR") == ["X"]
    assert _text(receipt, ".//ENTRY_UOM") + _text(receipt, ".//ENTRY_UOM_ISO") == ["ST", "PCE"]
    assert _text(by_product, ".//MOVE_TYPE") == ["531"]
    assert receipt.reference != by_product.reference
    assert receipt.message_id != by_product.message_id
    assert receipt.docnum != by_product.docnum


def test_reversal_move_types() -> None:
    moves = {idoc.gm_code: _text(idoc, ".//MOVE_TYPE") for idoc in _idocs(CASES["reversal"])}
    assert moves == {"02": ["102"], "03": ["262"], "05": ["532"]}


def test_long_material_goes_to_material_long_only() -> None:
    [idoc] = _idocs(CASES["long-material"])
    assert _text(idoc, ".//MATERIAL") == []
    assert _text(idoc, ".//MATERIAL_LONG") == ["API-CARBOPLATIN-SOLUTION-10MG-ML-EU"]
    header = _text(idoc, ".//HEADER_TXT")[0]
    assert len(header) <= 25 and header.startswith("mesbridge ")
    assert len(idoc.reference) == 16


def _error(report: PerformanceReport) -> MappingError:
    with pytest.raises(MappingError) as caught:
        _idocs(report)
    return caught.value


def test_batch_of_eleven_characters_is_refused_whole() -> None:
    error = _error(_report(_actual(MaterialRole.CONSUMED, "300010", "1", batch="CRBN0001_LO")))
    assert "CRBN0001_LO" in str(error)
    assert error.findings[0].where.endswith("BATCH")
    assert error.message_ref == "b2mml:PASX01:EV-77-0001"


def test_four_decimals_are_never_rounded() -> None:
    error = _error(_report(_actual(MaterialRole.CONSUMED, "300010", "1.2345")))
    assert error.findings[0].value == "1.2345"
    assert "3 decimals" in error.findings[0].expected


def test_trailing_zero_decimals_are_not_an_error() -> None:
    [idoc] = _idocs(_report(_actual(MaterialRole.CONSUMED, "300010", "1.2500")))
    assert _text(idoc, ".//ENTRY_QNT") == ["1.250"]


def test_fourteen_integer_digits_are_refused() -> None:
    error = _error(_report(_actual(MaterialRole.CONSUMED, "300010", "10000000000000")))
    assert "13 digits" in error.findings[0].expected


def test_no_plant_anywhere_names_the_item() -> None:
    error = _error(_report(_actual(MaterialRole.PRODUCED, "500001", "1"), plant=None))
    assert error.findings[0].where == "MaterialActual[1] (produced 500001) PLANT"


def test_unit_without_iso_code() -> None:
    error = _error(
        _report(_actual(MaterialRole.CONSUMED, "300010", "1", unit=Unit(sap="ZZ", iso="")))
    )
    assert error.findings[0].where.endswith("ENTRY_UOM_ISO")
    assert "ZZ" in error.findings[0].expected


def test_all_problems_are_reported_at_once() -> None:
    error = _error(
        _report(
            _actual(MaterialRole.CONSUMED, "300010", "1.2345", batch="CRBN0001_LOT01"),
            _actual(MaterialRole.PRODUCED, "500001", "0"),
        )
    )
    assert [f.where.rsplit(" ", 1)[1] for f in error.findings] == [
        "BATCH",
        "ENTRY_QNT",
        "ENTRY_QNT",
    ]


def test_plants_on_different_posting_dates_are_refused() -> None:
    profile = replace(
        PROFILE, plant_timezones={**PROFILE.plant_timezones, "2000": ZoneInfo("America/New_York")}
    )
    report = _report(
        _actual(MaterialRole.CONSUMED, "300010", "1", plant="1000"),
        _actual(MaterialRole.CONSUMED, "300011", "1", plant="2000"),
    )
    with pytest.raises(MappingError, match="plant 1000 gives 20261202, plant 2000 gives 20261201"):
        goods_movement_idocs(report, profile, sender=SENDER, created_at=CREATED, docnum_base=1)


def test_empty_report_gives_no_idoc() -> None:
    assert _idocs(_report()) == []


def test_naive_times_and_bad_docnum_base_are_caller_bugs() -> None:
    report = _report(_actual(MaterialRole.CONSUMED, "300010", "1"))
    with pytest.raises(ValueError, match="timezone-aware"):
        goods_movement_idocs(
            report, PROFILE, sender=SENDER, created_at=datetime(2026, 1, 1), docnum_base=1
        )
    with pytest.raises(ValueError, match="docnum_base"):
        _idocs(report, base=10**14)


def test_contract_refuses_what_sap_would_refuse() -> None:
    [idoc] = _idocs(CASES["consumption"])
    element = idoc.element
    quantity = element.find(".//ENTRY_QNT")
    material = element.find(".//MATERIAL")
    assert quantity is not None and material is not None
    quantity.text = "1.2345"
    parent = material.getparent()
    assert parent is not None
    parent.remove(material)
    findings = CONTRACT.validate_xml(element)
    assert {f.where.rsplit("/", 1)[-1].split("[")[0] for f in findings} >= {
        "ENTRY_QNT",
        "E1BP2017_GM_ITEM_CREATE",
    }


# ---------------------------------------------------------------------------- properties

_roles = st.sampled_from(list(MaterialRole))
_quantities = st.decimals(
    min_value=Decimal("0.001"), max_value=Decimal("9999999999999.999"), places=3, allow_nan=False
)
_materials = st.one_of(
    st.integers(min_value=1, max_value=10**18 - 1).map(str),
    st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=40),
)
_actuals = st.builds(
    lambda role, material, qty, reversal, final, plant: MaterialActual(
        role=role,
        material=material,
        quantity=Quantity(value=qty, unit=KG),
        reversal=reversal,
        final=final,
        plant=plant,
    ),
    _roles,
    _materials,
    _quantities,
    st.booleans(),
    st.booleans(),
    st.sampled_from([None, "1000", "1100"]),
)
_reports = st.builds(
    lambda actuals, doc: _report(*actuals, document_id=doc),
    st.lists(_actuals, min_size=1, max_size=8),
    st.text(min_size=1, max_size=60),
)


@settings(max_examples=60, deadline=None)
@given(_reports)
def test_properties(report: PerformanceReport) -> None:
    idocs = _idocs(report)
    again = _idocs(report)
    assert [i.message_id for i in idocs] == [i.message_id for i in again]
    assert [i.to_bytes() for i in idocs] == [i.to_bytes() for i in again]
    assert [i.gm_code for i in idocs] == sorted({i.gm_code for i in idocs})
    items: list[Any] = []
    for idoc in idocs:
        REGISTRY.validate_xml(idoc.element, CONTRACT)
        assert _text(idoc, ".//GM_CODE") == [idoc.gm_code]  # one GM_CODE per IDoc
        assert len(idoc.element.findall("IDOC")) == 1
        items += idoc.element.iterfind(".//E1BP2017_GM_ITEM_CREATE")
    assert len(items) == len(report.actuals)
    by_type: dict[str, list[Decimal]] = {}
    for item in items:
        by_type.setdefault(str(item.findtext("MOVE_TYPE")), []).append(
            Decimal(str(item.findtext("ENTRY_QNT")))
        )
    for actual in report.actuals:
        movement = DEFAULT_MOVEMENT_RULES.movement(actual.role, reversal=actual.reversal)
        base = DEFAULT_MOVEMENT_RULES.movement_types[actual.role]
        assert movement.movement_type == (reversal_type(base) if actual.reversal else base)
        if actual.reversal:
            assert int(movement.movement_type) == int(base) + 1
        assert movement.gm_code == DEFAULT_MOVEMENT_RULES.gm_codes[movement.movement_type]
        # the quantity comes back as the same Decimal value (never rounded, never changed)
        by_type[movement.movement_type].remove(actual.quantity.value)
    assert all(not rest for rest in by_type.values())


@given(st.text(min_size=1, max_size=60), st.text(min_size=1, max_size=60))
def test_message_ids_depend_only_on_the_idempotency_key(doc_a: str, doc_b: str) -> None:
    actual = _actual(MaterialRole.CONSUMED, "300010", "1")
    a = _idocs(_report(actual, document_id=doc_a))[0]
    b = _idocs(_report(actual, document_id=doc_b), base=99)[0]
    assert (a.message_id == b.message_id) == (doc_a == doc_b)
    assert (a.reference == b.reference) == (doc_a == doc_b)


# Stock direction of each movement type for the order's material flow: + into stock, - out.
_STOCK_SIGN = {"101": 1, "102": -1, "261": -1, "262": 1, "531": 1, "532": -1}


@settings(max_examples=60, deadline=None)
@given(_actuals)
def test_a_reversal_undoes_its_movement(actual: MaterialActual) -> None:
    """Posting an actual and then its reversal leaves stock where it was, item for item."""
    original = replace(actual, reversal=False, final=False)
    reversal = replace(actual, reversal=True, final=False)
    (posted,) = [
        i
        for idoc in _idocs(_report(original))
        for i in idoc.element.iter("E1BP2017_GM_ITEM_CREATE")
    ]
    (undone,) = [
        i
        for idoc in _idocs(_report(reversal))
        for i in idoc.element.iter("E1BP2017_GM_ITEM_CREATE")
    ]
    fields = {child.tag: child.text for child in posted}
    back = {child.tag: child.text for child in undone}
    assert int(str(back.pop("MOVE_TYPE"))) == int(str(fields.pop("MOVE_TYPE"))) + 1
    # Everything but the movement type is the same: material, plant, batch, quantity, unit,
    # order and movement indicator.
    assert back == fields
    net = _STOCK_SIGN[posted.findtext("MOVE_TYPE") or ""] * Decimal(
        str(posted.findtext("ENTRY_QNT"))
    )
    net += _STOCK_SIGN[undone.findtext("MOVE_TYPE") or ""] * Decimal(
        str(undone.findtext("ENTRY_QNT"))
    )
    assert net == 0
