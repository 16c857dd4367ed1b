"""The mapping decisions of the PAS-X schedule transforms (docs/b2mml.md), one per test."""

from __future__ import annotations

import tomllib
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from lxml import etree

from contracts.errors import ConfigurationError, MappingError
from tests.b2mml.b2mml_factory import (
    CASES,
    CREATED_AT,
    KG,
    MAPPING_FILE,
    component,
    local,
    order,
    phase,
    qty,
    typical_order,
)
from transforms.b2mml_common import NS_V0600, NS_V7
from transforms.b2mml_schedule import (
    B2mmlVersion,
    operations_schedule_v7,
    production_schedule_v0600,
    schedule_document_id,
    to_pasx_schedule,
)
from transforms.mapping import MappingProfile
from transforms.model import ComponentRole, ProcessOrder, Unit

VERSIONS: tuple[B2mmlVersion, ...] = ("V0600", "V7")
NAMESPACES = {"V0600": NS_V0600, "V7": NS_V7}
REQUEST = {
    "V0600": "b:DataArea/b:ProductionSchedule/b:ProductionRequest",
    "V7": "b:DataArea/b:OperationsSchedule/b:OperationsRequest",
}


def _build(
    orders: list[ProcessOrder], profile: MappingProfile, version: B2mmlVersion
) -> etree._Element:
    return to_pasx_schedule(orders, profile, created_at=CREATED_AT, version=version)


def _texts(root: etree._Element, version: str, path: str) -> list[str]:
    found = root.xpath(path, namespaces={"b": NAMESPACES[version]})
    assert isinstance(found, list)
    return [str(element.text) for element in found if isinstance(element, etree._Element)]


def _profile_with(changes: dict[str, object]) -> MappingProfile:
    with MAPPING_FILE.open("rb") as handle:
        data = tomllib.load(handle)
    data.update(changes)
    return MappingProfile.from_mapping(data, source="test profile")


def _mapping_error(excinfo: pytest.ExceptionInfo[MappingError]) -> str:
    return str(excinfo.value)


# ---------------------------------------------------------------- structure


@pytest.mark.parametrize("version", VERSIONS)
def test_one_request_per_order_in_input_order(
    version: B2mmlVersion, profile: MappingProfile
) -> None:
    root = _build(CASES["several_orders"](), profile, version)
    assert _texts(root, version, f"{REQUEST[version]}/b:ID") == [
        "000001000127",
        "000001000128",
        "000001000129",
    ]
    assert _texts(root, version, f"{REQUEST[version]}/b:HierarchyScope/b:EquipmentID") == [
        "1000",
        "1100",
        "1000",
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_one_segment_per_phase_with_phase_number_and_text(
    version: B2mmlVersion, profile: MappingProfile
) -> None:
    root = _build(typical_order(), profile, version)
    segments = f"{REQUEST[version]}/b:SegmentRequirement"
    assert _texts(root, version, f"{segments}/b:ID") == ["0010", "0020", "0030"]
    assert _texts(root, version, f"{segments}/b:Description") == [
        "Dispense",
        "Granulate",
        "Compress",
    ]
    assert _texts(root, version, f"{segments}/b:ProcessSegmentID") == ["PI01", "PI01", "PI02"]
    assert _texts(root, version, f"{segments}/b:EquipmentRequirement/b:EquipmentID") == [
        "DISP01",
        "GRAN01",
        "PRESS02",
    ]


def test_v7_segments_carry_definition_and_segment_ids(profile: MappingProfile) -> None:
    root = _build(typical_order(), profile, "V7")
    segments = f"{REQUEST['V7']}/b:SegmentRequirement"
    assert _texts(root, "V7", f"{REQUEST['V7']}/b:OperationsDefinitionID") == ["2/50000123/01"]
    assert _texts(root, "V7", f"{segments}/b:OperationsDefinitionID") == ["2/50000123/01"] * 3
    assert _texts(root, "V7", f"{segments}/b:OperationsSegmentID") == ["0010", "0020", "0030"]
    assert _texts(root, "V7", "b:DataArea/b:OperationsSchedule/b:OperationsType") == ["Production"]
    assert _texts(root, "V7", f"{REQUEST['V7']}/b:OperationsType") == ["Production"]


def test_v7_definition_id_falls_back_to_the_order_number(profile: MappingProfile) -> None:
    root = _build([order("000001000300", phase("0010", "Mix"))], profile, "V7")
    assert _texts(root, "V7", f"{REQUEST['V7']}/b:OperationsDefinitionID") == ["000001000300"]
    assert _texts(root, "V7", f"{REQUEST['V7']}/b:SegmentRequirement/b:OperationsDefinitionID") == [
        "000001000300"
    ]


def test_v0600_recipe_is_the_product_production_rule(profile: MappingProfile) -> None:
    with_recipe = _build(typical_order(), profile, "V0600")
    assert _texts(with_recipe, "V0600", f"{REQUEST['V0600']}/b:ProductProductionRuleID") == [
        "2/50000123/01"
    ]
    without = _build([order("000001000300", phase("0010", "Mix"))], profile, "V0600")
    assert _texts(without, "V0600", f"{REQUEST['V0600']}/b:ProductProductionRuleID") == []


# ---------------------------------------------------------------- materials


@pytest.mark.parametrize("version", VERSIONS)
def test_deleted_components_are_not_sent(version: B2mmlVersion, profile: MappingProfile) -> None:
    root = _build(typical_order(), profile, version)
    materials = _texts(root, version, "//b:MaterialRequirement/b:MaterialDefinitionID")
    assert "000000000000300300" not in materials  # flagged deleted (XLOEK) in phase 0010
    assert materials == [
        "000000000000300100",
        "000000000000300200",
        "000000000000300400",
        "000000000000900001",
        "000000000000200140",
    ]


def test_v7_material_requirement_ids(profile: MappingProfile) -> None:
    root = _build(typical_order(), profile, "V7")
    assert _texts(root, "V7", "//b:MaterialRequirement/b:ID") == [
        "0000098765-0001",
        "0000098765-0002",
        "0000098765-0004",
        "0000098765-0005",
        "000001000123",  # the produced material: the order header's key
    ]


def test_v7_material_id_without_reservation_counts_deleted_lines(profile: MappingProfile) -> None:
    orders = [
        order(
            "000001000300",
            phase(
                "0010",
                "Mix",
                component(
                    "000000000000300100", qty("1"), item=None, reservation=None, deleted=True
                ),
                component("000000000000300200", qty("2"), item=None, reservation=None),
            ),
        )
    ]
    root = _build(orders, profile, "V7")
    # Position 2 in the phase, so the id does not change when SAP deletes line 1.
    assert _texts(root, "V7", "//b:MaterialRequirement/b:ID") == ["0010-2", "000001000300"]


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("V0600", ["Consumed", "Consumed", "Consumed", "Other", "Produced"]),
        ("V7", ["Consumed", "Consumed", "Consumed", "By-product Produced", "Produced"]),
    ],
)
def test_material_use(version: B2mmlVersion, expected: list[str], profile: MappingProfile) -> None:
    root = _build(typical_order(), profile, version)
    assert _texts(root, version, "//b:MaterialRequirement/b:MaterialUse") == expected


def test_v0600_by_product_keeps_its_meaning_in_other_value(profile: MappingProfile) -> None:
    root = _build(typical_order(), profile, "V0600")
    uses = root.xpath("//b:MaterialUse[. = 'Other']", namespaces={"b": NS_V0600})
    assert isinstance(uses, list)
    assert [use.get("OtherValue") for use in uses if isinstance(use, etree._Element)] == [
        "By-product Produced"
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_produced_material_is_on_the_last_phase_of_the_standard_sequence(
    version: B2mmlVersion, profile: MappingProfile
) -> None:
    orders = [
        order(
            "000001000300",
            phase("0010", "Weigh", sequence="0"),
            phase("0020", "Blend", sequence="0"),
            phase("0100", "Clean line (parallel)", sequence="1"),
            total=qty("750.500"),
            batch="B0001",
        )
    ]
    root = _build(orders, profile, version)
    produced = (
        f"{REQUEST[version]}/b:SegmentRequirement[b:MaterialRequirement/b:MaterialUse = 'Produced']"
    )
    assert _texts(root, version, f"{produced}/b:ID") == ["0020"]
    line = f"{produced}/b:MaterialRequirement"
    assert _texts(root, version, f"{line}/b:MaterialDefinitionID") == ["000000000000200140"]
    assert _texts(root, version, f"{line}/b:MaterialLotID") == ["B0001"]
    assert _texts(root, version, f"{line}/b:Quantity/b:QuantityString") == ["750.500"]
    assert _texts(root, version, f"{line}/b:Quantity/b:UnitOfMeasure") == ["KG"]


@pytest.mark.parametrize("version", VERSIONS)
def test_quantity_is_exact_decimal_text_with_pasx_unit(
    version: B2mmlVersion, profile: MappingProfile
) -> None:
    root = _build(CASES["large_and_tiny_decimals"](), profile, version)
    quantity = "//b:MaterialRequirement/b:Quantity"
    assert _texts(root, version, f"{quantity}/b:QuantityString") == [
        "0.001",
        "1234567890.123",
        "10.500",
        "0.000",
        "1000",
        "1234567890.123",
    ]
    assert set(_texts(root, version, f"{quantity}/b:DataType")) == {"decimal"}
    assert _texts(root, version, f"{quantity}/b:UnitOfMeasure") == ["MG", "G", "KG", "KG", "G", "G"]


@pytest.mark.parametrize("version", VERSIONS)
def test_sap_references_are_material_properties(
    version: B2mmlVersion, profile: MappingProfile
) -> None:
    root = _build(typical_order(), profile, version)
    first = "(//b:MaterialRequirement)[1]/b:MaterialRequirementProperty"
    assert _texts(root, version, f"{first}/b:ID") == [
        "SAPReservation",
        "SAPReservationItem",
        "SAPStorageLocation",
    ]
    assert _texts(root, version, f"{first}/b:Value/b:ValueString") == ["0000098765", "0001", "0001"]


def test_negative_zero_is_written_as_zero(profile: MappingProfile) -> None:
    orders = [
        order("000001000300", phase("0010", "Mix", component("000000000000300100", qty("-0.000"))))
    ]
    root = _build(orders, profile, "V7")
    assert _texts(root, "V7", "(//b:QuantityString)[1]") == ["0.000"]


# ---------------------------------------------------------------- optional data and texts


@pytest.mark.parametrize("version", VERSIONS)
def test_missing_optional_data_is_omitted_never_empty(
    version: B2mmlVersion, profile: MappingProfile
) -> None:
    orders = [
        order(
            "000001000300",
            phase("0010", None, work_center=None),
            phase("0020", "   ", work_center=""),
            batch=None,
        )
    ]
    root = _build(orders, profile, version)
    for name in (
        "Description",
        "EquipmentRequirement",
        "EarliestStartTime",
        "LatestEndTime",
        "MaterialLotID",
        "StartTime",
        "EndTime",
    ):
        assert _texts(root, version, f"{REQUEST[version]}//b:SegmentRequirement//b:{name}") == []
    assert _texts(root, version, f"{REQUEST[version]}/b:StartTime") == []
    assert _texts(root, version, f"{REQUEST[version]}/b:EndTime") == []


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("case", sorted(CASES))
def test_no_element_is_empty(case: str, version: B2mmlVersion, profile: MappingProfile) -> None:
    root = _build(CASES[case](), profile, version)
    for element in root.iter(etree.Element):
        if len(element) == 0 and etree.QName(element).localname != "Process":
            assert element.text is not None, f"empty {element.tag}"
            assert element.text.strip(), f"blank {element.tag}"


@pytest.mark.parametrize("version", VERSIONS)
def test_non_ascii_texts_survive_serialisation(
    version: B2mmlVersion, profile: MappingProfile
) -> None:
    orders = CASES["non_ascii_texts"]()
    sent = etree.tostring(_build(orders, profile, version), encoding="UTF-8", xml_declaration=True)
    received = etree.fromstring(sent)
    assert _texts(received, version, "//b:SegmentRequirement/b:Description") == [
        phase.description for phase in orders[0].phases
    ]


@pytest.mark.parametrize("version", VERSIONS)
def test_times_are_plant_local_with_offset(version: B2mmlVersion) -> None:
    profile = _profile_with({"plants": {"1000": {"timezone": "America/New_York"}}})
    utc = ZoneInfo("UTC")
    orders = [
        order(
            "000001000300",
            phase(
                "0010",
                "Mix",
                start=datetime(2026, 7, 1, 12, 0, tzinfo=utc),
                finish=local("2026-07-01T20:00:00"),
            ),
            start=datetime(2026, 1, 15, 11, 0, tzinfo=utc),
            finish=datetime(2026, 7, 2, 4, 30, tzinfo=utc),
        )
    ]
    root = _build(orders, profile, version)
    assert _texts(root, version, f"{REQUEST[version]}/b:StartTime") == ["2026-01-15T06:00:00-05:00"]
    assert _texts(root, version, f"{REQUEST[version]}/b:EndTime") == ["2026-07-02T00:30:00-04:00"]
    segment = f"{REQUEST[version]}/b:SegmentRequirement"
    assert _texts(root, version, f"{segment}/b:EarliestStartTime") == ["2026-07-01T08:00:00-04:00"]
    # 20:00 in Berlin (+02:00) is 14:00 in New York (-04:00): same instant, plant's clock.
    assert _texts(root, version, f"{segment}/b:LatestEndTime") == ["2026-07-01T14:00:00-04:00"]


# ---------------------------------------------------------------- application area and ids


@pytest.mark.parametrize("version", VERSIONS)
def test_application_area(version: B2mmlVersion, profile: MappingProfile) -> None:
    orders = typical_order()
    root = _build(orders, profile, version)
    assert root.get("releaseID") == "mesbridge-1"
    assert _texts(root, version, "b:ApplicationArea/b:Sender/b:LogicalID") == ["mesbridge"]
    assert _texts(root, version, "b:ApplicationArea/b:Receiver/b:LogicalID") == ["PAS-X"]
    assert _texts(root, version, "b:ApplicationArea/b:CreationDateTime") == [
        "2026-03-02T09:15:00+00:00"
    ]
    document_id = schedule_document_id(orders)
    assert _texts(root, version, "b:ApplicationArea/b:BODID") == [document_id]
    assert _texts(root, version, "b:DataArea/*/b:ID") == [document_id]
    process = root.find(f"{{{NAMESPACES[version]}}}DataArea/{{{NAMESPACES[version]}}}Process")
    assert process is not None
    assert len(process) == 0


def test_document_id_is_deterministic_and_follows_the_idoc_key() -> None:
    orders = typical_order()
    assert schedule_document_id(orders) == schedule_document_id(typical_order())
    base = orders[0]
    other_docnum = order("000001000123", *base.phases, docnum="0000000000412399")
    other_order = order("000001000999", *base.phases)
    ids = {
        schedule_document_id(orders),
        schedule_document_id([other_docnum]),
        schedule_document_id([other_order]),
        schedule_document_id([*orders, other_order]),
    }
    assert len(ids) == 4


def test_document_id_does_not_depend_on_the_clock_or_the_version(profile: MappingProfile) -> None:
    orders = typical_order()
    later = datetime(2027, 1, 1, tzinfo=ZoneInfo("UTC"))
    v0600 = production_schedule_v0600(orders, profile, created_at=later).root
    v7 = operations_schedule_v7(orders, profile, created_at=CREATED_AT).root
    assert _texts(v0600, "V0600", "b:ApplicationArea/b:BODID") == _texts(
        v7, "V7", "b:ApplicationArea/b:BODID"
    )


def test_dispatcher_picks_the_version(profile: MappingProfile) -> None:
    assert etree.QName(_build(typical_order(), profile, "V0600")).text == (
        f"{{{NS_V0600}}}ProcessProductionSchedule"
    )
    assert etree.QName(_build(typical_order(), profile, "V7")).text == (
        f"{{{NS_V7}}}ProcessOperationsSchedule"
    )
    with pytest.raises(ValueError, match="unknown B2MML version 'V0401'"):
        to_pasx_schedule(typical_order(), profile, created_at=CREATED_AT, version="V0401")  # type: ignore[arg-type]


def test_naive_created_at_is_a_programming_error(profile: MappingProfile) -> None:
    with pytest.raises(ValueError, match="created_at must be an aware datetime"):
        to_pasx_schedule(
            typical_order(), profile, created_at=datetime(2026, 3, 2, 9, 15), version="V7"
        )


def test_bad_b2mml_identity_in_the_profile_is_a_configuration_error() -> None:
    profile = _profile_with({"b2mml": {"sender": "mes\nbridge"}})
    with pytest.raises(ConfigurationError, match=r"b2mml\.sender"):
        _build(typical_order(), profile, "V0600")


# ---------------------------------------------------------------- refusals


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("orders", "field", "value"),
    [
        pytest.param(
            [order("000001000300", phase("0010", "Mix"), start=datetime(2026, 3, 3, 6, 0))],
            "E1AFKOL/GSTRS",
            "'2026-03-03T06:00:00'",
            id="naive-start",
        ),
        pytest.param(
            [order("000001000300", phase("0010", "Mix\x07"))],
            "phase 0010: E1AFVOL/LTXA1",
            "'Mix\\x07'",
            id="control-character-in-text",
        ),
        pytest.param(
            [order("000001000300", phase("0010", "Mix"), material="ABC\nDEF")],
            "E1AFKOL/MATNR",
            "'ABC\\nDEF'",
            id="line-break-in-material",
        ),
        pytest.param(
            [order("000001000300", phase("0010", "Mix", component(" 300100", qty("1"))))],
            "E1RESBL/MATNR",
            "' 300100'",
            id="padded-component-material",
        ),
        pytest.param(
            [order("000001000300", phase("0010", "Mix", component("300100", qty("-1.5"))))],
            "E1RESBL/BDMNG",
            "'-1.5'",
            id="negative-quantity",
        ),
        pytest.param(
            [order("000001000300", phase("0010", "Mix", component("300100", qty("NaN"))))],
            "E1RESBL/BDMNG",
            "'NaN'",
            id="nan-quantity",
        ),
        pytest.param(
            [
                order(
                    "000001000300", phase("0010", "Mix"), total=qty("5", Unit(sap="XX", iso="XXX"))
                )
            ],
            "E1AFKOL/GAMNG unit",
            "'XX'",
            id="unit-not-in-table",
        ),
        pytest.param(
            [order("000001000300")],
            "E1AFVOL (phases)",
            None,
            id="no-phases",
        ),
        pytest.param(
            [order("000001000300", phase("0010", "Mix"), phase("0010", "Mix again"))],
            "phase number (E1AFVOL/VORNR)",
            "'0010'",
            id="duplicate-phase-number",
        ),
        pytest.param(
            [
                order("000001000300", phase("0010", "Mix")),
                order("000001000300", phase("0010", "Mix")),
            ],
            "order number (E1AFKOL/AUFNR)",
            "'000001000300'",
            id="duplicate-order",
        ),
        pytest.param(
            [
                order(
                    "000001000300",
                    phase(
                        "0010", "Mix", component("300100", qty("1")), component("300200", qty("1"))
                    ),
                )
            ],
            "MaterialRequirement ID",
            "'0000098765-0001'",
            id="duplicate-reservation-item",
        ),
    ],
)
def test_values_that_cannot_be_written_unchanged_are_refused(
    version: B2mmlVersion,
    orders: list[ProcessOrder],
    field: str,
    value: str | None,
    profile: MappingProfile,
) -> None:
    with pytest.raises(MappingError) as excinfo:
        _build(orders, profile, version)
    message = _mapping_error(excinfo)
    assert excinfo.value.message_ref == "LOIPRO IDoc 0000000000412345 from ERPCLNT200"
    assert "order 000001000300" in message
    assert field in message
    if value is not None:
        assert f"found {value}" in message


def test_unit_without_pasx_code_is_refused() -> None:
    with MAPPING_FILE.open("rb") as handle:
        data = tomllib.load(handle)
    for row in data["units"]:
        if row["sap"] == "KG":
            del row["pasx"]
    profile = MappingProfile.from_mapping(data, source="test profile")
    with pytest.raises(MappingError, match="a 'pasx' code for this unit"):
        _build([order("000001000300", phase("0010", "Mix"), total=qty("5", KG))], profile, "V0600")


def test_no_orders_is_refused(profile: MappingProfile) -> None:
    with pytest.raises(MappingError, match="no process orders"):
        _build([], profile, "V0600")


def test_v7_needs_a_control_key_but_v0600_omits_it(profile: MappingProfile) -> None:
    orders = [order("000001000300", phase("0010", "Mix", control_key=None))]
    v0600 = _build(orders, profile, "V0600")
    assert _texts(v0600, "V0600", "//b:ProcessSegmentID") == []
    with pytest.raises(MappingError) as excinfo:
        _build(orders, profile, "V7")
    assert "phase 0010: E1AFVOL/STEUS → SegmentRequirement/ProcessSegmentID" in str(excinfo.value)
    assert "B2MML V7 requires a ProcessSegmentID" in str(excinfo.value)


def test_by_product_role_comes_from_the_model(profile: MappingProfile) -> None:
    """Only ComponentRole decides consumed or by-product (the parser derives it from SHKZG)."""
    orders = [
        order(
            "000001000300",
            phase(
                "0010",
                "Mix",
                component("300100", qty("1"), item="0001", role=ComponentRole.BY_PRODUCT),
            ),
        )
    ]
    root = _build(orders, profile, "V7")
    assert _texts(root, "V7", "//b:MaterialRequirement/b:MaterialUse") == [
        "By-product Produced",
        "Produced",
    ]
