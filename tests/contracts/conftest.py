"""Fixtures for the contract tests: the packaged registry, a safe XML parser, contract builders."""

from __future__ import annotations

import socket
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from contracts.registry import ContractRegistry

REPO_ROOT = Path(__file__).resolve().parents[2]
LOIPRO_FIXTURES = REPO_ROOT / "tests" / "fixtures" / "sap-idoc" / "LOIPRO01" / "1"
PACKAGED = REPO_ROOT / "contracts" / "schemas"
LOIPRO01_DIR = PACKAGED / "sap-idoc" / "LOIPRO01" / "1"


def parse_xml(data: bytes | str | Path) -> etree._Element:
    """Parse the way a test must: no entities, no network, no DTD."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    if isinstance(data, Path):
        return etree.parse(str(data), parser).getroot()
    raw = data.encode("utf-8") if isinstance(data, str) else data
    return etree.fromstring(raw, parser)


@pytest.fixture(scope="session")
def registry() -> ContractRegistry:
    """The packaged contracts, every schema compiled."""
    loaded = ContractRegistry.load()
    loaded.check()
    return loaded


ContractWriter = Callable[..., Path]


@pytest.fixture
def write_contract(tmp_path: Path) -> ContractWriter:
    """Write <tmp>/contracts/<family>/<type>/<version>/ with a manifest and a schema file.

    ``manifest`` is the TOML text after the family/type/version lines (dedented);
    ``schema_name``/``schema`` the schema file. Returns the base directory to load.
    """
    base = tmp_path / "contracts"

    def write(
        family: str,
        type_: str,
        version: str,
        manifest: str,
        *,
        schema_name: str = "schema.xsd",
        schema: str = "",
        header: str | None = None,
    ) -> Path:
        directory = base / family / type_ / version
        directory.mkdir(parents=True, exist_ok=True)
        head = (
            header
            if header is not None
            else f'family = "{family}"\ntype = "{type_}"\nversion = "{version}"\n'
        )
        (directory / "contract.toml").write_text(head + textwrap.dedent(manifest), encoding="utf-8")
        if schema:
            (directory / schema_name).write_text(textwrap.dedent(schema), encoding="utf-8")
        return base

    return write


SIMPLE_XSD = """\
    <xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">
      <xs:element name="Doc">
        <xs:complexType><xs:sequence>
          <xs:element name="Id" type="xs:string"/>
        </xs:sequence></xs:complexType>
      </xs:element>
    </xs:schema>
"""

SIMPLE_JSON_SCHEMA = """\
    {"$schema": "https://json-schema.org/draft/2020-12/schema",
     "type": "object", "required": ["event"],
     "properties": {"event": {"type": "string"}, "version": {"type": "string"}}}
"""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Fail the test on any attempt to open a network connection; yields the attempts."""
    attempts: list[object] = []

    def refuse(self: socket.socket, address: object) -> None:
        attempts.append(address)
        raise AssertionError(f"network access attempted: {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    return attempts
