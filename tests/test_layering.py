"""Dependencies point one way: ``transforms`` and ``contracts`` import nothing from
``integration`` or ``adapters``.

Every ``.py`` under ``transforms/`` and ``contracts/`` is parsed with ``ast`` (never imported)
and every import is checked: ``import x``, ``from x import y``, relative imports resolved
against the module's own package, imports inside functions or ``if TYPE_CHECKING:``, and
``importlib.import_module("…")`` / ``__import__("…")`` with a literal name.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RULED = ("transforms", "contracts")
FORBIDDEN = frozenset({"integration", "adapters"})
_DYNAMIC_IMPORTERS = frozenset({"import_module", "__import__"})


def _module_name(path: Path, root: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def _resolve_relative(module: str | None, level: int, name: str, is_package: bool) -> str:
    package = name.split(".") if is_package else name.split(".")[:-1]
    # Going above the top-level package is an ImportError at run time; as a dependency it
    # still names a top-level package, which is what the rule is about.
    kept = package[: max(len(package) - (level - 1), 0)]
    return ".".join([*kept, module] if module else kept)


def imported_names(source: str, name: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every module a file imports, absolute and with its line, wherever the import sits."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = (
                _resolve_relative(node.module, node.level, name, is_package)
                if node.level
                else node.module or ""
            )
            if base:
                yield node.lineno, base
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}" if base else alias.name
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            first = node.args[0]
            if (
                called in _DYNAMIC_IMPORTERS
                and isinstance(first, ast.Constant)
                and isinstance(first.value, str)
                and not first.value.startswith(".")
            ):
                yield node.lineno, first.value


def layering_violations(root: Path) -> tuple[list[str], list[Path]]:
    """(violations as 'path:line: imports name', files checked) for the tree at ``root``."""
    violations: list[str] = []
    checked: list[Path] = []
    for package in RULED:
        for path in sorted((root / package).rglob("*.py")):
            checked.append(path)
            name, is_package = _module_name(path, root)
            source = path.read_text(encoding="utf-8")
            for line, imported in imported_names(source, name, is_package):
                if imported.split(".")[0] in FORBIDDEN:
                    violations.append(f"{path.relative_to(root)}:{line}: imports {imported}")
    return sorted(set(violations)), checked


def test_transforms_and_contracts_import_nothing_from_integration_or_adapters() -> None:
    violations, checked = layering_violations(REPO)
    checked_names = {path.relative_to(REPO).as_posix() for path in checked}
    # Not vacuous: the files that must exist were found and read.
    assert {"contracts/errors.py", "transforms/model.py", "transforms/__init__.py"} <= checked_names
    assert violations == []


SYNTHETIC_BAD = '''\
"""A module that breaks every rule it can."""
import integration
import adapters.rabbitmq as rabbit
from integration.settings import Settings
from adapters import tulip
from .. import integration as up
from ..adapters.http import Client
import importlib
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from integration.intake import IntakeLimits


def late() -> None:
    from integration import intake
    importlib.import_module("adapters.tulip")
    __import__("integration.cli")
'''

SYNTHETIC_GOOD = """\
import integrationtools
import adapters_extra
from transforms import integration_helpers
from . import integration
from .adapters import local
from contracts.errors import MappingError
import importlib
importlib.import_module(".integration", package="transforms")
"""


def test_the_rule_catches_every_kind_of_violation(tmp_path: Path) -> None:
    for package in RULED:
        (tmp_path / package / "sub").mkdir(parents=True)
        (tmp_path / package / "__init__.py").write_text("", encoding="utf-8")
        (tmp_path / package / "sub" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "transforms" / "sub" / "bad.py").write_text(SYNTHETIC_BAD, encoding="utf-8")
    (tmp_path / "contracts" / "good.py").write_text(SYNTHETIC_GOOD, encoding="utf-8")
    # Outside the ruled packages anything goes.
    (tmp_path / "integration").mkdir()
    (tmp_path / "integration" / "cli.py").write_text("import adapters\n", encoding="utf-8")

    violations, checked = layering_violations(tmp_path)

    assert len(checked) == 6
    bad = "transforms/sub/bad.py"
    assert violations == sorted(
        [
            f"{bad}:2: imports integration",
            f"{bad}:3: imports adapters.rabbitmq",
            f"{bad}:4: imports integration.settings",
            f"{bad}:4: imports integration.settings.Settings",
            f"{bad}:5: imports adapters",
            f"{bad}:5: imports adapters.tulip",
            # transforms/sub/bad.py: ".." is the transforms package, so this stays inside it
            f"{bad}:12: imports integration.intake",
            f"{bad}:12: imports integration.intake.IntakeLimits",
            f"{bad}:16: imports integration",
            f"{bad}:16: imports integration.intake",
            f"{bad}:17: imports adapters.tulip",
            f"{bad}:18: imports integration.cli",
        ]
    )


def test_relative_imports_that_climb_to_the_top_level_are_caught(tmp_path: Path) -> None:
    (tmp_path / "transforms").mkdir()
    (tmp_path / "contracts").mkdir()
    (tmp_path / "transforms" / "mod.py").write_text(
        "from .. import integration\n"
        "from ..adapters.http import Client\n"
        "from ... import adapters\n",
        encoding="utf-8",
    )
    violations, _ = layering_violations(tmp_path)
    assert violations == [
        "transforms/mod.py:1: imports integration",
        "transforms/mod.py:2: imports adapters.http",
        "transforms/mod.py:2: imports adapters.http.Client",
        "transforms/mod.py:3: imports adapters",
    ]
