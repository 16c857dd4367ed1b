"""The process order numbers a failed message is about, read best-effort for ``--order``.

An analyst asked "why did order 1000234 not reach PAS-X?" looks for it with
``mesbridge failed list --order 1000234``. A failed message may be anything,
hostile included, so it is read again only through the intake guard
(``integration.intake.read_message``: size cap, no DTD, depth limit); a
message the guard refuses simply has no order numbers.

What is read: the text of every XML element named ``AUFNR`` (LOIPRO order
header), ``ORDERID`` (MBGMCR goods-movement item), ``ProductionRequestID`` or
``OperationsRequestID`` (B2MML performance), and JSON members named
``order_number``, ``orderNumber`` or ``aufnr`` at any depth. A number is kept
as SAP shows it to a user (conversion exit ALPHA: leading zeros of an
all-digit number removed, ``000001000234`` → ``1000234``), so the analyst can
type it either way (``normalise_order_number``). Values that are not plain
order numbers (longer than 40 characters, or with characters other than
letters, digits, ``-`` and ``_``) are left out rather than shortened.

Failure modes: none; anything unreadable gives ``()``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from contracts.errors import MesbridgeError
from integration.intake import IntakeLimits, JsonMessage, read_message

__all__ = ["MAX_ORDER_NUMBERS", "normalise_order_number", "order_numbers_in"]

# Enough for any real multi-IDoc file; a message claiming more orders is not a normal one.
MAX_ORDER_NUMBERS = 100
_XML_NAMES = frozenset({"AUFNR", "ORDERID", "ProductionRequestID", "OperationsRequestID"})
_JSON_NAMES = frozenset({"order_number", "orderNumber", "aufnr", "AUFNR"})
_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,40}")


def normalise_order_number(value: str) -> str | None:
    """``value`` as SAP displays it (no leading zeros when all digits); None if not plain."""
    text = value.strip()
    if not _PLAIN.fullmatch(text):
        return None
    if text.isdigit():
        return text.lstrip("0") or "0"
    return text.upper()


def order_numbers_in(body: bytes, *, limits: IntakeLimits | None = None) -> tuple[str, ...]:
    """The distinct order numbers in ``body``, in document order; see the module docstring."""
    try:
        message = read_message(body, source="failed message", limits=limits or IntakeLimits())
    except MesbridgeError:
        return ()
    raw = _json_values(message.data) if isinstance(message, JsonMessage) else _xml_values(message)
    found: dict[str, None] = {}
    for value in raw:
        number = normalise_order_number(value)
        if number is not None:
            found.setdefault(number, None)
            if len(found) >= MAX_ORDER_NUMBERS:
                break
    return tuple(found)


def _xml_values(message: object) -> Iterator[str]:
    root = getattr(message, "root", None)
    if root is None:
        return
    for element in root.iter():
        if not isinstance(element.tag, str):
            continue  # comments, processing instructions
        name = element.tag.rpartition("}")[2]
        if name in _XML_NAMES and element.text:
            yield element.text


def _json_values(data: object) -> Iterator[str]:
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _JSON_NAMES and isinstance(value, str | int):
                    yield str(value)
                elif isinstance(value, dict | list):
                    stack.append(value)
        elif isinstance(node, list):
            stack.extend(reversed(node))
