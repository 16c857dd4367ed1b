"""Fingerprints group failures by problem, not by message; order numbers are read safely."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.errors import Finding
from integration.intake import IntakeLimits
from integration.store.fingerprint import failure_fingerprint, normalise_field
from integration.store.order_numbers import (
    MAX_ORDER_NUMBERS,
    normalise_order_number,
    order_numbers_in,
)
from tests.support.idoc_factory import OrderSpec, build_loipro

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.mark.parametrize(
    ("where", "normalised"),
    [
        ("/IDOC/E1AFKOL[2]/E1AFPOL[1]/CHARG", "/IDOC/E1AFKOL/E1AFPOL/CHARG"),
        ("/LOIPRO01/IDOC[2]/E1AFKOL/WERKS", "/LOIPRO01/IDOC/E1AFKOL/WERKS"),
        ("MaterialActual[3] (consumed 300010) BATCH", "MaterialActual BATCH"),
        ("order 600001: E1AFKOL/GMEIN", "order #: E1AFKOL/GMEIN"),
        ("byte 17, column 3", "byte #, column #"),
        ("element at depth 129", "element at depth #"),
        ("$.items[4].quantity", "$.items.quantity"),
        ("/b:X/b:Quantity 12.500", "/b:X/b:Quantity #"),
        ("JSON object 'dup'", "JSON object '…'"),
        ("/MBGMCR03/IDOC/E1BP2017_GM_ITEM_CREATE", "/MBGMCR03/IDOC/E1BP2017_GM_ITEM_CREATE"),
    ],
)
def test_positions_values_and_numbers_leave_the_field(where: str, normalised: str) -> None:
    assert normalise_field(where) == normalised


def test_one_gap_in_many_messages_is_one_fingerprint() -> None:
    prints = {
        failure_fingerprint(
            "MappingError",
            "b2mml/ProductionPerformance/V0600",
            [
                Finding(
                    where=f"MaterialActual[{i}] (consumed {300000 + i}) BATCH",
                    value=f"LOT{i}",
                    expected="a batch",
                )
            ],
        )
        for i in range(500)
    }
    assert len(prints) == 1
    (only,) = prints
    assert len(only.digest) == 12
    assert only.label == "MappingError b2mml/ProductionPerformance/V0600 at MaterialActual BATCH"


def test_class_contract_and_field_each_tell_groups_apart() -> None:
    finding = [Finding(where="/LOIPRO01/IDOC/E1AFKOL/WERKS", expected="x")]
    base = failure_fingerprint("ContractViolation", "sap-idoc/LOIPRO01/1", finding)
    others = [
        failure_fingerprint("MappingError", "sap-idoc/LOIPRO01/1", finding),
        failure_fingerprint("ContractViolation", "sap-idoc/LOIPRO02/1", finding),
        failure_fingerprint("ContractViolation", None, finding),
        failure_fingerprint(
            "ContractViolation",
            "sap-idoc/LOIPRO01/1",
            [Finding(where="/LOIPRO01/IDOC/E1AFKOL/MATNR", expected="x")],
        ),
        failure_fingerprint("ContractViolation", "sap-idoc/LOIPRO01/1", []),
    ]
    assert len({base.digest, *(other.digest for other in others)}) == 6
    assert others[2].label.startswith("ContractViolation (unidentified)")
    assert others[4].label == "ContractViolation sap-idoc/LOIPRO01/1"


def test_order_numbers_are_read_as_sap_shows_them() -> None:
    body = build_loipro(
        [
            OrderSpec(docnum="0000000000000001", order_number="000001000240"),
            OrderSpec(docnum="0000000000000002", order_number="1000241"),
            OrderSpec(docnum="0000000000000003", order_number="000001000240"),
        ]
    )
    assert order_numbers_in(body) == ("1000240", "1000241")
    assert normalise_order_number(" 0000 ") == "0"
    assert normalise_order_number("po-17") == "PO-17"
    assert normalise_order_number("1000234; DROP") is None


def test_order_numbers_in_json_and_b2mml() -> None:
    assert order_numbers_in(b'{"event": "done", "work": {"order_number": "000001000234"}}') == (
        "1000234",
    )
    performance = next((FIXTURES / "b2mml" / "ProductionPerformance").rglob("valid/*.xml"))
    assert order_numbers_in(performance.read_bytes())


@pytest.mark.parametrize(
    "name", ["billion-laughs.xml", "xxe-file-passwd.xml", "truncated.xml", "invalid-utf8.xml"]
)
def test_a_hostile_or_broken_body_has_no_order_numbers(name: str) -> None:
    assert order_numbers_in((FIXTURES / "hostile" / "refused" / name).read_bytes()) == ()


def test_the_guard_limits_apply_and_absurd_counts_are_capped() -> None:
    body = build_loipro([OrderSpec(order_number="1000234")])
    assert order_numbers_in(body, limits=IntakeLimits(max_bytes=100)) == ()
    many = (
        b"<X>"
        + b"".join(f"<AUFNR>{n}</AUFNR>".encode() for n in range(1, 3 * MAX_ORDER_NUMBERS))
        + b"</X>"
    )
    assert len(order_numbers_in(many)) == MAX_ORDER_NUMBERS
    assert order_numbers_in(b"<X><AUFNR>" + b"9" * 41 + b"</AUFNR></X>") == ()
