"""JSON Schema contracts: loading without network access, and jsonschema errors → ``Finding``.

The schema's own ``$schema`` picks the draft (default 2020-12). ``$ref`` resolves only inside
the schema document itself: the ``referencing.Registry`` holds that one resource and its
``retrieve`` refuses every other URI, so a remote or unknown reference can never trigger a
download; every ``$ref`` is resolved once at compile time so a bad one stops start-up rather
than the first message.

Failure modes: ``ConfigurationError`` for an unreadable file, invalid JSON, a schema that is
not valid for its draft, and any ``$ref`` that does not resolve inside the document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import SchemaError, ValidationError
from jsonschema.protocols import Validator
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable
from referencing.jsonschema import DRAFT202012

from contracts.errors import ConfigurationError, Finding

__all__ = ["compile_json_schema", "json_findings"]


def _refuse(uri: str) -> Resource[Any]:
    # Called for every URI the registry does not hold: never fetch, never read other files.
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]  # attrs alias unknown to mypy


def compile_json_schema(path: Path) -> Validator:
    """A validator for the schema at ``path``; every ``$ref`` checked to resolve locally."""
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the schema file: {exc}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: the schema file is not valid JSON: {exc}") from exc
    if not isinstance(schema, dict):
        raise ConfigurationError(f"{path}: a JSON Schema must be an object")
    cls = validators.validator_for(schema, default=validators.Draft202012Validator)
    try:
        cls.check_schema(schema)
    except SchemaError as exc:
        raise ConfigurationError(
            f"{path}: not a valid JSON Schema: {exc.message} at {exc.json_path}"
        ) from exc
    base = str(schema.get("$id") or path.resolve().as_uri())
    resource: Resource[Any] = Resource.from_contents(schema, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry(  # type: ignore[call-arg]  # attrs alias unknown to mypy
        retrieve=_refuse
    ).with_resource(base, resource)
    resolver = registry.resolver(base_uri=base)
    for where, ref in _refs(schema, "$"):
        try:
            resolver.lookup(ref)
        except Unresolvable as exc:
            raise ConfigurationError(
                f"{path}: $ref {ref!r} at {where} does not resolve inside this schema; "
                "remote and unknown references are refused (no network access)"
            ) from exc
    validator: Validator = cls(schema, registry=registry)
    return validator


def _refs(node: object, where: str) -> Iterator[tuple[str, str]]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key in {"$ref", "$dynamicRef"} and isinstance(value, str):
                yield where, value
            elif key not in {"enum", "const", "examples", "default"}:
                yield from _refs(value, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _refs(item, f"{where}[{index}]")


def json_findings(validator: Validator, data: object) -> list[Finding]:
    """One finding per jsonschema error, sorted by place, with a readable "expected"."""
    instance: Any = data
    errors = sorted(
        validator.iter_errors(instance), key=lambda e: (list(map(str, e.path)), e.message)
    )
    return [_finding(error) for error in errors]


def _show_types(value: object) -> str:
    names = value if isinstance(value, list) else [value]
    return "a JSON " + " or ".join(str(name) for name in names)


def _unexpected(error: ValidationError) -> list[str]:
    return re.findall(r"'([^']*)'", error.message.partition("(")[2]) if "(" in error.message else []


_EXPECTED: dict[str, Callable[[ValidationError], str]] = {
    "type": lambda e: _show_types(e.validator_value),
    "maxLength": lambda e: f"at most {e.validator_value} characters",
    "minLength": lambda e: f"at least {e.validator_value} character(s)",
    "pattern": lambda e: f"text matching {e.validator_value}",
    "enum": lambda e: "one of " + ", ".join(json.dumps(v) for v in _as_list(e.validator_value)),
    "const": lambda e: f"exactly {json.dumps(e.validator_value)}",
    "maximum": lambda e: f"at most {e.validator_value}",
    "minimum": lambda e: f"at least {e.validator_value}",
    "exclusiveMaximum": lambda e: f"less than {e.validator_value}",
    "exclusiveMinimum": lambda e: f"more than {e.validator_value}",
    "maxItems": lambda e: f"at most {e.validator_value} items",
    "minItems": lambda e: f"at least {e.validator_value} item(s)",
    "additionalProperties": lambda e: (
        "only the properties the schema names; "
        + ", ".join(repr(name) for name in _unexpected(e))
        + " not allowed"
    ),
    "format": lambda e: f"a valid {e.validator_value}",
}


def _as_list(value: object) -> list[object]:
    return list(value) if isinstance(value, list) else [value]


def _message(error: ValidationError) -> str:
    return error.message


def _finding(error: ValidationError) -> Finding:
    where = error.json_path
    value: str | None = _scalar(error.instance)
    if error.validator == "required":
        missing = re.match(r"^'([^']*)'", error.message)
        name = missing.group(1) if missing else "?"
        return Finding(where=f"{where}.{name}", expected=f"required property {name!r}, missing")
    if "propertyNames" in error.schema_path:
        # jsonschema reports a bad property name at the object, with the name as instance.
        rule = _EXPECTED.get(str(error.validator), _message)(error)
        return Finding(where=f"{where}.{value}", value=value, expected=f"a property name {rule}")
    if error.validator in {"additionalProperties", "required"}:
        value = None
    rewrite = _EXPECTED.get(str(error.validator))
    expected = rewrite(error) if rewrite else error.message
    return Finding(where=where, value=value, expected=expected)


def _scalar(instance: object) -> str | None:
    if isinstance(instance, str):
        return instance
    if isinstance(instance, bool) or instance is None:
        return json.dumps(instance)
    if isinstance(instance, int | float):
        return repr(instance)
    if isinstance(instance, Decimal):  # intake parses JSON fractions as Decimal: show the number
        return str(instance)
    try:
        return json.dumps(instance, separators=(",", ":"), default=str)
    except (TypeError, ValueError):
        return None
