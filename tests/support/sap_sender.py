"""The SAP partners the goods-movement tests write IDocs as (the embedded profile's values)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from transforms.mbgmcr import IdocSender


def idoc_sender(*, client: str | None = None) -> IdocSender:
    return IdocSender(
        port="MESBRIDGE",
        partner_type="LS",
        partner="MESCLNT",
        receiver_port="SAPERP",
        receiver_partner_type="LS",
        receiver_partner="ERPCLNT200",
        timezone=ZoneInfo("Europe/Berlin"),
        client=client,
    )
