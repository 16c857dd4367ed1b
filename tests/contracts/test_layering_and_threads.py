"""The contracts package stays a bottom layer, and one registry is safe to share between threads."""

from __future__ import annotations

import ast
from concurrent.futures import ThreadPoolExecutor

from contracts.registry import ContractRegistry

from .conftest import LOIPRO_FIXTURES, REPO_ROOT, parse_xml

FORBIDDEN = ("integration", "adapters", "transforms")


def test_contracts_imports_nothing_from_upper_layers() -> None:
    offenders = []
    for path in sorted((REPO_ROOT / "contracts").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN
            ]

    assert offenders == []


def test_concurrent_validation_keeps_findings_apart(registry: ContractRegistry) -> None:
    valid = parse_xml(LOIPRO_FIXTURES / "valid" / "shared_example.xml")
    invalid = parse_xml(LOIPRO_FIXTURES / "invalid" / "charg_14_chars.xml")
    contract = registry.get("sap-idoc/LOIPRO01/1")

    def run(index: int) -> tuple[int, int]:
        root = valid if index % 2 else invalid
        return index % 2, len(contract.validate_xml(root))

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(run, range(400)))

    assert set(results) == {(1, 0), (0, 1)}
