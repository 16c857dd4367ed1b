"""B2MML V0401 performance messages are refused by identification, naming what is supported.

V0401 (namespace http://www.wbf.org/xml/B2MML-V0401) reports material with the V04 elements
MaterialConsumedActual / MaterialProducedActual and has no official schema in the bundle
mesbridge is tested against; docs/b2mml-performance.md explains why it is not a contract.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from contracts.errors import UnknownContract
from contracts.registry import ContractRegistry

REPO_ROOT = Path(__file__).resolve().parents[2]
V0401_FIXTURE = (
    REPO_ROOT
    / "tests/fixtures/b2mml/ProductionPerformance/V0401/refused/sync_production_performance.xml"
)
V0600 = "http://www.mesa.org/xml/B2MML-V0600"
V0401 = "http://www.wbf.org/xml/B2MML-V0401"


@pytest.fixture(scope="module")
def registry() -> ContractRegistry:
    return ContractRegistry.load()


def _root() -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.parse(str(V0401_FIXTURE), parser).getroot()


def test_v0401_sync_production_performance_is_an_unknown_contract(
    registry: ContractRegistry,
) -> None:
    with pytest.raises(UnknownContract) as caught:
        registry.identify_xml(_root())

    error = caught.value
    assert error.summary.startswith(
        f"no contract for root element {{{V0401}}}SyncProductionPerformance "
        "with releaseID 'V0401'; SyncProductionPerformance is supported only as "
        f"b2mml/ProductionPerformance/V0600 (namespace {V0600}); "
    )
    (finding,) = error.findings
    assert finding.where == "/SyncProductionPerformance"
    assert finding.line == 10  # libxml2 reports the line where the start tag ends
    assert finding.value == f"{{{V0401}}}SyncProductionPerformance"
    assert finding.expected == (
        f"one of the supported versions: b2mml/ProductionPerformance/V0600 (namespace {V0600})"
    )


def test_a_root_no_contract_knows_keeps_the_general_list(registry: ContractRegistry) -> None:
    root = etree.fromstring(f'<SyncProductionCapability xmlns="{V0401}"/>'.encode())

    with pytest.raises(UnknownContract) as caught:
        registry.identify_xml(root)

    assert "is supported only as" not in caught.value.summary
    assert "supported XML root contracts: " in caught.value.summary
    assert caught.value.findings[0].expected == "a root element of a supported contract"
