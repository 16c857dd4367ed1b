"""Process orders → the PAS-X schedule in the B2MML version a route is configured for (flow F1).

``write_pasx_schedule`` picks the writer: ``V0600`` gives ``ProcessProductionSchedule``
(``b2mml_schedule_v0600``), ``V7`` gives ``ProcessOperationsSchedule`` with
OperationsType ``Production`` (``b2mml_schedule_v7``). Both come from the same
plan (``b2mml_schedule_plan``) and carry the same ``BODID``
(``schedule_document_id``). It gives the bytes to send with their parsed tree;
``to_pasx_schedule`` gives the tree alone. Pure: ``created_at`` comes from the caller.

Failure modes: ``MappingError`` for an order that cannot be written without
guessing or truncating; ``ValueError`` for an unknown version or a naive
``created_at`` (programming errors: the route configuration is checked at start-up).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Literal, get_args

from lxml import etree

from transforms.b2mml_common import WrittenDocument
from transforms.b2mml_schedule_plan import schedule_document_id
from transforms.b2mml_schedule_v0600 import production_schedule_v0600
from transforms.b2mml_schedule_v7 import operations_schedule_v7
from transforms.mapping import MappingProfile
from transforms.model import ProcessOrder

__all__ = [
    "B2MML_VERSIONS",
    "B2mmlVersion",
    "operations_schedule_v7",
    "production_schedule_v0600",
    "schedule_document_id",
    "to_pasx_schedule",
    "write_pasx_schedule",
]

B2mmlVersion = Literal["V0600", "V7"]
B2MML_VERSIONS: tuple[str, ...] = get_args(B2mmlVersion)

_WRITERS: dict[str, Callable[..., WrittenDocument]] = {
    "V0600": production_schedule_v0600,
    "V7": operations_schedule_v7,
}


def write_pasx_schedule(
    orders: Sequence[ProcessOrder],
    profile: MappingProfile,
    *,
    created_at: datetime,
    version: B2mmlVersion,
) -> WrittenDocument:
    writer = _WRITERS.get(version)
    if writer is None:
        raise ValueError(
            f"unknown B2MML version {version!r} for the PAS-X schedule; "
            f"supported: {', '.join(B2MML_VERSIONS)}"
        )
    return writer(orders, profile, created_at=created_at)


def to_pasx_schedule(
    orders: Sequence[ProcessOrder],
    profile: MappingProfile,
    *,
    created_at: datetime,
    version: B2mmlVersion,
) -> etree._Element:
    return write_pasx_schedule(orders, profile, created_at=created_at, version=version).root
