"""The mapping profile: site facts the transforms need and cannot derive from a message.

Plant time zones, the sending systems' time zones, the unit table, the
identities mesbridge uses in B2MML, and the Tulip column ids. A profile is
built from a plain mapping (a parsed TOML file, see ``deploy/config/mapping.toml``);
every key is checked, and a wrong one is a ``ConfigurationError`` naming it.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from contracts.errors import ConfigurationError
from transforms.units import UnitRow, UnitTable

__all__ = [
    "TULIP_WORK_ORDER_FIELDS",
    "B2mmlIdentity",
    "MappingProfile",
    "PlantStorage",
    "SapPartner",
    "TulipWorkOrderColumns",
]

# The canonical work-order fields mesbridge writes to Tulip, and the column label each
# has by default. The table's column *ids* differ per Tulip instance: they come from
# configuration, or from the table schema the service reads at start-up.
TULIP_WORK_ORDER_FIELDS: Mapping[str, str] = {
    "material": "Material",
    "quantity": "Quantity",
    "unit": "Unit",
    "batch": "Batch",
    "plant": "Plant",
    "order_type": "Order Type",
    "scheduled_start": "Scheduled Start",
    "scheduled_finish": "Scheduled Finish",
    "status": "Status",
    "phases": "Phases",
    "source_idoc": "Source IDoc",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class B2mmlIdentity:
    sender: str = "mesbridge"
    receiver: str = "PAS-X"
    release_id: str = "mesbridge-1"


@dataclass(frozen=True, slots=True, kw_only=True)
class SapPartner:
    """Who mesbridge is towards SAP in the IDocs it writes (EDI_DC40 sender and receiver)."""

    sender_port: str = "MESBRIDGE"
    sender_partner_type: str = "LS"
    sender_partner: str = "MESCLNT"
    receiver_port: str = "SAPERP"
    receiver_partner_type: str = "LS"
    receiver_partner: str = "ERPCLNT200"
    client: str | None = None
    timezone: str | None = None  # zone of CREDAT/CRETIM; default: the profile's default zone


@dataclass(frozen=True, slots=True, kw_only=True)
class TulipWorkOrderColumns:
    """Canonical field name → Tulip column id; a field without a column id is not written."""

    ids: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlantStorage:
    """A plant's default storage locations for goods movements the MES reports without one.

    Used only when neither the message nor the order SAP sent names a storage location.
    """

    issue: str | None = None  # consumption (261/262)
    receipt: str | None = None  # yield and by-products (101/102, 531/532)


@dataclass(frozen=True, slots=True, kw_only=True)
class MappingProfile:
    version: str
    default_timezone: ZoneInfo
    plant_timezones: Mapping[str, ZoneInfo]
    sender_timezones: Mapping[str, ZoneInfo]
    units: UnitTable
    b2mml: B2mmlIdentity
    tulip_columns: TulipWorkOrderColumns
    sap: SapPartner = SapPartner()
    # MES → SAP: a sending MES system (B2MML Sender/LogicalID, Tulip sender) → its SAP plant.
    sender_plants: Mapping[str, str] = field(default_factory=dict)
    plant_storage: Mapping[str, PlantStorage] = field(default_factory=dict)

    def plant_timezone(self, plant: str) -> ZoneInfo:
        return self.plant_timezones.get(plant, self.default_timezone)

    def sender_timezone(self, sender: str) -> ZoneInfo:
        return self.sender_timezones.get(sender, self.default_timezone)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, source: str) -> MappingProfile:
        reader = _Reader(data, source)
        reader.only(
            "version", "default_timezone", "plants", "senders", "units", "b2mml", "tulip", "sap"
        )
        version = reader.text("version")
        default_tz = _zone(reader.text("default_timezone"), f"{source}: default_timezone")
        plants_table = reader.table("plants", default={})
        senders_table = reader.table("senders", default={})
        plants = _timezones(plants_table, f"{source}: plants", extra=_PLANT_KEYS)
        senders = _timezones(senders_table, f"{source}: senders", extra=("plant",))
        plant_storage = _plant_storage(plants_table, f"{source}: plants")
        sender_plants = _sender_plants(senders_table, f"{source}: senders")
        units = UnitTable(_unit_rows(reader.list("units"), source))
        b2mml_data = _Reader(reader.table("b2mml", default={}), f"{source}: b2mml")
        b2mml_data.only("sender", "receiver", "release_id")
        b2mml = B2mmlIdentity(
            sender=b2mml_data.text("sender", default="mesbridge"),
            receiver=b2mml_data.text("receiver", default="PAS-X"),
            release_id=b2mml_data.text("release_id", default="mesbridge-1"),
        )
        tulip_data = _Reader(reader.table("tulip", default={}), f"{source}: tulip")
        tulip_data.only("work_order_columns")
        columns = _Reader(
            tulip_data.table("work_order_columns", default={}),
            f"{source}: tulip.work_order_columns",
        )
        columns.only(*TULIP_WORK_ORDER_FIELDS)
        sap_data = _Reader(reader.table("sap", default={}), f"{source}: sap")
        sap_data.only(*SapPartner.__dataclass_fields__)
        sap_values = {name: sap_data.text(name) for name in sap_data.keys_list()}
        if "timezone" in sap_values:
            _zone(sap_values["timezone"], f"{source}: sap.timezone")
        return cls(
            sap=SapPartner(**sap_values),
            version=version,
            default_timezone=default_tz,
            plant_timezones=plants,
            sender_timezones=senders,
            sender_plants=sender_plants,
            plant_storage=plant_storage,
            units=units,
            b2mml=b2mml,
            tulip_columns=TulipWorkOrderColumns(
                ids={name: columns.text(name) for name in columns.keys_list()}
            ),
        )


class _Reader:
    """Typed access to one table of a configuration file, with errors that name the key."""

    def __init__(self, data: Mapping[str, Any], where: str) -> None:
        if not isinstance(data, Mapping):
            raise ConfigurationError(f"{where}: expected a table, found {type(data).__name__}")
        self._data = data
        self._where = where

    def keys_list(self) -> list[str]:
        return list(self._data)

    def only(self, *allowed: str) -> None:
        for key in self._data:
            if key not in allowed:
                hint = difflib.get_close_matches(key, allowed, n=1)
                suggestion = f" (did you mean {hint[0]!r}?)" if hint else ""
                raise ConfigurationError(
                    f"{self._where}: unknown key {key!r}{suggestion}; "
                    f"known keys: {', '.join(allowed)}"
                )

    def text(self, key: str, default: str | None = None) -> str:
        value = self._data.get(key, default)
        if not isinstance(value, str) or not value:
            raise ConfigurationError(
                f"{self._where}: {key!r} must be a non-empty string, found {value!r}"
            )
        return value

    def table(self, key: str, default: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        value = self._data.get(key, default)
        if not isinstance(value, Mapping):
            raise ConfigurationError(f"{self._where}: {key!r} must be a table, found {value!r}")
        return value

    def list(self, key: str) -> list[Any]:
        value = self._data.get(key)
        if not isinstance(value, list) or not value:
            raise ConfigurationError(f"{self._where}: {key!r} must be a non-empty list")
        return value


def _zone(name: str, where: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigurationError(
            f"{where}: {name!r} is not an IANA time zone (e.g. 'Europe/Berlin')"
        ) from exc


_PLANT_KEYS = ("issue_storage_location", "receipt_storage_location")
_PLANT_LENGTH = 4  # SAP WERKS
_STORAGE_LOCATION_LENGTH = 4  # SAP LGORT


def _timezones(
    table: Mapping[str, Any], where: str, *, extra: tuple[str, ...] = ()
) -> dict[str, ZoneInfo]:
    """Each entry's ``timezone``; an entry may leave it out when it sets only ``extra`` keys."""
    zones: dict[str, ZoneInfo] = {}
    for name, entry in table.items():
        reader = _Reader(entry, f"{where}.{name}")
        reader.only("timezone", *extra)
        if "timezone" in entry or not extra:
            zones[str(name)] = _zone(reader.text("timezone"), f"{where}.{name}.timezone")
    return zones


def _sap_code(value: str, length: int, what: str, where: str) -> str:
    if (
        not value
        or len(value) > length
        or any(c.isspace() for c in value)
        or not value.isprintable()
    ):
        raise ConfigurationError(
            f"{where}: {value!r} is not an SAP {what} (at most {length} characters, no spaces)"
        )
    return value


def _plant_storage(table: Mapping[str, Any], where: str) -> dict[str, PlantStorage]:
    defaults: dict[str, PlantStorage] = {}
    for name, entry in table.items():
        plant = _sap_code(str(name), _PLANT_LENGTH, "plant (WERKS)", f"{where}.{name}")
        reader = _Reader(entry, f"{where}.{name}")
        found = {
            key.removesuffix("_storage_location"): _sap_code(
                reader.text(key),
                _STORAGE_LOCATION_LENGTH,
                "storage location (LGORT)",
                f"{where}.{name}.{key}",
            )
            for key in _PLANT_KEYS
            if key in entry
        }
        if found:
            defaults[plant] = PlantStorage(**found)
    return defaults


def _sender_plants(table: Mapping[str, Any], where: str) -> dict[str, str]:
    return {
        str(name): _sap_code(
            _Reader(entry, f"{where}.{name}").text("plant"),
            _PLANT_LENGTH,
            "plant (WERKS)",
            f"{where}.{name}.plant",
        )
        for name, entry in table.items()
        if "plant" in entry
    }


def _unit_rows(entries: list[Any], source: str) -> list[UnitRow]:
    rows: list[UnitRow] = []
    for index, entry in enumerate(entries, start=1):
        where = f"{source}: units[{index}]"
        reader = _Reader(entry, where)
        aliases = entry.get("aliases", [])
        if not isinstance(aliases, list) or not all(isinstance(a, str) for a in aliases):
            raise ConfigurationError(f"{where}: 'aliases' must be a list of strings")
        partners = {
            key: reader.text(key)
            for key in reader.keys_list()
            if key not in {"sap", "iso", "aliases"}
        }
        rows.append(
            UnitRow(
                sap=reader.text("sap"),
                iso=reader.text("iso"),
                aliases=tuple(aliases),
                partner_codes=partners,
            )
        )
    return rows
