"""What an edit changed: the text diff and the fields with old and new values."""

from __future__ import annotations

import pytest

from integration.broker import Delivery
from integration.edits import decode_for_display, field_changes, text_diff
from integration.intake import IntakeLimits
from tests.support.idoc_factory import OrderSpec, build_loipro
from tests.support.pipelines import process_order_pipeline


def test_xml_field_changes_name_the_field_with_old_and_new_values() -> None:
    old = build_loipro([OrderSpec(batch="FAR_TOO_LONG_BATCH", plant="1100")])
    new = build_loipro([OrderSpec(batch="P26L0001", plant="1200")])

    changes = field_changes(old, new)

    assert changes is not None
    assert [c.as_dict() for c in changes] == [
        {"where": "/LOIPRO01/IDOC/E1AFKOL/WERKS", "old": "1100", "new": "1200"},
        {
            "where": "/LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG",
            "old": "FAR_TOO_LONG_BATCH",
            "new": "P26L0001",
        },
        {
            "where": "/LOIPRO01/IDOC/E1AFKOL/E1AFFLL/E1AFVOL/E1RESBL/WERKS",
            "old": "1100",
            "new": "1200",
        },
    ]


def test_json_field_changes_keep_json_spelling_and_report_removed_and_added_fields() -> None:
    changes = field_changes(
        b'{"qty": 1.50, "final": false, "lot": "A", "items": [1, 2]}',
        b'{"qty": 1.5, "final": true, "items": [1, 3], "note": null}',
    )
    assert changes is not None
    assert [c.as_dict() for c in changes] == [
        {"where": "$.qty", "old": "1.50", "new": "1.5"},
        {"where": "$.final", "old": "false", "new": "true"},
        {"where": "$.lot", "old": "A", "new": None},
        {"where": "$.items[1]", "old": "2", "new": "3"},
        {"where": "$.note", "old": None, "new": "null"},
    ]


def test_an_unreadable_version_gives_no_field_changes_but_a_diff() -> None:
    hostile = b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "y">]><r>&x;</r>'
    assert field_changes(hostile, b"<r>y</r>") is None
    assert field_changes(b"<r/>", b"<r/>", limits=IntakeLimits(max_bytes=2)) is None
    diff = text_diff(hostile, b"<r>y</r>", old_name="failed_message:1 (original)", new_name="f")
    assert diff.startswith("--- failed_message:1 (original)\n+++ f\n")
    assert "-<?xml" in diff
    assert "+<r>y</r>" in diff


def test_bytes_that_are_not_utf8_are_shown_as_latin1_and_say_so() -> None:
    latin = "<r>Prüfung</r>".encode("iso-8859-1")
    assert decode_for_display(latin) == ("<r>Prüfung</r>", "ISO-8859-1")
    diff = text_diff(latin, b"<r>Pruefung</r>", old_name="a", new_name="b")
    assert "--- a (ISO-8859-1)" in diff
    assert "-<r>Prüfung</r>" in diff


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("17", 17),
        (b"17", 17),
        (17, 17),
        ("0", None),
        ("-3", None),
        ("²", None),
        ("abc", None),
        ("9" * 19, None),
        (None, None),
    ],
)
def test_the_replay_header_is_read_strictly(header: object, expected: int | None) -> None:
    pipeline = process_order_pipeline()
    headers = {} if header is None else {"x-replay-of": header}
    for body in (build_loipro([OrderSpec()]), b"<broken"):
        result = pipeline.process(
            Delivery(
                body=body, exchange="in", routing_key="sap.LOIPRO", delivery_tag=1, headers=headers
            )
        )
        made = result.record if result.record is not None else result.failure
        assert made is not None
        assert made.replay_of == expected
