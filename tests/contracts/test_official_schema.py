"""Strict validation against the official MESA schemas, when the operator points at them."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.errors import ContractViolation
from contracts.registry import ContractRegistry

from .conftest import REPO_ROOT, ContractWriter, parse_xml

pytestmark = pytest.mark.official_b2mml

V0600 = "http://www.mesa.org/xml/B2MML-V0600"

# A deliberately loose profile: anything under the root. Only the official schema can object.
LOOSE_PROFILE = f"""\
    <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="{V0600}"
               elementFormDefault="qualified">
      <xs:element name="ProcessProductionSchedule">
        <xs:complexType>
          <xs:sequence>
            <xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
          </xs:sequence>
          <xs:anyAttribute processContents="skip"/>
        </xs:complexType>
      </xs:element>
    </xs:schema>
"""


@pytest.mark.parametrize(
    "official_schema",
    ["V0600/B2MML-V0600-ProductionSchedule.xsd", "B2MML-V0600-ProductionSchedule.xsd"],
)
def test_official_schema_findings_are_added_and_marked(
    write_contract: ContractWriter, official_b2mml_dir: Path, official_schema: str
) -> None:
    base = write_contract(
        "b2mml",
        "LooseSchedule",
        "1",
        f"""
        format = "xml"
        schema = "loose.xsd"
        official_schema = "{official_schema}"
        description = "test"
        [identify]
        namespace = "{V0600}"
        root = ["ProcessProductionSchedule"]
        release_id = ["loose-1"]
        """,
        schema_name="loose.xsd",
        schema=LOOSE_PROFILE,
    )
    registry = ContractRegistry.load([base], official_b2mml_dir=official_b2mml_dir)
    registry.check()
    message = parse_xml(
        f'<ProcessProductionSchedule xmlns="{V0600}" releaseID="loose-1"><Nonsense/>'
        "</ProcessProductionSchedule>"
    )
    without_official = ContractRegistry.load([base]).get("b2mml/LooseSchedule/1")

    assert without_official.validate_xml(message) == []
    with pytest.raises(ContractViolation) as caught:
        registry.validate_xml(message)

    (finding,) = caught.value.findings
    assert finding.where == "/ProcessProductionSchedule/Nonsense"
    assert finding.expected.endswith("(official schema B2MML-V0600-ProductionSchedule.xsd)")
    assert "does not satisfy b2mml/LooseSchedule/1" in str(caught.value)


def test_packaged_b2mml_fixture_passes_profile_and_official(official_b2mml_dir: Path) -> None:
    registry = ContractRegistry.load(official_b2mml_dir=official_b2mml_dir)
    registry.check()
    fixture = REPO_ROOT / "tests/fixtures/b2mml/ProductionSchedule/V0600/valid/typical_order.xml"

    contract = registry.validate_xml(parse_xml(fixture))

    assert str(contract.key) == "b2mml/ProductionSchedule/V0600"
    assert contract.official_schema_path is not None
    assert contract.official_schema_path.name == "B2MML-V0600-ProductionSchedule.xsd"
