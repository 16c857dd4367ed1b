"""The offline CLI as an analyst or a script uses it: exit codes, stdout, stderr, files."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from integration.cli import cli
from tests.support.idoc_factory import OrderSpec, build_loipro

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "deploy" / "examples" / "sap"
GOOD = EXAMPLES / "LOIPRO01-granulation-order.xml"
TWO = EXAMPLES / "ZLOIPRO01-two-orders.xml"
BAD = EXAMPLES / "LOIPRO01-invalid-batch-and-unit.xml"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_validate_valid_files(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate", str(GOOD), str(TWO)])
    assert result.exit_code == 0, result.output
    assert "sap-idoc/LOIPRO01/1" in result.stdout
    assert "2 orders (000001000240, 000001000241)" in result.stdout


def test_validate_invalid_names_field_line_value_and_expectation(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate", str(GOOD), str(BAD)])
    assert result.exit_code == 1
    assert "E1AFPOL/CHARG (line 51)" in result.stderr
    assert "G26L0042_RETEST" in result.stderr
    assert "at most 10 characters" in result.stderr
    assert "IDoc 0000000004711009" in result.stderr


def test_validate_mapping_gap_is_invalid(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "unit.xml"
    path.write_bytes(build_loipro([OrderSpec(unit="XYZ")]))
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert "E1AFKOL/GMEIN (line 24): found 'XYZ', expected an SAP unit" in result.stderr
    assert "E1AFPOL/MEINS (line 31): found 'XYZ'" in result.stderr
    assert result.stderr.count("IDoc 0000000000815001") == 1


def test_validate_hostile_and_unreadable_are_unusable(runner: CliRunner, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    hostile = tmp_path / "xxe.xml"
    hostile.write_text(
        f'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file://{secret}">]>'
        "<LOIPRO01><IDOC>&x;</IDOC></LOIPRO01>"
    )
    result = runner.invoke(cli, ["validate", str(hostile), str(tmp_path / "missing.xml")])
    assert result.exit_code == 2
    assert "HostileInput" in result.stderr
    assert "UnusableInput" in result.stderr
    assert "TOP-SECRET-MARKER" not in result.output


def test_validate_unknown_contract_lists_supported(runner: CliRunner, tmp_path: Path) -> None:
    path = tmp_path / "unknown.xml"
    path.write_bytes(build_loipro([OrderSpec(idoctyp="LOIPRO09")]))
    result = runner.invoke(cli, ["validate", str(path)])
    assert result.exit_code == 1
    assert "LOIPRO09" in result.stderr
    assert "LOIPRO01" in result.stderr


def test_validate_json_output(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate", "--json", str(GOOD), str(BAD)])
    assert result.exit_code == 1
    good, bad = (json.loads(line) for line in result.stdout.splitlines())
    assert good["valid"] is True
    assert good["contract"] == "sap-idoc/LOIPRO01/1"
    assert bad["valid"] is False
    assert bad["error_class"] == "ContractViolation"
    assert bad["findings"][0]["value"] == "G26L0042_RETEST"
    assert bad["findings"][0]["line"] == 51


def test_transform_pasx_to_stdout_is_one_schedule(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["transform", str(TWO), "--to", "pasx"])
    assert result.exit_code == 0, result.stderr
    root = etree.fromstring(result.stdout_bytes)
    ns = {"b": "http://www.mesa.org/xml/B2MML-V0600"}
    assert root.tag == "{http://www.mesa.org/xml/B2MML-V0600}ProcessProductionSchedule"
    ids = root.xpath("//b:ProductionRequest/b:ID/text()", namespaces=ns)
    assert ids == ["000001000240", "000001000241"]


def test_transform_v7_out_dir_writes_one_file_per_order(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(
        cli, ["transform", str(TWO), "--to", "pasx", "--profile", "V7", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.stderr
    files = sorted(tmp_path.iterdir())
    assert len(files) == 2
    for path in files:
        root = etree.parse(str(path)).getroot()
        assert root.tag == "{http://www.mesa.org/xml/B2MML}ProcessOperationsSchedule"


def test_transform_tulip_one_record_per_order(runner: CliRunner, tmp_path: Path) -> None:
    single = runner.invoke(cli, ["transform", str(GOOD), "--to", "tulip"])
    assert single.exit_code == 0, single.stderr
    record = json.loads(single.stdout)
    assert record["id"] == "000001000234"
    assert record["quantity"] == "120.000"
    several = runner.invoke(cli, ["transform", str(TWO), "--to", "tulip", "--out", str(tmp_path)])
    assert several.exit_code == 0, several.stderr
    records = [json.loads(p.read_text()) for p in sorted(tmp_path.iterdir())]
    assert [r["id"] for r in records] == ["000001000240", "000001000241"]


def test_transform_invalid_exits_1_with_reason(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["transform", str(BAD), "--to", "pasx"])
    assert result.exit_code == 1
    assert "G26L0042_RETEST" in result.stderr
    assert result.stdout == ""


def test_transform_to_sap_from_a_process_order_is_refused(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["transform", str(GOOD), "--to", "sap"])
    assert result.exit_code == 1
    assert "possible targets: pasx, tulip" in result.stderr


def test_unknown_setting_stops_with_a_hint(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate", str(GOOD)], env={"MESBRIDGE_HTTP_PRT": "1"})
    assert result.exit_code == 2
    assert "MESBRIDGE_HTTP_PORT" in result.stderr


def test_python_dash_m_integration_is_the_same_program() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "integration", "validate", str(GOOD)],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
    )
    assert completed.returncode == 0, completed.stderr
    assert "VALID" in completed.stdout


def test_latin1_idoc_from_a_non_unicode_sap_system(runner: CliRunner, tmp_path: Path) -> None:
    text = TWO.read_text("utf-8").replace('encoding="UTF-8"', 'encoding="ISO-8859-1"')
    text = text.replace("–", "-")  # the en dash has no ISO-8859-1 code
    path = tmp_path / "latin1.xml"
    path.write_bytes(text.encode("latin-1"))
    checked = runner.invoke(cli, ["validate", str(path)])
    assert checked.exit_code == 0, checked.stderr
    result = runner.invoke(cli, ["transform", str(path), "--to", "tulip"])
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    assert records[0]["phases"] == "0010 Tablettierung Größe 1 - Presse"


PERFORMANCE = REPO / "tests" / "fixtures" / "b2mml"
V0600_PERFORMANCE = (
    PERFORMANCE / "ProductionPerformance/V0600/valid/consumption_yield_byproduct.xml"
)
V7_PERFORMANCE = PERFORMANCE / "OperationsPerformance/V7/valid/consumption_yield_byproduct.xml"


def test_transform_performance_to_sap_goods_movements(runner: CliRunner, tmp_path: Path) -> None:
    checked = runner.invoke(cli, ["validate", str(V0600_PERFORMANCE)])
    assert checked.exit_code == 0, checked.stderr
    assert "3 goods-movement IDoc(s), 0 confirmation(s) for order 000001000300" in checked.stdout
    result = runner.invoke(
        cli, ["transform", str(V0600_PERFORMANCE), "--to", "sap", "--out", str(tmp_path)]
    )
    assert result.exit_code == 0, result.stderr
    codes = []
    for path in sorted(tmp_path.iterdir()):
        root = etree.parse(str(path)).getroot()
        assert root.tag == "MBGMCR03"
        codes.append(root.findtext("IDOC/E1MBGMCR/E1BP2017_GM_CODE/GM_CODE"))
        assert {item.findtext("ORDERID") for item in root.iter("E1BP2017_GM_ITEM_CREATE")} == {
            "000001000300"
        }
    assert codes == ["02", "03", "05"]  # one material document per GM_CODE
    again = tmp_path / "again"
    runner.invoke(cli, ["transform", str(V0600_PERFORMANCE), "--to", "sap", "--out", str(again)])
    assert sorted(p.name for p in again.iterdir()) == sorted(
        p.name for p in tmp_path.iterdir() if p.is_file()
    )  # the same DOCNUMs again: derived from the message, not from a counter


def test_transform_to_stdout_refuses_to_print_one_of_several_documents(
    runner: CliRunner,
) -> None:
    result = runner.invoke(cli, ["transform", str(V0600_PERFORMANCE), "--to", "sap"])
    assert result.exit_code == 1
    assert "makes 3 documents" in result.stderr
    assert "--out DIR" in result.stderr
    assert result.stdout == ""


def test_unpostable_performance_is_refused_naming_each_field(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["transform", str(V7_PERFORMANCE), "--to", "sap"])
    assert result.exit_code == 1
    assert "PLANT" in result.stderr
    assert "found '3.1416', expected at most 3 decimals" in result.stderr
    assert result.stdout == ""


def test_a_wrong_mapping_profile_stops_validate_and_transform_with_exit_2(
    runner: CliRunner, tmp_path: Path
) -> None:
    defaults = (REPO / "integration" / "defaults" / "mapping.toml").read_text("utf-8")
    profile = tmp_path / "mapping.toml"
    profile.write_text(defaults + '\n[plants.4711]\nissue_storage_location = "RM001"\n')
    env = {"MESBRIDGE_MAPPING_FILE": str(profile)}
    for args in (["validate", str(GOOD)], ["transform", str(GOOD), "--to", "pasx"]):
        result = runner.invoke(cli, args, env=env)
        assert result.exit_code == 2, result.output
        assert "configuration error" in result.stderr
        assert "'RM001' is not an SAP storage location" in result.stderr
        assert "INVALID" not in result.stderr


def test_validate_json_names_the_contract_a_message_failed(runner: CliRunner) -> None:
    result = runner.invoke(cli, ["validate", "--json", str(BAD)])
    assert result.exit_code == 1
    verdict = json.loads(result.stdout)
    assert (verdict["valid"], verdict["contract"]) == (False, "sap-idoc/LOIPRO01/1")
