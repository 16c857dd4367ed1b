"""Unit-of-measure mapping: SAP internal code ↔ ISO (UN/ECE Rec 20) code ↔ each MES partner's code.

SAP keeps an internal unit (T006, e.g. ``ST``), a language-dependent display
unit (``PC``) and an ISO code (``PCE``). MES partners each have their own
codes. The table is explicit and per site: a unit that is not in it is a
permanent ``MappingError`` naming the unit, never passed through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from contracts.errors import ConfigurationError, Finding, MappingError
from transforms.model import Unit

__all__ = ["UnitRow", "UnitTable"]


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitRow:
    sap: str
    iso: str
    aliases: tuple[str, ...] = ()
    partner_codes: Mapping[str, str] = field(default_factory=dict)

    @property
    def unit(self) -> Unit:
        return Unit(sap=self.sap, iso=self.iso)


class UnitTable:
    """Look units up by SAP code (or display alias), ISO code or a partner's code."""

    def __init__(self, rows: Iterable[UnitRow]) -> None:
        self._rows = tuple(rows)
        self._by_sap: dict[str, UnitRow] = {}
        self._by_iso: dict[str, UnitRow] = {}
        self._by_partner: dict[tuple[str, str], UnitRow] = {}
        for row in self._rows:
            for code in (row.sap, *row.aliases):
                _add_unique(self._by_sap, code.upper(), row, "SAP unit")
            _add_unique(self._by_iso, row.iso.upper(), row, "ISO unit")
            for partner, code in row.partner_codes.items():
                key = (partner, code)
                if key in self._by_partner:
                    raise ConfigurationError(
                        f"unit table: {partner} code {code!r} is given to both "
                        f"{self._by_partner[key].sap} and {row.sap}"
                    )
                self._by_partner[key] = row

    @property
    def rows(self) -> tuple[UnitRow, ...]:
        return self._rows

    def from_sap(self, code: str, *, where: str, line: int | None = None) -> Unit:
        row = self._by_sap.get(code.strip().upper())
        if row is None:
            raise MappingError(
                f"unit {code!r} is not in the unit table",
                findings=[
                    Finding(
                        where=where,
                        line=line,
                        value=code,
                        expected=f"an SAP unit of the table ({self._known(self._by_sap)})",
                    )
                ],
            )
        return row.unit

    def from_iso(self, code: str, *, where: str, line: int | None = None) -> Unit:
        row = self._by_iso.get(code.strip().upper())
        if row is None:
            raise MappingError(
                f"ISO unit {code!r} is not in the unit table",
                findings=[
                    Finding(
                        where=where,
                        line=line,
                        value=code,
                        expected=f"an ISO unit of the table ({self._known(self._by_iso)})",
                    )
                ],
            )
        return row.unit

    def from_partner(self, partner: str, code: str, *, where: str, line: int | None = None) -> Unit:
        row = self._by_partner.get((partner, code.strip()))
        if row is None:
            known = sorted(c for (p, c) in self._by_partner if p == partner)
            raise MappingError(
                f"{partner} unit {code!r} is not in the unit table",
                findings=[
                    Finding(
                        where=where,
                        line=line,
                        value=code,
                        expected=f"a {partner} unit of the table ({', '.join(known) or 'none'})",
                    )
                ],
            )
        return row.unit

    def partner_code(self, unit: Unit, partner: str) -> str:
        """The code ``partner`` uses for ``unit``; a row without one is a mapping gap."""
        row = self._by_sap[unit.sap.upper()]
        code = row.partner_codes.get(partner)
        if code is None:
            raise MappingError(
                f"unit {unit.sap} has no {partner} code in the unit table",
                findings=[
                    Finding(
                        where=f"unit table row {unit.sap}",
                        value=None,
                        expected=f"a '{partner}' code for SAP unit {unit.sap}",
                    )
                ],
            )
        return code

    @staticmethod
    def _known(index: Mapping[str, UnitRow]) -> str:
        return ", ".join(sorted(index))


def _add_unique(index: dict[str, UnitRow], code: str, row: UnitRow, what: str) -> None:
    if code in index and index[code] is not row:
        raise ConfigurationError(
            f"unit table: {what} {code!r} is given to both {index[code].sap} and {row.sap}"
        )
    index[code] = row
