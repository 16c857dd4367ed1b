"""Which SAP movement type, GM_CODE and movement indicator a reported material quantity posts with.

A ``MaterialActual`` says what happened (consumed, produced, by-product; reversal or
not); SAP needs a movement type (``MOVE_TYPE``), the BAPI_GOODSMVT_CREATE transaction
code (``GM_CODE``, one per material document) and, for receipts from a production or
process order, the movement indicator ``MVT_IND`` ``F``. The defaults follow
docs/goods-movements.md, where each is marked confirmed or *unverified*; a site whose
SAP customising differs passes its own ``MovementRules``.

Failure modes: ``ConfigurationError`` when rules are inconsistent (a movement type
without a GM_CODE, a GM_CODE outside 01..07, an indicator longer than one character).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from contracts.errors import ConfigurationError
from transforms.model import MaterialRole

__all__ = ["DEFAULT_MOVEMENT_RULES", "Movement", "MovementRules", "reversal_type"]

_GM_CODES = frozenset({"01", "02", "03", "04", "05", "06", "07"})


def reversal_type(movement_type: str) -> str:
    """SAP's reversal movement type is always the original + 1 (261 → 262, 101 → 102, 531 → 532)."""
    if len(movement_type) != 3 or not movement_type.isdigit() or movement_type.endswith("9"):
        raise ConfigurationError(
            f"movement type {movement_type!r} has no reversal by the +1 rule "
            "(expected three digits not ending in 9, e.g. 261)"
        )
    return f"{int(movement_type) + 1:03d}"


@dataclass(frozen=True, slots=True)
class Movement:
    """How one item posts: movement type, GM_CODE of its material document, MVT_IND."""

    movement_type: str
    gm_code: str
    movement_indicator: str  # "" = no indicator


def _frozen(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True, kw_only=True)
class MovementRules:
    """Role → movement type, movement type → GM_CODE and MVT_IND (reversals included)."""

    movement_types: Mapping[MaterialRole, str] = field(
        default_factory=lambda: MappingProxyType(
            {
                MaterialRole.CONSUMED: "261",
                MaterialRole.PRODUCED: "101",
                MaterialRole.BY_PRODUCT: "531",
            }
        )
    )
    gm_codes: Mapping[str, str] = field(
        default_factory=lambda: _frozen(
            {
                "261": "03",  # goods issue (MB1A): confirmed
                "262": "03",  # reversal of the issue, entered as its own movement: unverified
                "101": "02",  # goods receipt for production order (MB31): confirmed
                "102": "02",  # reversal of the receipt with order reference: unverified
                "531": "05",  # by-product receipt as "other goods receipt" (MB1C): unverified
                "532": "05",  # reversal of the by-product receipt: unverified
            }
        )
    )
    movement_indicators: Mapping[str, str] = field(
        default_factory=lambda: _frozen({"101": "F", "102": "F"})
    )

    def __post_init__(self) -> None:
        for role in MaterialRole:
            if role not in self.movement_types:
                raise ConfigurationError(
                    f"movement rules: no movement type for role {role.value!r}"
                )
            base = self.movement_types[role]
            for movement_type in (base, reversal_type(base)):
                code = self.gm_codes.get(movement_type)
                if code not in _GM_CODES:
                    raise ConfigurationError(
                        f"movement rules: movement type {movement_type} has GM_CODE {code!r}; "
                        "expected one of 01..07"
                    )
        for movement_type, indicator in self.movement_indicators.items():
            if len(indicator) > 1:
                raise ConfigurationError(
                    f"movement rules: MVT_IND {indicator!r} of movement type {movement_type} "
                    "is longer than 1 character"
                )

    def movement(self, role: MaterialRole, *, reversal: bool) -> Movement:
        base = self.movement_types[role]
        movement_type = reversal_type(base) if reversal else base
        return Movement(
            movement_type=movement_type,
            gm_code=self.gm_codes[movement_type],
            movement_indicator=self.movement_indicators.get(movement_type, ""),
        )


DEFAULT_MOVEMENT_RULES = MovementRules()
