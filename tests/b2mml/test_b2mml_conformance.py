"""Conformance: every schedule written is valid under the official MESA schema and the profile.

The official per-message schemas (V0600/B2MML-V0600-ProductionSchedule.xsd,
V7/B2MML-OperationsSchedule.xsd) are the oracle; they are found through the
``official_b2mml_dir`` fixture (skips loudly on a laptop without them, fails
under CI). The cases cover many phases, no components, by-products, deleted
components, non-ASCII texts, large and tiny decimals and several orders in
one schedule; the property tests add generated orders.
"""

from __future__ import annotations

import pytest
from lxml import etree

from tests.b2mml.b2mml_factory import (
    CASES,
    CREATED_AT,
    G,
    component,
    local,
    order,
    phase,
    qty,
)
from transforms.b2mml_schedule import B2mmlVersion, to_pasx_schedule
from transforms.mapping import MappingProfile
from transforms.model import ComponentRole, ProcessOrder, RecipeReference

VERSIONS: tuple[B2mmlVersion, ...] = ("V0600", "V7")


def _by_products_and_deletions_only() -> list[ProcessOrder]:
    """A phase whose only live line is a by-product, next to one whose every line is deleted."""
    return [
        order(
            "000001000400",
            phase(
                "0010",
                "Clean",
                component("000000000000300100", qty("5"), item="0001", deleted=True),
                component("000000000000300200", qty("6"), item="0002", deleted=True),
            ),
            phase(
                "0020",
                "Recover solvent",
                component(
                    "000000000000900002",
                    qty("0.005", G),
                    item="0003",
                    role=ComponentRole.BY_PRODUCT,
                    batch="SOLV01",
                ),
                start=local("2026-10-25T01:30:00"),
                finish=local("2026-10-25T03:30:00"),
            ),
            recipe=RecipeReference(task_list_type="2", task_list="50000124", counter="02"),
            batch=None,
        )
    ]


ALL_CASES = {**CASES, "by_products_and_deletions_only": _by_products_and_deletions_only}


@pytest.mark.official_b2mml
@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(ALL_CASES))
def test_document_is_valid_under_official_schema_and_profile(
    case: str,
    version: B2mmlVersion,
    profile: MappingProfile,
    official_schemas: dict[str, etree.XMLSchema],
    profile_schemas: dict[str, etree.XMLSchema],
) -> None:
    document = to_pasx_schedule(ALL_CASES[case](), profile, created_at=CREATED_AT, version=version)
    # Validate what goes on the wire: the serialised bytes, parsed again.
    wire = etree.fromstring(etree.tostring(document, encoding="UTF-8", xml_declaration=True))
    official = official_schemas[version]
    assert official.validate(wire), f"official {version}: {official.error_log}"
    own = profile_schemas[version]
    assert own.validate(wire), f"profile {version}: {own.error_log}"
