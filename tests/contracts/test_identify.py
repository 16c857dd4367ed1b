"""Identification: the contract comes from the message itself, the most specific rule wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from contracts.errors import UnknownContract
from contracts.registry import ContractRegistry, describe_message

from .conftest import LOIPRO_FIXTURES, SIMPLE_JSON_SCHEMA, SIMPLE_XSD, ContractWriter, parse_xml

V0600 = "http://www.mesa.org/xml/B2MML-V0600"


def _idoc(
    idoctyp: str = "LOIPRO01", cimtyp: str = "", sndprn: str = "ERPCLNT200", root: str = ""
) -> str:
    cim = f"<CIMTYP>{cimtyp}</CIMTYP>" if cimtyp else ""
    name = root or cimtyp or idoctyp
    return (
        f"<{name}><IDOC BEGIN='1'><EDI_DC40 SEGMENT='1'><DOCNUM>1</DOCNUM>"
        f"<IDOCTYP>{idoctyp}</IDOCTYP>{cim}<MESTYP>LOIPRO</MESTYP><SNDPRN>{sndprn}</SNDPRN>"
        f"</EDI_DC40></IDOC></{name}>"
    )


# ----------------------------------------------------------------------------- IDoc


def test_idoc_basic_types_are_identified(registry: ContractRegistry) -> None:
    for idoctyp in ("LOIPRO01", "LOIPRO02", "LOIPRO03"):
        contract = registry.identify_xml(parse_xml(_idoc(idoctyp)))
        assert str(contract.key) == f"sap-idoc/{idoctyp}/1"


def test_any_extension_type_is_accepted_by_the_standard_contract(
    registry: ContractRegistry,
) -> None:
    contract = registry.identify_xml(parse_xml(_idoc(cimtyp="ZLOIPRO01_PHARMA")))

    assert str(contract.key) == "sap-idoc/LOIPRO01/1"


def _site_contract(write_contract: ContractWriter, identify: str, version: str = "2") -> Path:
    return write_contract(
        "sap-idoc",
        "LOIPRO01",
        version,
        f"""
        format = "xml"
        schema = "schema.xsd"
        description = "site schema"
        [identify]
        {identify}
        """,
        schema=SIMPLE_XSD,
    )


def test_an_exact_cimtyp_beats_any_cimtyp(write_contract: ContractWriter) -> None:
    base = _site_contract(
        write_contract, 'idoctyp = ["LOIPRO01"]\nmestyp = ["LOIPRO"]\ncimtyp = ["ZLOIPRO01"]'
    )
    registry = ContractRegistry.load([base])

    extended = registry.identify_xml(parse_xml(_idoc(cimtyp="ZLOIPRO01")))
    other_extension = registry.identify_xml(parse_xml(_idoc(cimtyp="ZLOIPRO01X")))
    plain = registry.identify_xml(parse_xml(_idoc()))

    assert str(extended.key) == "sap-idoc/LOIPRO01/2"
    assert str(other_extension.key) == "sap-idoc/LOIPRO01/1"
    assert str(plain.key) == "sap-idoc/LOIPRO01/1"


def test_no_cimtyp_key_means_only_messages_without_extension(
    write_contract: ContractWriter,
) -> None:
    base = _site_contract(write_contract, 'idoctyp = ["LOIPRO01"]\nmestyp = ["LOIPRO"]')
    registry = ContractRegistry.load([base])

    assert str(registry.identify_xml(parse_xml(_idoc())).key) == "sap-idoc/LOIPRO01/2"
    extended = registry.identify_xml(parse_xml(_idoc(cimtyp="ZLOIPRO01")))
    assert str(extended.key) == "sap-idoc/LOIPRO01/1"


def test_a_sender_specific_contract_wins_for_that_sender(write_contract: ContractWriter) -> None:
    base = _site_contract(
        write_contract,
        'idoctyp = ["LOIPRO01"]\nmestyp = ["LOIPRO"]\ncimtyp = ["*"]\nsndprn = ["S4PCLNT100"]',
    )
    registry = ContractRegistry.load([base])

    assert str(registry.identify_xml(parse_xml(_idoc(sndprn="S4PCLNT100"))).key) == (
        "sap-idoc/LOIPRO01/2"
    )
    assert str(registry.identify_xml(parse_xml(_idoc())).key) == "sap-idoc/LOIPRO01/1"


def test_idocs_of_one_file_that_match_different_contracts_are_refused(
    write_contract: ContractWriter,
) -> None:
    base = _site_contract(
        write_contract,
        'idoctyp = ["LOIPRO01"]\nmestyp = ["LOIPRO"]\ncimtyp = ["*"]\nsndprn = ["S4PCLNT100"]',
    )
    registry = ContractRegistry.load([base])
    first = _idoc().removeprefix("<LOIPRO01>").removesuffix("</LOIPRO01>")
    second = _idoc(sndprn="S4PCLNT100").removeprefix("<LOIPRO01>").removesuffix("</LOIPRO01>")

    with pytest.raises(UnknownContract) as caught:
        registry.identify_xml(parse_xml(f"<LOIPRO01>{first}{second}</LOIPRO01>"))

    text = str(caught.value)
    assert "sap-idoc/LOIPRO01/1 and sap-idoc/LOIPRO01/2 (IDOC 2)" in text


def test_unknown_idoc_type_names_what_was_found_and_what_is_supported(
    registry: ContractRegistry,
) -> None:
    with pytest.raises(UnknownContract) as caught:
        registry.identify_xml(parse_xml(_idoc("LOIPRO09")))

    text = str(caught.value)
    assert "IDOCTYP 'LOIPRO09', MESTYP 'LOIPRO'" in text
    assert "supported IDoc contracts: sap-idoc/LOIPRO01/1 (IDOCTYP 'LOIPRO01'" in text
    assert "b2mml/" not in text  # only the contracts of the family that could apply


def test_idoc_without_idoctyp_is_not_guessed_from_the_root_name(
    registry: ContractRegistry,
) -> None:
    message = "<LOIPRO01><IDOC><EDI_DC40><MESTYP>LOIPRO</MESTYP></EDI_DC40></IDOC></LOIPRO01>"

    with pytest.raises(UnknownContract) as caught:
        registry.identify_xml(parse_xml(message))

    assert [f.expected for f in caught.value.findings] == [
        "the field IDOCTYP (the IDoc basic type)"
    ]


def test_mixed_extension_types_are_refused_with_positions(registry: ContractRegistry) -> None:
    first = _idoc(cimtyp="ZLOIPRO01", root="X").removeprefix("<X>").removesuffix("</X>")
    second = _idoc(root="X").removeprefix("<X>").removesuffix("</X>")

    with pytest.raises(UnknownContract) as caught:
        registry.identify_xml(parse_xml(f"<ZLOIPRO01>{first}{second}</ZLOIPRO01>"))

    (finding,) = caught.value.findings
    assert finding.where == "/ZLOIPRO01/IDOC[2]/EDI_DC40/CIMTYP"
    assert finding.value == ""
    assert finding.expected.startswith("'ZLOIPRO01' as in IDOC 1")


# ----------------------------------------------------------------------------- XML root


def test_b2mml_is_identified_by_namespace_and_root(registry: ContractRegistry) -> None:
    root = parse_xml(f'<ProcessProductionSchedule xmlns="{V0600}" releaseID="1"/>')

    assert str(registry.identify_xml(root).key) == "b2mml/ProductionSchedule/V0600"


def test_same_root_in_another_namespace_is_unknown(registry: ContractRegistry) -> None:
    root = parse_xml('<ProcessProductionSchedule xmlns="http://www.wbf.org/xml/B2MML-V0401"/>')

    with pytest.raises(UnknownContract) as caught:
        registry.identify_xml(root)

    text = str(caught.value)
    assert "root element {http://www.wbf.org/xml/B2MML-V0401}ProcessProductionSchedule" in text
    assert f"b2mml/ProductionSchedule/V0600 (root {{{V0600}}}'ProcessProductionSchedule')" in text
    assert "sap-idoc" not in text


def test_release_id_makes_a_root_rule_more_specific(write_contract: ContractWriter) -> None:
    for version, extra in (("1", ""), ("2", 'release_id = ["2.0"]')):
        base = write_contract(
            "acme",
            "Doc",
            version,
            f"""
            format = "xml"
            schema = "schema.xsd"
            description = "test"
            [identify]
            namespace = ""
            root = ["Doc"]
            {extra}
            """,
            schema=SIMPLE_XSD,
        )
    registry = ContractRegistry.load([base])

    assert str(registry.identify_xml(parse_xml('<Doc releaseID="2.0"/>')).key) == "acme/Doc/2"
    assert str(registry.identify_xml(parse_xml('<Doc releaseID="1.0"/>')).key) == "acme/Doc/1"
    assert str(registry.identify_xml(parse_xml("<Doc/>")).key) == "acme/Doc/1"


# ----------------------------------------------------------------------------- JSON


def _json_contracts(write_contract: ContractWriter) -> ContractRegistry:
    for version, fields in (
        ("1", '{ event = "completion" }'),
        ("2", '{ event = "completion", version = "2" }'),
        ("3", '{ event = "completion", version = 3 }'),
    ):
        base = write_contract(
            "tulip-event",
            "completion",
            version,
            f"""
            format = "json"
            schema = "schema.json"
            description = "test"
            [identify]
            fields = {fields}
            """,
            schema_name="schema.json",
            schema=SIMPLE_JSON_SCHEMA,
        )
    return ContractRegistry.load([base])


def test_json_fields_rule_most_specific_wins(write_contract: ContractWriter) -> None:
    registry = _json_contracts(write_contract)

    assert str(registry.identify_json({"event": "completion"}).key) == ("tulip-event/completion/1")
    assert str(registry.identify_json({"event": "completion", "version": "2"}).key) == (
        "tulip-event/completion/2"
    )
    assert str(registry.identify_json({"event": "completion", "version": 3}).key) == (
        "tulip-event/completion/3"
    )


def test_json_field_values_compare_with_their_type(write_contract: ContractWriter) -> None:
    registry = _json_contracts(write_contract)

    # "3" is not 3, and true is not 1: a near miss falls back to the less specific contract.
    assert str(registry.identify_json({"event": "completion", "version": "3"}).key) == (
        "tulip-event/completion/1"
    )
    with pytest.raises(UnknownContract):
        registry.identify_json({"event": True})


def test_unknown_json_names_the_identifying_fields_found(write_contract: ContractWriter) -> None:
    registry = _json_contracts(write_contract)

    with pytest.raises(UnknownContract) as caught:
        registry.identify_json({"event": "start", "version": "2"})

    text = str(caught.value)
    assert "event = 'start', version = '2'" in text
    assert "tulip-event/completion/2 (event = 'completion', version = '2')" in text


def test_json_that_is_not_an_object_is_unknown(registry: ContractRegistry) -> None:
    with pytest.raises(UnknownContract, match="a JSON list, not an object"):
        registry.identify_json([{"id": "1"}])


def test_the_tulip_output_contract_is_never_identified(registry: ContractRegistry) -> None:
    with pytest.raises(UnknownContract):
        registry.identify_json({"id": "000000600001"})


# ----------------------------------------------------------------------------- describe


@pytest.mark.parametrize(
    ("xml", "described"),
    [
        (
            f'<ProcessProductionSchedule xmlns="{V0600}"><ApplicationArea><BODID>BOD-4711</BODID>'
            "</ApplicationArea></ProcessProductionSchedule>",
            "ProcessProductionSchedule BODID BOD-4711",
        ),
        (f'<ProcessProductionSchedule xmlns="{V0600}"/>', "ProcessProductionSchedule (no BODID)"),
        ("<Something/>", "<Something>"),
        ("<LOIPRO01><IDOC/></LOIPRO01>", "IDoc file <LOIPRO01> without control record"),
    ],
)
def test_describe_message(xml: str, described: str) -> None:
    assert describe_message(parse_xml(xml)) == described


def test_describe_many_idocs_is_short() -> None:
    body = "".join(
        f"<IDOC><EDI_DC40><DOCNUM>{n}</DOCNUM><IDOCTYP>LOIPRO01</IDOCTYP>"
        "<MESTYP>LOIPRO</MESTYP><SNDPRN>ERP</SNDPRN></EDI_DC40></IDOC>"
        for n in range(1, 6)
    )

    assert describe_message(parse_xml(f"<LOIPRO01>{body}</LOIPRO01>")) == (
        "IDocs 1, 2, 3 and 2 more (LOIPRO01/LOIPRO from ERP)"
    )


def test_describe_the_extension_fixture() -> None:
    root = parse_xml(LOIPRO_FIXTURES / "valid" / "zloipro01_extension.xml")

    assert describe_message(root) == (
        "IDoc 0000000000815001 (LOIPRO01+ZLOIPRO01/LOIPRO from ERPCLNT200)"
    )
