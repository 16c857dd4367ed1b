"""read_json / read_message on JSON: decimals stay exact, ambiguity and non-numbers are refused."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts.errors import MalformedInput
from integration.intake import IntakeLimits, JsonMessage, read_json, read_message

EVENT = b'{"event": "completion", "order": "000000600001", "yield": 41.250, "scrap": 0.1}'


def test_fractions_are_decimals_with_their_digits_and_integers_stay_int() -> None:
    value = read_json(EVENT, source="tulip")
    assert value == {
        "event": "completion",
        "order": "000000600001",
        "yield": Decimal("41.250"),
        "scrap": Decimal("0.1"),
    }
    assert isinstance(value, dict)
    assert str(value["yield"]) == "41.250"  # trailing zero kept: no float ever touched it
    assert read_json(b'{"n": 3, "e": 1.5E-3}', source="n") == {"n": 3, "e": Decimal("0.0015")}
    assert type(read_json(b"[3]", source="int")) is list


def test_read_message_carries_data_bytes_digest_and_source() -> None:
    message = read_message(b"\n  " + EVENT, source="tulip.completion/1")
    assert isinstance(message, JsonMessage)
    assert message.data == read_json(EVENT, source="x")
    assert message.sha256 == hashlib.sha256(b"\n  " + EVENT).hexdigest()
    assert message.source == "tulip.completion/1"


def test_bom_is_stripped() -> None:
    assert read_json(b"\xef\xbb\xbf" + EVENT, source="bom") == read_json(EVENT, source="x")


def test_duplicate_keys_are_refused_at_any_depth_but_repeats_across_objects_are_fine() -> None:
    assert read_json(b'[{"a": 1}, {"a": 2}]', source="ok") == [{"a": 1}, {"a": 2}]
    with pytest.raises(MalformedInput, match="duplicate key") as caught:
        read_json(b'{"items": [{"qty": 1, "unit": "KG", "qty": 2}]}', source="dup")
    assert caught.value.findings[0].value == "qty"


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_non_numbers_are_refused_with_their_position(token: str) -> None:
    data = f'{{\n  "text": "NaN Infinity",\n  "qty": {token}\n}}'.encode()
    with pytest.raises(MalformedInput, match=f"{token} is not a JSON number") as caught:
        read_json(data, source="nan")
    finding = caught.value.findings[0]
    assert finding.line == 3
    assert finding.where == "column 10"


def test_the_words_nan_and_infinity_inside_strings_are_text() -> None:
    assert read_json(b'{"note": "NaN, Infinity"}', source="s") == {"note": "NaN, Infinity"}


def test_depth_boundary_and_position() -> None:
    ok = b"[" * 128 + b"]" * 128
    assert read_json(ok, source="128") is not None
    deep = b'{"a":\n ' + b"[" * 128 + b"]" * 128 + b"}"
    with pytest.raises(MalformedInput, match="JSON nested deeper than 128 levels") as caught:
        read_json(deep, source="129")
    finding = caught.value.findings[0]
    assert finding.line == 2
    assert finding.where == "column 129"


def test_brackets_and_escaped_quotes_inside_strings_do_not_count_as_nesting() -> None:
    text = "[" * 500 + '\\"' + "{" * 500
    data = json.dumps({"text": text, "more": ['\\"[[[', "]]"]}).encode()
    assert read_json(data, source="strings") == {"text": text, "more": ['\\"[[[', "]]"]}


def test_surrogates() -> None:
    assert read_json(b'["\\ud83d\\ude00"]', source="pair") == ["\U0001f600"]
    # An escaped backslash followed by the letters "ud800" is text, not an escape.
    assert read_json(b'["\\\\ud800"]', source="text") == ["\\ud800"]
    with pytest.raises(MalformedInput, match="unpaired surrogate"):
        read_json(b'{"\\udc00": 1}', source="lone-key")


@pytest.mark.parametrize(
    ("data", "phrase"),
    [
        (b"", "message is empty"),
        (b" \n\t", "message is empty"),
        (b'{"a": "line\nbreak"}', "not well-formed JSON: Invalid control character"),
        (b'{"a": 1} {"b": 2}', "not well-formed JSON: Extra data"),
        (b"{'a': 1}", "not well-formed JSON"),
        (b'{"a": 01}', "not well-formed JSON"),
        (b"\xfe\xff\x00{\x00}", "encoded as UTF-16 (big-endian)"),
        (b"\xff\xfe\x00\x00{\x00\x00\x00}\x00\x00\x00", "encoded as UTF-32 (little-endian)"),
        (b'{"a": "\xc3"}', "not valid UTF-8"),
    ],
)
def test_refusals(data: bytes, phrase: str) -> None:
    with pytest.raises(MalformedInput) as caught:
        read_json(data, source="case")
    assert phrase in str(caught.value)


# --- property: the depth pre-scan agrees with the real nesting ---------------------------------

_TRICKY_TEXT = st.text(alphabet='[]{}"\\:,ab \u00e4\U0001f600', max_size=12)
_JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | _TRICKY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(_TRICKY_TEXT, children, max_size=3)
    ),
    max_leaves=25,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(item) for item in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(item) for item in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(value=_JSON_VALUES, max_depth=st.integers(1, 4), indent=st.sampled_from([None, 1]))
def test_depth_prescan_matches_the_real_depth(
    value: object, max_depth: int, indent: int | None
) -> None:
    data = json.dumps(value, indent=indent, ensure_ascii=False).encode()
    limits = IntakeLimits(max_depth=max_depth)
    if _depth(value) > max_depth:
        with pytest.raises(MalformedInput, match=f"nested deeper than {max_depth} levels"):
            read_json(data, source="p", limits=limits)
    else:
        assert read_json(data, source="p", limits=limits) == value
