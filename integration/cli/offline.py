"""Offline commands: ``validate`` and ``transform`` work on files, without broker or database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import click

from contracts.errors import (
    ConfigurationError,
    ContractViolation,
    MesbridgeError,
    UnusableInput,
)
from integration.bootstrap import Components
from integration.intake import read_message
from integration.routes import Accepted, Target

__all__ = ["transform", "validate"]

EXIT_OK, EXIT_INVALID, EXIT_UNUSABLE = 0, 1, 2


@dataclass(frozen=True, slots=True)
class _Verdict:
    path: str
    exit_code: int
    contract: str | None
    detail: str
    error_class: str | None = None
    findings: tuple[dict[str, object], ...] = ()


def _accept(components: Components, path: Path) -> Accepted:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UnusableInput(f"cannot read the file: {exc.strerror}", message_ref=str(path)) from exc
    message = read_message(data, source=str(path), limits=components.limits)
    return components.translator().accept(message)


def _judge(components: Components, path: Path) -> _Verdict:
    contract: str | None = None
    try:
        accepted = _accept(components, path)
        contract = str(accepted.contract.key)
        translator = components.translator()
        targets = translator.targets(accepted)
        if Target.PASX in targets:
            orders = translator.orders(accepted)
            numbers = ", ".join(order.order_number for order in orders)
            detail = f"{len(orders)} order{'s' if len(orders) != 1 else ''} ({numbers})"
        elif Target.SAP in targets:
            # Mapping it all the way proves every actual can be posted without guessing.
            outputs = translator.outputs(accepted, Target.SAP, created_at=datetime.now(UTC))
            numbers = ", ".join(sorted({n for output in outputs for n in output.order_numbers}))
            idocs = sum(output.routing_key == "sap.MBGMCR" for output in outputs)
            detail = (
                f"{idocs} goods-movement IDoc(s), {len(outputs) - idocs} confirmation(s) "
                f"for order {numbers}"
            )
        else:
            detail = "valid"
        return _Verdict(str(path), EXIT_OK, contract, detail)
    except ConfigurationError:
        raise  # the installation is wrong, not the message: exit 2 (integration/cli)
    except MesbridgeError as exc:
        code = EXIT_UNUSABLE if isinstance(exc, UnusableInput) else EXIT_INVALID
        findings = tuple(
            dict[str, object](where=f.where, line=f.line, value=f.value, expected=f.expected)
            for f in exc.findings
        )
        # Identified, then invalid against it (or not mappable): name the contract.
        if contract is None and isinstance(exc, ContractViolation):
            contract = exc.contract
        return _Verdict(str(path), code, contract, str(exc), type(exc).__name__, findings)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="One JSON object per file on stdout.")
@click.pass_obj
def validate(components: Components, files: tuple[Path, ...], as_json: bool) -> None:
    """Identify each FILE's contract and validate it.

    Exit 0 when every file is valid, 1 when one is invalid (errors name the field, line, value
    and what was expected), 2 when one cannot be used at all (unreadable, hostile, malformed).
    """
    components.translator()  # a wrong profile or contract set stops here, with exit 2
    verdicts = [_judge(components, path) for path in files]
    for verdict in verdicts:
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "file": verdict.path,
                        "valid": verdict.exit_code == EXIT_OK,
                        "contract": verdict.contract,
                        "error_class": verdict.error_class,
                        "detail": verdict.detail,
                        "findings": list(verdict.findings),
                    },
                    ensure_ascii=False,
                )
            )
        elif verdict.exit_code == EXIT_OK:
            click.echo(f"VALID    {verdict.path}: {verdict.contract}, {verdict.detail}")
        else:
            label = "UNUSABLE" if verdict.exit_code == EXIT_UNUSABLE else "INVALID "
            click.echo(
                f"{label} {verdict.path} [{verdict.error_class}]\n  {verdict.detail}", err=True
            )
    raise SystemExit(max(verdict.exit_code for verdict in verdicts))


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Choice([t.value for t in Target]),
    help="pasx: B2MML schedule; tulip: Tulip work-order records; sap: SAP IDoc.",
)
@click.option(
    "--profile",
    "pasx_version",
    type=click.Choice(["V0600", "V7"]),
    help="B2MML version for --to pasx (default: the pasx_profile setting, V0600).",
)
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write every output to DIR as its own file (one per order) instead of stdout.",
)
@click.pass_obj
def transform(
    components: Components,
    file: Path,
    target: str,
    pasx_version: str | None,
    out_dir: Path | None,
) -> None:
    """Transform FILE for a target, exactly as the service would, and validate the result.

    Without --out the result goes to stdout as one document: a B2MML schedule with one
    request per order, or a Tulip record (a JSON array when the file holds several orders).
    Exit 1 with the reason when the message is invalid or cannot be mapped.
    """
    translator = components.translator(pasx_version)  # a wrong profile: exit 2, at once
    try:
        accepted = _accept(components, file)
        outputs = translator.outputs(
            accepted, Target(target), created_at=datetime.now(UTC), combine=out_dir is None
        )
    except ConfigurationError:
        raise  # the installation is wrong, not the message: exit 2 (integration/cli)
    except MesbridgeError as exc:
        click.echo(f"mesbridge transform: {exc}", err=True)
        raise SystemExit(EXIT_INVALID) from None
    if out_dir is None:
        if len(outputs) > 1:
            # Several IDocs and confirmations are several documents: never print just one.
            click.echo(
                f"mesbridge transform: {file} makes {len(outputs)} documents ("
                + ", ".join(output.file_name for output in outputs)
                + "); give --out DIR to write each to its own file",
                err=True,
            )
            raise SystemExit(EXIT_INVALID)
        if outputs:
            click.echo(outputs[0].body.decode("utf-8"), nl=False)
        else:
            click.echo(f"mesbridge transform: {file} makes no output", err=True)
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    for output in outputs:
        destination = out_dir / output.file_name
        destination.write_bytes(output.body)
        click.echo(
            f"{destination}  ({output.contract}, order {', '.join(output.order_numbers)})", err=True
        )
