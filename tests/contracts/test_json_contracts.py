"""JSON Schema contracts: the Tulip work-order record, and $ref that never leaves the document."""

from __future__ import annotations

import pytest

from contracts.errors import ConfigurationError, ContractViolation
from contracts.registry import ContractRegistry

from .conftest import ContractWriter

WORKORDER = "tulip/workorder/1"


@pytest.mark.parametrize(
    "record",
    [
        {"id": "000000600001"},
        {
            "id": "000000600001",
            "material": "000000000000200001",
            "quantity": "41.250",
            "unit": "kg",
            "phases": 2,
            "released": True,
            "batch": None,
            "ahvbb_scheduled_start": "2026-12-01T06:00:00+01:00",
        },
        {"id": "ORDER-X1", "material_description": "Paracetamol 500 mg – Größe 1"},
    ],
)
def test_valid_work_order_records(record: dict[str, object], registry: ContractRegistry) -> None:
    contract = registry.validate_json(record, registry.get(WORKORDER))

    assert str(contract.key) == WORKORDER


@pytest.mark.parametrize(
    ("record", "where", "value", "expected"),
    [
        ({}, "$.id", None, "required property 'id', missing"),
        ({"id": ""}, "$.id", "", "at least 1 character(s)"),
        ({"id": "0000006000011"}, "$.id", "0000006000011", "at most 12 characters"),
        ({"id": "6000 1"}, "$.id", "6000 1", r"text matching ^\S+$"),
        ({"id": 600001}, "$.id", "600001", "a JSON string"),
        ({"id": "1", "quantity": 41.25}, "$.quantity", "41.25", "a JSON string or integer"),
        ({"id": "1", "lines": [1]}, "$.lines", "[1]", "a JSON string or integer"),
        ({"id": "1", "Quantity": "1"}, "$.Quantity", "Quantity", "a property name text matching"),
    ],
)
def test_invalid_work_order_records(
    record: dict[str, object],
    where: str,
    value: str | None,
    expected: str,
    registry: ContractRegistry,
) -> None:
    with pytest.raises(ContractViolation) as caught:
        registry.validate_json(record, registry.get(WORKORDER))

    matching = [f for f in caught.value.findings if f.where == where and expected in f.expected]
    assert len(matching) == 1, caught.value.findings
    assert matching[0].value == value
    assert str(caught.value).startswith(f"does not satisfy {WORKORDER} (")


def test_all_problems_are_reported_in_path_order(registry: ContractRegistry) -> None:
    with pytest.raises(ContractViolation) as caught:
        registry.validate_json({"id": "", "b": 1.5, "a": [1]}, registry.get(WORKORDER))

    # An empty id breaks both minLength and the no-blank pattern: two findings.
    assert [f.where for f in caught.value.findings] == ["$.a", "$.b", "$.id", "$.id"]


def _json_contract(write_contract: ContractWriter, schema: str) -> ContractRegistry:
    base = write_contract(
        "acme",
        "event",
        "1",
        """
        format = "json"
        schema = "schema.json"
        description = "test"
        [identify]
        fields = { event = "x" }
        """,
        schema_name="schema.json",
        schema=schema,
    )
    return ContractRegistry.load([base])


def test_remote_ref_is_refused_without_network(
    write_contract: ContractWriter, no_network: list[object]
) -> None:
    registry = _json_contract(
        write_contract,
        '{"$schema": "https://json-schema.org/draft/2020-12/schema",'
        ' "properties": {"a": {"$ref": "https://schemas.example.com/a.json"}}}',
    )

    with pytest.raises(ConfigurationError) as caught:
        registry.check()

    text = str(caught.value)
    assert "$ref 'https://schemas.example.com/a.json' at $.properties.a" in text
    assert "remote and unknown references are refused" in text
    assert no_network == []


def test_unknown_local_ref_is_refused(write_contract: ContractWriter) -> None:
    registry = _json_contract(write_contract, '{"$ref": "#/$defs/missing"}')

    with pytest.raises(ConfigurationError, match="does not resolve inside this schema"):
        registry.check()


def test_ref_to_another_file_is_refused(write_contract: ContractWriter) -> None:
    registry = _json_contract(write_contract, '{"$ref": "other.json"}')

    with pytest.raises(ConfigurationError, match=r"'other\.json'"):
        registry.check()


def test_local_refs_resolve(write_contract: ContractWriter) -> None:
    registry = _json_contract(
        write_contract,
        '{"type": "object", "properties": {"n": {"$ref": "#/$defs/small"}},'
        ' "$defs": {"small": {"type": "integer", "maximum": 9}}}',
    )
    registry.check()

    contract = registry.identify_json({"event": "x", "n": 3})
    assert contract.validate_json({"event": "x", "n": 3}) == []
    (finding,) = contract.validate_json({"event": "x", "n": 10})
    assert (finding.where, finding.value, finding.expected) == ("$.n", "10", "at most 9")


def test_a_schema_invalid_for_its_draft_is_refused(write_contract: ContractWriter) -> None:
    registry = _json_contract(write_contract, '{"type": "objekt"}')

    with pytest.raises(ConfigurationError, match="not a valid JSON Schema"):
        registry.check()


def test_a_schema_that_is_not_json_is_refused(write_contract: ContractWriter) -> None:
    registry = _json_contract(write_contract, "{'type': 'object'}")

    with pytest.raises(ConfigurationError, match="not valid JSON"):
        registry.check()
