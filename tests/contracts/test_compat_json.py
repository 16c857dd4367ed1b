"""`contracts check` for JSON Schema: one OLD/NEW pair per rule, both kinds."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from contracts.compat import Change, check_compatibility
from contracts.errors import ConfigurationError

from .conftest import PACKAGED


def _changes(tmp_path: Path, old: Any, new: Any) -> set[Change]:
    paths = []
    for name, schema in (("old", old), ("new", new)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(schema), encoding="utf-8")
        paths.append(path)
    return set(check_compatibility(paths[0], paths[1]).changes)


def _obj(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (_obj(a={}, b={}), _obj(a={}), Change("breaking", "$.b", "property removed")),
        (_obj(a={}), _obj(a={}, b={}), Change("compatible", "$.b", "new optional property")),
        (
            _obj(a={}),
            {**_obj(a={}, b={}), "required": ["b"]},
            Change("breaking", "$.b", "new required property"),
        ),
        (
            _obj(a={}),
            {**_obj(a={}), "required": ["a"]},
            Change("breaking", "$.a", "property is now required"),
        ),
        (
            {**_obj(a={}), "required": ["a"]},
            _obj(a={}),
            Change("compatible", "$.a", "property no longer required"),
        ),
        (
            _obj(a={"type": "number"}),
            _obj(a={"type": "integer"}),
            Change("breaking", "$.a", "type narrowed: number no longer valid"),
        ),
        (
            _obj(a={"type": "integer"}),
            _obj(a={"type": ["number", "null"]}),
            Change("compatible", "$.a", "type widened: null, number now valid"),
        ),
        (
            _obj(a={}),
            _obj(a={"type": "string"}),
            Change("breaking", "$.a", "type string added (was: any type)"),
        ),
        (
            _obj(a={"enum": ["H", "S"]}),
            _obj(a={"enum": ["H"]}),
            Change("breaking", "$.a", 'values no longer allowed: "S"'),
        ),
        (
            _obj(a={"enum": ["H"]}),
            _obj(a={"enum": ["H", "S"]}),
            Change("compatible", "$.a", 'values now allowed: "S"'),
        ),
        (
            _obj(a={"const": "1"}),
            _obj(a={}),
            Change("compatible", "$.a", "enum/const removed (any value of the type)"),
        ),
        (
            _obj(a={"maxLength": 12}),
            _obj(a={"maxLength": 10}),
            Change("breaking", "$.a", "maxLength 12 → 10"),
        ),
        (
            _obj(a={"maxLength": 10}),
            _obj(a={"maxLength": 40}),
            Change("compatible", "$.a", "maxLength 10 → 40"),
        ),
        (_obj(a={}), _obj(a={"maximum": 5}), Change("breaking", "$.a", "maximum 5 added")),
        (
            _obj(a={"minimum": 0}),
            _obj(a={"minimum": 1}),
            Change("breaking", "$.a", "minimum 0 → 1"),
        ),
        (
            _obj(a={"minLength": 2}),
            _obj(a={}),
            Change("compatible", "$.a", "minLength 2 removed"),
        ),
        (
            _obj(a={"pattern": "^[A-Z]+$"}),
            _obj(a={"pattern": "^[A-Z]{1,4}$"}),
            Change("breaking", "$.a", "pattern ^[A-Z]+$ → ^[A-Z]{1,4}$"),
        ),
        (
            _obj(a={"pattern": "^[A-Z]+$"}),
            _obj(a={}),
            Change("compatible", "$.a", "pattern ^[A-Z]+$ removed"),
        ),
        (
            _obj(lines={"type": "array", "items": {"type": "string", "maxLength": 5}}),
            _obj(lines={"type": "array", "items": {"type": "string", "maxLength": 4}}),
            Change("breaking", "$.lines[*]", "maxLength 5 → 4"),
        ),
        (
            _obj(lines={"type": "array", "maxItems": 3}),
            _obj(lines={"type": "array", "maxItems": 2}),
            Change("breaking", "$.lines", "maxItems 3 → 2"),
        ),
        (
            _obj(a={}),
            {**_obj(a={}), "additionalProperties": False},
            Change("breaking", "$.*", "additionalProperties true → false"),
        ),
        (
            {**_obj(a={}), "additionalProperties": False},
            _obj(a={}),
            Change("compatible", "$.*", "additionalProperties false → allowed"),
        ),
        (
            {**_obj(), "additionalProperties": {"type": ["string", "integer"]}},
            {**_obj(), "additionalProperties": {"type": "string"}},
            Change("breaking", "$.*", "type narrowed: integer no longer valid"),
        ),
        (
            {**_obj(), "propertyNames": {"pattern": "^[a-z]+$"}},
            {**_obj(), "propertyNames": {"pattern": "^[a-z_]+$"}},
            Change("breaking", "$.(property names)", "pattern ^[a-z]+$ → ^[a-z_]+$"),
        ),
        (
            _obj(a={"type": "string"}),
            _obj(a=False),
            Change("breaking", "$.a", "now rejects every value (schema false)"),
        ),
        (
            _obj(a={"oneOf": [{"type": "string"}]}),
            _obj(a={"oneOf": [{"type": "string"}, {"type": "null"}]}),
            Change("breaking", "$.a", "oneOf changed (not analysed; cannot be proven compatible)"),
        ),
    ],
)
def test_json_rules(tmp_path: Path, old: Any, new: Any, expected: Change) -> None:
    changes = _changes(tmp_path, old, new)

    assert expected in changes, changes


def test_annotations_do_not_count(tmp_path: Path) -> None:
    old = {**_obj(a={"type": "string"}), "title": "A", "description": "old"}
    new = {**_obj(a={"type": "string", "description": "now documented"}), "title": "B"}

    assert _changes(tmp_path, old, new) == set()


def test_refs_are_followed_on_both_sides(tmp_path: Path) -> None:
    old = {**_obj(a={"$ref": "#/$defs/code"}), "$defs": {"code": {"maxLength": 4}}}
    new = {**_obj(a={"$ref": "#/$defs/code"}), "$defs": {"code": {"maxLength": 3}}}

    assert _changes(tmp_path, old, new) == {Change("breaking", "$.a", "maxLength 4 → 3")}


def test_recursive_refs_terminate(tmp_path: Path) -> None:
    tree = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {"kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
            }
        },
        "$ref": "#/$defs/node",
    }

    assert _changes(tmp_path, tree, tree) == set()


def test_remote_ref_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not local to the schema document"):
        _changes(tmp_path, _obj(a={"$ref": "https://example.com/a.json"}), _obj(a={}))


def test_tulip_workorder_against_a_modified_copy(tmp_path: Path) -> None:
    original = PACKAGED / "tulip" / "workorder" / "1"
    copy = tmp_path / "tulip" / "workorder" / "2"
    shutil.copytree(original, copy)
    manifest = copy / "contract.toml"
    manifest.write_text(manifest.read_text().replace('version = "1"', 'version = "2"'))
    schema_path = copy / "workorder.schema.json"
    schema = json.loads(schema_path.read_text(encoding="utf-8"))
    schema["properties"]["id"]["maxLength"] = 10
    schema["$defs"]["cell"]["type"] = ["string", "integer", "boolean", "null", "number"]
    schema["properties"]["quantity"] = {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?$"}
    schema_path.write_text(json.dumps(schema), encoding="utf-8")

    report = check_compatibility(original, copy)

    assert set(report.changes) == {
        Change("breaking", "$.id", "maxLength 12 → 10"),
        Change("compatible", "$.*", "type widened: number now valid"),
        Change("compatible", "$.quantity", "new optional property"),
    }
    assert (report.old, report.new) == ("tulip/workorder/1", "tulip/workorder/2")
    assert not report.is_compatible
