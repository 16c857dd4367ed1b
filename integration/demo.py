"""``make run``: show mesbridge working on the bundled example messages, on the embedded defaults.

Every example under ``deploy/examples/sap`` goes through the same steps the
service takes (guard, identify, validate, transform, validate the output);
outputs are written to ``var/demo/`` and a refused message shows the error an
ERP analyst would see.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path

import click

from contracts.errors import MesbridgeError
from integration.bootstrap import Components
from integration.intake import read_message
from integration.routes import Target
from integration.settings import Settings

EXAMPLES = Path(__file__).resolve().parent.parent / "deploy" / "examples" / "sap"
OUT = Path("var") / "demo"


def main() -> None:
    components = Components(Settings.load(os.environ))
    registry = components.registry
    registry.check()
    click.secho("mesbridge: offline run on the embedded defaults", bold=True)
    click.echo(f"  contracts loaded: {', '.join(sorted(str(c.key) for c in registry))}")
    click.echo(f"  mapping profile:  {components.profile.version}")
    shutil.rmtree(OUT, ignore_errors=True)
    now = datetime.now(UTC)
    for path in sorted(EXAMPLES.glob("*.xml")):
        click.echo()
        click.secho(f"{path.name}", bold=True)
        try:
            message = read_message(path.read_bytes(), source=path.name, limits=components.limits)
            for version in ("V0600", "V7"):
                translator = components.translator(version)
                accepted = translator.accept(message)
                targets = [Target.PASX] if version == "V7" else [Target.PASX, Target.TULIP]
                for target in targets:
                    for output in translator.outputs(accepted, target, created_at=now):
                        destination = OUT / target.value / output.file_name
                        destination.parent.mkdir(parents=True, exist_ok=True)
                        destination.write_bytes(output.body)
                        click.echo(
                            f"  ok  {output.contract:<32} order {', '.join(output.order_numbers)}"
                            f"  -> {destination}"
                        )
        except MesbridgeError as exc:
            click.secho(f"  refused ({type(exc).__name__}); the service would park it:", fg="red")
            click.echo("  " + str(exc).replace("\n", "\n  "))
    click.echo()
    click.echo(
        f"Outputs are in {OUT}/. Try: .venv/bin/mesbridge validate deploy/examples/sap/*.xml"
    )


if __name__ == "__main__":
    main()
