"""The ``mesbridge`` command line (DESIGN §5).

Exit codes, for every command: 0 success, 1 the message or the request is
wrong (invalid, unmappable, incompatible), 2 the input cannot be used at all
(unreadable, hostile, malformed) or the installation is misconfigured.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from contracts.errors import ConfigurationError
from integration.bootstrap import Components
from integration.cli.audit_cmd import audit, purge
from integration.cli.contracts_cmd import contracts
from integration.cli.failed_cmd import failed
from integration.cli.offline import transform, validate
from integration.cli.service_cmd import run, send
from integration.settings import Settings

__all__ = ["cli", "main"]


class _Group(click.Group):
    """Turns a configuration error raised while a command builds its parts into exit 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ConfigurationError as exc:
            click.echo(f"mesbridge: configuration error: {exc}", err=True)
            ctx.exit(2)


@click.group(
    cls=_Group,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="TOML settings file; overrides MESBRIDGE_* environment variables.",
)
@click.version_option(package_name="mesbridge")
@click.pass_context
def cli(ctx: click.Context, config_file: Path | None) -> None:
    """mesbridge: SAP ERP <-> MES (PAS-X, Tulip) middleware."""
    try:
        settings = Settings.load(os.environ, config_file=config_file)
    except ConfigurationError as exc:
        click.echo(f"mesbridge: {exc}", err=True)
        ctx.exit(2)
    ctx.obj = Components(settings)


cli.add_command(validate)
cli.add_command(transform)
cli.add_command(contracts)
cli.add_command(run)
cli.add_command(send)
cli.add_command(failed)
cli.add_command(audit)
cli.add_command(purge)


def main() -> None:
    cli.main(prog_name="mesbridge", standalone_mode=True)
