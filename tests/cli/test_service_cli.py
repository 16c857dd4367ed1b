"""The service-side commands, without any broker."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from integration.cli import cli
from tests.support.idoc_factory import OrderSpec, build_loipro


def test_send_refuses_the_embedded_broker(tmp_path: Path) -> None:
    path = tmp_path / "order.xml"
    path.write_bytes(build_loipro([OrderSpec()]))
    result = CliRunner().invoke(cli, ["send", str(path), "--broker", "memory://"])
    assert result.exit_code == 2
    assert "embedded broker lives inside" in result.stderr
