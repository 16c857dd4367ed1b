"""One contract: a (family, type, version) key, its schema, and validation against it.

A ``Contract`` is built from a checked manifest. Its schema is compiled once, on first use
or by ``compile()`` (the registry's ``check()`` compiles all at start-up), and cached:
lxml ``XMLSchema`` for XSD (libxml2, ~25 µs per IDoc), a jsonschema validator for JSON.
Validation returns findings; it never raises for a bad message.

XML specifics driven by the manifest:

- ``validate_each = "IDOC"``: the schema describes one ``IDOC``; the root (the basic or
  extension type, e.g. ``ZLOIPRO01``) must contain only such elements, each validated alone;
- ``official_schema``: with an official bundle directory given to the registry, the document
  is also validated against that schema (MESA B2MML), findings marked as such;
- ``[[require_any]]``: "at least one of these children" rules XSD 1.0 cannot express.

Failure modes: ``ConfigurationError`` when the schema cannot be compiled, or when an XML
contract is asked to validate JSON (or the reverse).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from jsonschema.protocols import Validator
from lxml import etree

from contracts.errors import ConfigurationError, Finding, UnknownContract
from contracts.identify import IdentifyRule
from contracts.json_schema import compile_json_schema, json_findings
from contracts.manifest import Manifest, RequireAny
from contracts.xmlpath import element_path, local_name, source_line
from contracts.xsd import XsdSchema, compile_xsd
from contracts.xsd_findings import log_entries, translate_errors

__all__ = ["Contract", "ContractKey"]


@dataclass(frozen=True, order=True, slots=True)
class ContractKey:
    """``family/type/version``, e.g. ``sap-idoc/LOIPRO01/1``."""

    family: str
    type: str
    version: str

    def __str__(self) -> str:
        return f"{self.family}/{self.type}/{self.version}"

    @classmethod
    def parse(cls, text: str) -> ContractKey:
        parts = text.strip().split("/")
        if len(parts) != 3 or not all(parts):
            raise UnknownContract(
                f"{text!r} is not a contract key; expected family/type/version, "
                "e.g. sap-idoc/LOIPRO01/1"
            )
        return cls(*parts)


class Contract:
    """A registered contract. Compiles its schema lazily, once, thread-safely."""

    def __init__(
        self,
        manifest: Manifest,
        *,
        official_schema_path: Path | None = None,
        official_bundle_dir: Path | None = None,
    ) -> None:
        self.key = ContractKey(manifest.family, manifest.type, manifest.version)
        self.format: Literal["xml", "json"] = manifest.format
        self.description = manifest.description
        self.directory = manifest.directory
        self.schema_path = manifest.directory / manifest.schema
        self.manifest_path = manifest.path
        self.identify: IdentifyRule | None = manifest.identify
        self.validate_each = manifest.validate_each
        self.require_any: tuple[RequireAny, ...] = manifest.require_any
        self.official_schema_path = official_schema_path
        self.official_bundle_dir = official_bundle_dir or (
            official_schema_path.parent if official_schema_path else None
        )
        self._lock = threading.Lock()
        self._xsd: XsdSchema | None = None
        self._official: XsdSchema | None = None
        self._json: Validator | None = None

    def __repr__(self) -> str:
        return f"<Contract {self.key} {self.format} {self.schema_path}>"

    def compile(self) -> None:
        """Compile the schema(s) now; ``ConfigurationError`` if they do not compile."""
        with self._lock:
            self._compile_locked()

    def _compile_locked(self) -> None:
        if self.format == "json":
            if self._json is None:
                self._json = compile_json_schema(self.schema_path)
            return
        if self._xsd is None:
            self._xsd = compile_xsd(self.schema_path, [self.directory])
        if self.official_schema_path is not None and self._official is None:
            assert self.official_bundle_dir is not None
            self._official = compile_xsd(self.official_schema_path, [self.official_bundle_dir])

    def validate_xml(self, root: etree._Element) -> list[Finding]:
        """Every way ``root`` fails this contract (schema, official schema, rules); [] if valid."""
        if self.format != "xml":
            raise ConfigurationError(f"contract {self.key} is for JSON; it cannot check XML")
        with self._lock:
            self._compile_locked()
            assert self._xsd is not None
            findings = self._validate_with(self._xsd, root, each=self.validate_each)
            if self._official is not None:
                findings += self._validate_with(
                    self._official,
                    root,
                    each="",
                    suffix=f"(official schema {self._official.path.name})",
                )
        findings += _require_any(root, self.require_any)
        return findings

    def validate_json(self, data: object) -> list[Finding]:
        """Every way ``data`` fails this contract's JSON Schema; [] if valid."""
        if self.format != "json":
            raise ConfigurationError(f"contract {self.key} is for XML; it cannot check JSON")
        with self._lock:
            self._compile_locked()
            validator = self._json
        assert validator is not None
        return json_findings(validator, data)

    @staticmethod
    def _validate_with(
        xsd: XsdSchema, root: etree._Element, *, each: str, suffix: str = ""
    ) -> list[Finding]:
        # Called with the lock held: an lxml XMLSchema keeps one error log per object.
        targets, findings = _targets(root, each)
        for target in targets:
            if not xsd.schema.validate(target):
                findings += translate_errors(
                    log_entries(xsd.schema.error_log), target=target, schema=xsd, suffix=suffix
                )
        return findings


def _targets(root: etree._Element, each: str) -> tuple[list[etree._Element], list[Finding]]:
    if not each:
        return [root], []
    findings: list[Finding] = []
    targets: list[etree._Element] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue  # comments and processing instructions carry no data
        if child.tag == each:
            targets.append(child)
        else:
            findings.append(
                Finding(
                    where=element_path(child),
                    line=source_line(child),
                    expected=f"only {each} elements directly under <{local_name(root)}>",
                )
            )
    if not targets:
        findings.append(
            Finding(
                where=element_path(root),
                line=source_line(root),
                expected=f"at least one {each} element",
            )
        )
    return targets, findings


def _require_any(root: etree._Element, rules: tuple[RequireAny, ...]) -> list[Finding]:
    findings: list[Finding] = []
    for rule in rules:
        for element in root.iter(rule.element):
            if not any(
                child.tag in rule.children and (child.text or "").strip() for child in element
            ):
                findings.append(
                    Finding(
                        where=element_path(element),
                        line=source_line(element),
                        expected=(
                            f"field {' or '.join(rule.children)} (at least one, not empty), "
                            "which is missing"
                        ),
                    )
                )
    return findings
