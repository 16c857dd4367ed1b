"""``mesbridge failed`` as an analyst uses it, on a SQLite store (no broker needed here).

The failures are made by the real pipeline from real messages (an invalid
process order, a hostile and a truncated document), so the rows are what the
service would park. Replays through a broker are in tests/service.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from integration.audit import audit_entries
from integration.broker import Delivery
from integration.cli import cli
from integration.store import FailedMessages, FailureStatus, Store
from tests.support.pipelines import process_order_pipeline

REPO = Path(__file__).resolve().parents[2]
BAD = REPO / "deploy" / "examples" / "sap" / "LOIPRO01-invalid-batch-and-unit.xml"
HOSTILE = REPO / "tests" / "fixtures" / "hostile" / "refused"
UNREACHABLE_BROKER = "amqp://guest:guest@127.0.0.1:1/"

Invoke = Callable[..., Result]


def park(store: Store, body: bytes, *, headers: dict[str, object] | None = None) -> int:
    """Run ``body`` through the real pipeline as the service would, and park the failure."""
    pipeline = process_order_pipeline()
    result = pipeline.process(
        Delivery(
            body=body,
            exchange="mesbridge.in",
            routing_key="sap.LOIPRO",
            delivery_tag=1,
            message_id="sap-4711009",
            content_type="application/xml",
            headers=headers or {},
        )
    )
    assert result.failure is not None
    return store.record_failure(result.failure)


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'mesbridge.db'}"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.connect(database_url)
    yield opened
    opened.close()


@pytest.fixture
def parked(store: Store) -> dict[str, int]:
    return {
        "charg": park(store, BAD.read_bytes(), headers={"x-trace": "evil\x1b[2J\u202eend"}),
        "xxe": park(store, (HOSTILE / "xxe-file-passwd.xml").read_bytes()),
        "truncated": park(store, (HOSTILE / "truncated.xml").read_bytes()),
        "charg_again": park(store, BAD.read_bytes()),
    }


@pytest.fixture
def invoke(database_url: str) -> Invoke:
    def run(*args: str) -> Result:
        env = {"MESBRIDGE_DATABASE_URL": database_url}
        # No stray MESBRIDGE_* of the developer's shell may change the settings under test.
        env.update({name: None for name in os.environ if name.startswith("MESBRIDGE_")})  # type: ignore[misc]
        env["MESBRIDGE_DATABASE_URL"] = database_url
        return CliRunner().invoke(cli, list(args), env=env)

    return run


def listed(invoke: Invoke, *args: str) -> list[dict[str, object]]:
    result = invoke("failed", "list", "--json", *args)
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    assert isinstance(items, list)
    return items


def test_list_json_names_the_field_of_each_parked_message(
    invoke: Invoke, parked: dict[str, int]
) -> None:
    items = {item["id"]: item for item in listed(invoke)}

    assert set(items) == set(parked.values())
    charg = items[parked["charg"]]
    for key in ("id", "status", "route", "contract", "error", "first_failed_at", "attempts"):
        assert key in charg
    assert charg["status"] == "parked"
    assert charg["route"] == "process-order"
    assert charg["contract"] == "sap-idoc/LOIPRO01/1"
    assert charg["attempts"] == 1
    assert charg["field"] == "/LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG"
    assert "E1AFPOL/CHARG (line 51): found 'G26L0042_RETEST'" in str(charg["error"])
    assert charg["order_numbers"] == ["1000234"]
    assert str(charg["first_failed_at"]).endswith("Z")
    xxe = items[parked["xxe"]]
    assert xxe["error_class"] == "HostileInput"
    assert "DOCTYPE refused" in str(xxe["error"])
    assert xxe["contract"] is None
    assert items[parked["truncated"]]["error_class"] == "MalformedInput"
    assert items[parked["truncated"]]["field"] == "column 23"


def test_list_filters(invoke: Invoke, parked: dict[str, int]) -> None:
    group = str(next(i for i in listed(invoke) if i["id"] == parked["charg"])["fingerprint"])

    assert [i["id"] for i in listed(invoke, "--group", group)] == [
        parked["charg_again"],
        parked["charg"],
    ]
    assert [i["id"] for i in listed(invoke, "--order", "000001000234")] == [
        parked["charg_again"],
        parked["charg"],
    ]
    assert len(listed(invoke, "--since", "1h")) == 4
    assert listed(invoke, "--since", "2999-01-01") == []
    assert listed(invoke, "--status", "discarded") == []
    assert listed(invoke, "--route", "performance") == []
    limited = invoke("failed", "list", "--json", "--limit", "1")
    assert len(json.loads(limited.stdout)) == 1
    assert "showing the 1 most recent of 4" in limited.stderr


def test_list_for_people_shows_a_table_with_the_error(
    invoke: Invoke, parked: dict[str, int]
) -> None:
    result = invoke("failed", "list")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "ID",
        "STATUS",
        "ROUTE",
        "CONTRACT",
        "FIRST",
        "FAILED",
        "(UTC)",
        "ATT",
        "GROUP",
    ]
    assert "ContractViolation: /LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG (line 51)" in result.stdout
    assert "HostileInput: prolog, column 1 (line 2): found '<!DOCTYPE'" in result.stdout


def test_bad_options_are_usage_errors(invoke: Invoke, parked: dict[str, int]) -> None:
    assert invoke("failed", "list", "--since", "yesterday").exit_code == 2
    assert invoke("failed", "list", "--group", "xyz").exit_code == 2
    assert invoke("failed", "list", "--status", "lost").exit_code == 2


def test_groups_show_one_line_per_problem(invoke: Invoke, parked: dict[str, int]) -> None:
    result = invoke("failed", "groups", "--json")

    assert result.exit_code == 0, result.output
    groups = json.loads(result.stdout)
    assert [g["count"] for g in groups] == [2, 1, 1]
    assert groups[0]["label"] == (
        "ContractViolation sap-idoc/LOIPRO01/1 at /LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG"
    )
    assert groups[0]["statuses"] == {"parked": 2}
    human = invoke("failed", "groups")
    assert groups[0]["fingerprint"] in human.stdout
    assert "parked 2" in human.stdout


def test_show_marks_the_offending_line_and_escapes_what_the_message_brings(
    invoke: Invoke, parked: dict[str, int], tmp_path: Path
) -> None:
    saved = tmp_path / "copy.xml"
    result = invoke("failed", "show", str(parked["charg"]), "--save", str(saved))

    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.startswith(f"Failed message {parked['charg']}: parked")
    assert "contract         sap-idoc/LOIPRO01/1" in out
    assert "orders           1000234" in out
    marked = [line for line in out.splitlines() if line.lstrip().startswith(">>")]
    assert len(marked) == 1
    assert "51" in marked[0]
    assert "<CHARG>G26L0042_RETEST</CHARG>" in marked[0]
    following = out.splitlines()[out.splitlines().index(marked[0]) + 1]
    assert "^ /LOIPRO01/IDOC/E1AFKOL/E1AFPOL/CHARG (line 51): found 'G26L0042_RETEST'" in following
    # A header from the message cannot clear the analyst's screen or reverse the text.
    assert "\x1b" not in out
    assert "\u202e" not in out
    assert "x-trace: evil\\x1b[2J\\u202eend" in out
    assert "failed: ContractViolation, attempt 1" in out
    assert saved.read_bytes() == BAD.read_bytes()


def test_show_json_and_unknown_ids(invoke: Invoke, parked: dict[str, int]) -> None:
    shown = invoke("failed", "show", str(parked["xxe"]), "--json")
    assert shown.exit_code == 0, shown.output
    detail = json.loads(shown.stdout)
    assert detail["id"] == parked["xxe"]
    assert "<!DOCTYPE" in detail["body"]
    assert detail["revisions"] == []
    assert detail["history"][0]["event"] == "failed: HostileInput, attempt 1"

    missing = invoke("failed", "show", "9999")
    assert missing.exit_code == 1
    assert "no failed message 9999" in missing.stderr


def test_discard_needs_a_reason(invoke: Invoke, parked: dict[str, int], store: Store) -> None:
    without = invoke("failed", "discard", str(parked["xxe"]))
    assert without.exit_code == 2
    assert "Missing option '--reason'" in without.stderr
    blank = invoke("failed", "discard", str(parked["xxe"]), "--reason", "   ")
    assert blank.exit_code == 2
    assert "give the reason" in blank.stderr
    assert _status(store, parked["xxe"]) is FailureStatus.PARKED
    assert list(audit_entries(store.engine)) == []


def test_discard_is_audited_and_final(invoke: Invoke, parked: dict[str, int], store: Store) -> None:
    before = datetime.now(UTC)
    result = invoke(
        "failed", "discard", str(parked["xxe"]), "--reason", "attack probe, reported to IT security"
    )

    assert result.exit_code == 0, result.output
    assert f"{parked['xxe']}: discarded (audit entry 1)" in result.stdout
    assert _status(store, parked["xxe"]) is FailureStatus.DISCARDED
    (entry,) = [e for e in audit_entries(store.engine) if e.action.value == "discard"]
    assert entry.subject == f"failed_message:{parked['xxe']}"
    assert entry.reason == "attack probe, reported to IT security"
    assert entry.actor
    assert entry.recorded_at >= before

    again = invoke("failed", "discard", str(parked["xxe"]), "--reason", "twice")
    assert again.exit_code == 1
    assert "it is discarded; only a parked message can be discarded" in again.stderr
    replay = invoke(
        "failed", "replay", str(parked["xxe"]), "--reason", "r", "--broker", UNREACHABLE_BROKER
    )
    assert replay.exit_code == 1
    assert "a discarded message is not replayed" in replay.stderr
    assert invoke("audit", "verify").exit_code == 0


def test_discard_a_group_and_report_unknown_ids(
    invoke: Invoke, parked: dict[str, int], store: Store
) -> None:
    group = str(next(i for i in listed(invoke) if i["id"] == parked["charg"])["fingerprint"])
    both = invoke("failed", "discard", "1", "--group", group, "--reason", "r")
    assert both.exit_code == 2
    neither = invoke("failed", "discard", "--reason", "r")
    assert neither.exit_code == 2

    result = invoke("failed", "discard", "--group", group, "--reason", "order cancelled in SAP")
    assert result.exit_code == 0, result.output
    assert _status(store, parked["charg"]) is FailureStatus.DISCARDED
    assert _status(store, parked["charg_again"]) is FailureStatus.DISCARDED
    assert _status(store, parked["truncated"]) is FailureStatus.PARKED

    mixed = invoke("failed", "discard", str(parked["truncated"]), "9999", "--reason", "r")
    assert mixed.exit_code == 1
    assert "9999: not discarded: no failed message with this id" in mixed.stderr
    assert _status(store, parked["truncated"]) is FailureStatus.DISCARDED


def test_replay_refuses_the_embedded_broker(invoke: Invoke, parked: dict[str, int]) -> None:
    result = invoke("failed", "replay", str(parked["charg"]), "--reason", "r")
    assert result.exit_code == 2
    assert "embedded broker lives inside" in result.stderr
    no_reason = invoke("failed", "replay", str(parked["charg"]), "--broker", UNREACHABLE_BROKER)
    assert no_reason.exit_code == 2


def test_an_edit_that_would_fail_again_keeps_nothing(
    invoke: Invoke, parked: dict[str, int], store: Store, tmp_path: Path
) -> None:
    still_bad = tmp_path / "still-bad.xml"
    still_bad.write_bytes(BAD.read_bytes().replace(b"G26L0042_RETEST", b"G26L0042_RETEST2"))

    result = invoke(
        "failed",
        "edit",
        str(parked["charg"]),
        "--file",
        str(still_bad),
        "--reason",
        "fix batch",
        "--broker",
        UNREACHABLE_BROKER,
    )

    assert result.exit_code == 1
    assert "would fail again; nothing kept" in result.stderr
    assert "E1AFPOL/CHARG (line 51): found 'G26L0042_RETEST2'" in result.stderr
    detail = FailedMessages(store.engine).get(parked["charg"])
    assert detail is not None
    assert detail.revisions == ()
    assert list(audit_entries(store.engine)) == []


def _status(store: Store, failure_id: int) -> FailureStatus:
    detail = FailedMessages(store.engine).get(failure_id)
    assert detail is not None
    return detail.summary.status


def test_an_unreachable_broker_changes_nothing(
    invoke: Invoke, parked: dict[str, int], store: Store
) -> None:
    result = invoke(
        "failed", "replay", str(parked["charg"]), "--reason", "r", "--broker", UNREACHABLE_BROKER
    )

    assert result.exit_code == 1, result.output
    assert "messages confirmed before this are recorded" in result.stderr
    assert _status(store, parked["charg"]) is FailureStatus.PARKED
    assert list(audit_entries(store.engine)) == []
