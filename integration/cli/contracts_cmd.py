"""``mesbridge contracts list | check OLD NEW``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from contracts.compat import check_compatibility
from contracts.errors import MesbridgeError
from contracts.registry import Contract
from integration.bootstrap import Components

__all__ = ["contracts"]


@click.group()
def contracts() -> None:
    """The versioned message contracts mesbridge knows."""


@contracts.command("list")
@click.option("--json", "as_json", is_flag=True, help="A JSON list on stdout.")
@click.pass_obj
def list_contracts(components: Components, as_json: bool) -> None:
    """Every registered contract: key, format, schema file and description."""
    registry = components.registry
    registry.check()
    rows = sorted(registry, key=lambda contract: str(contract.key))
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "key": str(c.key),
                        "family": c.key.family,
                        "type": c.key.type,
                        "version": c.key.version,
                        "format": c.format,
                        "schema": str(c.schema_path),
                        "description": c.description,
                    }
                    for c in rows
                ],
                indent=2,
            )
        )
        return
    width = max(len(str(c.key)) for c in rows)
    for c in rows:
        click.echo(f"{c.key!s:<{width}}  {c.format:<4}  {c.description}")


def _resolve(components: Components, reference: str) -> Contract | Path:
    path = Path(reference)
    if path.exists():
        return path
    return components.registry.get(reference)


@contracts.command("check")
@click.argument("old")
@click.argument("new")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON on stdout.")
@click.pass_obj
def check(components: Components, old: str, new: str, as_json: bool) -> None:
    """Is NEW backward-compatible with OLD? Each is a contract key or a schema file.

    Exit 0 when compatible, 1 when a change is breaking (each named with its path), 2 when a
    schema cannot be read.
    """
    try:
        report = check_compatibility(_resolve(components, old), _resolve(components, new))
    except MesbridgeError as exc:
        click.echo(f"mesbridge contracts check: {exc}", err=True)
        raise SystemExit(2) from None
    breaking = [change for change in report.changes if change.kind == "breaking"]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "old": old,
                    "new": new,
                    "compatible": not breaking,
                    "changes": [
                        {"kind": c.kind, "path": c.path, "description": c.description}
                        for c in report.changes
                    ],
                },
                indent=2,
            )
        )
    else:
        for change in report.changes:
            click.echo(f"{change.kind.upper():<10} {change.path}: {change.description}")
        verdict = "BREAKING" if breaking else "COMPATIBLE"
        click.echo(
            f"{verdict}: {new} against {old} ({len(breaking)} breaking, "
            f"{len(report.changes) - len(breaking)} compatible changes)"
        )
    raise SystemExit(1 if breaking else 0)
