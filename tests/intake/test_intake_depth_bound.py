"""The depth limit holds exactly, whether or not the tag count lets ``read_xml`` skip the probe."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts.errors import MalformedInput
from integration.intake import IntakeLimits, read_xml


def _nested(depth: int, *, siblings: int, comments: int) -> bytes:
    inner = "<leaf/>" * siblings + "<!-- note -->" * comments
    for level in range(depth - 1, 0, -1):
        inner = f"<e{level}>{inner}</e{level}>"
    return f"<?xml version='1.0'?><root>{inner}</root>".encode()


@given(
    depth=st.integers(2, 12),
    max_depth=st.integers(1, 12),
    siblings=st.integers(0, 3),
    comments=st.integers(0, 3),
)
def test_refused_exactly_when_deeper_than_the_limit(
    depth: int, max_depth: int, siblings: int, comments: int
) -> None:
    # siblings add elements (and a level when there are any); comments add '<' only.
    data = _nested(depth, siblings=siblings, comments=comments)
    actual_depth = depth + (1 if siblings else 0)
    limits = IntakeLimits(max_depth=max_depth)
    if actual_depth > max_depth:
        with pytest.raises(MalformedInput, match=f"nested deeper than {max_depth} levels"):
            read_xml(data, source="test", limits=limits)
    else:
        assert read_xml(data, source="test", limits=limits).tag == "root"
