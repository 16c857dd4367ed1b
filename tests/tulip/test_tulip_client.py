"""TulipTablesClient against the fake Tulip over real HTTP (and httpx.MockTransport for races)."""

from __future__ import annotations

import base64
import re
import socket
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from zoneinfo import ZoneInfo

import httpx
import pytest
from tulip_testdata import KEY_ID, SECRET, TABLE, VirtualTime

from adapters.tulip import (
    FakeTulip,
    TulipAuthError,
    TulipRateLimited,
    TulipRecordRejected,
    TulipSettings,
    TulipTableNotFound,
    TulipTablesClient,
    UpsertOutcome,
    tulip_column,
)
from contracts.errors import (
    ConfigurationError,
    MappingError,
    MesbridgeError,
    PermanentError,
    TransientError,
)

MakeClient = Callable[..., TulipTablesClient]
Scripted = Callable[[list[httpx.Response]], tuple[TulipTablesClient, list[str]]]

ORDER = {
    "id": "000001000123",
    "ahvbb_material": "CRBN-0001",
    "ahvbb_quantity": Decimal("1250.500"),
    "ahvbb_unit": "kg",
    "ahvbb_phases": 4,
}


def _writes(fake: FakeTulip) -> list[tuple[str, int]]:
    return [(r.method, r.status) for r in fake.requests() if r.is_write]


# -- schema ---------------------------------------------------------------------------------


def test_column_ids_by_label_maps_visible_labels_to_internal_ids(make_client: MakeClient) -> None:
    assert make_client().column_ids_by_label() == {
        "ID": "id",
        "Material": "ahvbb_material",
        "Quantity": "ahvbb_quantity",
        "Unit": "ahvbb_unit",
        "Phases": "ahvbb_phases",
        "Scheduled Start": "ahvbb_start",
        "Status": "ahvbb_status",
    }  # "Old Quantity" is hidden (archived) and left out


def test_two_visible_columns_with_one_label_are_a_configuration_error() -> None:
    columns = [tulip_column("abc_qty", "Quantity"), tulip_column("xyz_qty", "Quantity")]
    with (
        FakeTulip(tables={"T": columns}) as fake,
        TulipTablesClient(fake.client_settings("T")) as client,
        pytest.raises(ConfigurationError) as caught,
    ):
        client.column_ids_by_label()
    (finding,) = caught.value.findings
    assert finding.where == "Tulip table T, label 'Quantity'"
    assert finding.value == "abc_qty, xyz_qty"


def test_an_unknown_table_is_table_not_found(make_client: MakeClient) -> None:
    client = make_client(table_id="NoSuchTable")
    with pytest.raises(TulipTableNotFound, match="'NoSuchTable' does not exist") as caught:
        client.column_ids_by_label()
    assert isinstance(caught.value, ConfigurationError)
    with pytest.raises(TulipTableNotFound):
        client.upsert_record(ORDER)  # GET record 404, then POST 404: the table is missing


# -- upsert ---------------------------------------------------------------------------------


def test_upsert_creates_then_leaves_an_unchanged_record_alone_then_updates(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    client = make_client()
    first = client.upsert_record(ORDER)
    assert first.outcome is UpsertOutcome.CREATED
    assert first.record_id == "000001000123"
    assert set(first.changed) == {"ahvbb_material", "ahvbb_quantity", "ahvbb_unit", "ahvbb_phases"}

    resend = client.upsert_record(ORDER)  # a redelivery after a crash
    assert resend.outcome is UpsertOutcome.UNCHANGED
    assert _writes(fake) == [("POST", 201)]  # no second write, no _updatedAt bump

    changed = client.upsert_record({**ORDER, "ahvbb_quantity": Decimal("1300.000")})
    assert changed.outcome is UpsertOutcome.UPDATED
    assert changed.changed == ("ahvbb_quantity",)
    assert _writes(fake) == [("POST", 201), ("PUT", 200)]

    (record,) = fake.records(TABLE)
    assert record["ahvbb_quantity"] == "1300.000"
    assert record["ahvbb_material"] == "CRBN-0001"


def test_an_update_leaves_columns_the_record_does_not_name(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    fake.seed_record(TABLE, {"id": ORDER["id"], "ahvbb_status": "IN PROGRESS", "ahvbb_unit": "g"})
    result = make_client().upsert_record(ORDER)
    assert result.outcome is UpsertOutcome.UPDATED
    (record,) = fake.records(TABLE)
    assert record["ahvbb_status"] == "IN PROGRESS"  # set by operators in Tulip, not ours
    assert record["ahvbb_unit"] == "kg"


def test_decimals_go_out_as_strings_with_the_number_format_header(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    client = make_client()
    client.upsert_record({**ORDER, "ahvbb_quantity": Decimal("0.100")})
    post = next(r for r in fake.requests() if r.method == "POST")
    assert post.body["ahvbb_quantity"] == "0.100"  # type: ignore[index]
    assert isinstance(post.body["ahvbb_quantity"], str)  # type: ignore[index]
    assert {r.number_format for r in fake.requests()} == {"decimal"}
    stored = client.get_record(ORDER["id"])  # type: ignore[arg-type]
    assert stored is not None
    assert stored["ahvbb_quantity"] == "0.100"
    assert stored["ahvbb_phases"] == 4


def test_a_float_is_refused_before_anything_is_sent(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    with pytest.raises(MappingError, match="cannot be sent without changing them") as caught:
        make_client().upsert_record({**ORDER, "ahvbb_quantity": 1250.5})
    assert caught.value.findings[0].where == "Tulip record 000001000123, column ahvbb_quantity"
    assert fake.requests() == []


def test_get_record_of_an_absent_record_is_none(make_client: MakeClient) -> None:
    assert make_client().get_record("404") is None


def test_record_ids_with_slashes_and_spaces_are_escaped_in_the_url(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    client = make_client()
    assert (
        client.upsert_record({"id": "A/B 7", "ahvbb_unit": "kg"}).outcome is UpsertOutcome.CREATED
    )
    assert client.upsert_record({"id": "A/B 7", "ahvbb_unit": "g"}).outcome is UpsertOutcome.UPDATED
    assert [r["id"] for r in fake.records(TABLE)] == ["A/B 7"]
    assert fake.requests()[-1].record_id == "A/B 7"


def test_a_datetime_is_stored_as_utc(make_client: MakeClient, fake: FakeTulip) -> None:
    start = datetime(2026, 6, 1, 8, 0, tzinfo=ZoneInfo("Europe/Berlin"))
    make_client().upsert_record({"id": "1", "ahvbb_start": start})
    assert fake.records(TABLE)[0]["ahvbb_start"] == "2026-06-01T06:00:00.000Z"


def test_a_resent_timestamp_in_another_offset_is_unchanged_once_the_schema_is_read(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    record = {"id": "1", "ahvbb_start": "2026-06-01T08:00:00+02:00"}  # as the transform writes it
    client = make_client()
    client.column_ids_by_label()
    assert client.upsert_record(record).outcome is UpsertOutcome.CREATED
    assert fake.records(TABLE)[0]["ahvbb_start"] == "2026-06-01T06:00:00.000Z"
    assert client.upsert_record(record).outcome is UpsertOutcome.UNCHANGED
    assert _writes(fake) == [("POST", 201)]


def test_without_the_schema_timestamps_compare_as_text_and_cost_a_write(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    record = {"id": "1", "ahvbb_start": "2026-06-01T08:00:00+02:00"}
    client = make_client()
    client.upsert_record(record)
    assert client.upsert_record(record).outcome is UpsertOutcome.UPDATED
    assert _writes(fake) == [("POST", 201), ("PUT", 200)]


def test_two_threads_upserting_one_order_end_with_one_record(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    clients = [make_client(), make_client()]
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(lambda client: client.upsert_record(ORDER), clients))
    # Whoever loses the race (409 on POST, or a later read) finds the same values: no write.
    assert sorted(r.outcome.value for r in results) == ["created", "unchanged"]
    assert len(fake.records(TABLE)) == 1
    assert [s for _, s in _writes(fake)].count(201) == 1


# -- rate limiting ------------------------------------------------------------------------


def test_a_429_retry_after_in_seconds_is_honoured(
    make_client: MakeClient, fake: FakeTulip, vtime: VirtualTime
) -> None:
    fake.fail_next(2, 429, retry_after="3", methods=["POST"])
    result = make_client(virtual=vtime).upsert_record(ORDER)
    assert result.outcome is UpsertOutcome.CREATED
    assert vtime.sleeps.count(3.0) == 2
    assert _writes(fake) == [("POST", 429), ("POST", 429), ("POST", 201)]


def test_a_429_retry_after_as_http_date_is_honoured(
    make_client: MakeClient, fake: FakeTulip, vtime: VirtualTime
) -> None:
    when = format_datetime(vtime.now() + timedelta(seconds=4), usegmt=True)
    fake.fail_next(1, 429, retry_after=when, methods=["POST"])
    assert make_client(virtual=vtime).upsert_record(ORDER).outcome is UpsertOutcome.CREATED
    assert vtime.sleeps == [pytest.approx(4.0)]


def test_a_429_without_retry_after_backs_off_exponentially(
    make_client: MakeClient, fake: FakeTulip, vtime: VirtualTime
) -> None:
    fake.fail_next(3, 429, methods=["POST"])
    make_client(virtual=vtime, backoff_s=0.25).upsert_record(ORDER)
    assert vtime.sleeps == [0.25, 0.5, 1.0]


def test_a_429_that_persists_is_transient_rate_limited(
    make_client: MakeClient, fake: FakeTulip, vtime: VirtualTime
) -> None:
    fake.fail_next(10, 429, retry_after="1", methods=["POST"])
    with pytest.raises(TulipRateLimited, match="still rate limited") as caught:
        make_client(virtual=vtime, max_retries=2).upsert_record(ORDER)
    assert isinstance(caught.value, TransientError)
    assert caught.value.retry_after_s == 1.0
    assert [s for _, s in _writes(fake)] == [429, 429, 429]


def test_a_long_retry_after_is_left_to_the_service_at_once(
    make_client: MakeClient, fake: FakeTulip, vtime: VirtualTime
) -> None:
    fake.fail_next(1, 429, retry_after="120", methods=["POST"])
    with pytest.raises(TulipRateLimited, match="asked to wait 120 s") as caught:
        make_client(virtual=vtime).upsert_record(ORDER)
    assert caught.value.retry_after_s == 120.0
    assert 120.0 not in vtime.sleeps
    assert _writes(fake) == [("POST", 429)]


def test_the_client_holds_ten_writes_per_second_against_the_fake_limit(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    """Real time, ~1.9 s: 20 creates from two threads sharing one client (2 requests each)."""
    client = make_client()

    def create(first: int) -> None:
        for index in range(first, first + 10):
            client.upsert_record({"id": f"R{index:03}", "ahvbb_unit": "kg"})

    with ThreadPoolExecutor(max_workers=2) as pool:
        for done in [pool.submit(create, 0), pool.submit(create, 10)]:
            done.result()  # re-raises what a thread raised

    writes = [r for r in fake.requests() if r.is_write]
    assert [r.status for r in writes] == [201] * 20  # the fake never had to say 429
    assert len(fake.records(TABLE)) == 20
    arrivals = sorted(r.at for r in writes)
    # No 11 writes inside one second (50 ms allowed for thread scheduling on the server side).
    assert min(b - a for a, b in zip(arrivals, arrivals[10:], strict=False)) >= 0.95
    assert arrivals[-1] - arrivals[0] >= 1.85


def test_the_fake_limit_is_real_so_the_test_above_can_fail(make_client: MakeClient) -> None:
    fast = make_client(writes_per_second=1000.0, max_retries=0)

    def flood() -> None:
        for index in range(40):
            fast.upsert_record({"id": f"F{index}"})

    with pytest.raises(TulipRateLimited) as caught:
        flood()
    assert caught.value.retry_after_s == 1.0


# -- failures -------------------------------------------------------------------------------


def test_5xx_is_retried_then_succeeds(
    make_client: MakeClient, fake: FakeTulip, vtime: VirtualTime
) -> None:
    fake.fail_next(2, 502, methods=["POST"])
    assert make_client(virtual=vtime).upsert_record(ORDER).outcome is UpsertOutcome.CREATED
    assert vtime.sleeps == [0.5, 1.0]


def test_5xx_that_persists_is_transient_after_bounded_retries(
    make_client: MakeClient, fake: FakeTulip, vtime: VirtualTime
) -> None:
    fake.fail_next(20, 503)
    with pytest.raises(TransientError, match="HTTP 503 after 4 attempt") as caught:
        make_client(virtual=vtime).upsert_record(ORDER)
    assert not isinstance(caught.value, TulipRateLimited)
    assert len(fake.requests()) == 4  # max_retries=3: 1 + 3
    assert vtime.sleeps == [0.5, 1.0, 2.0]


def test_wrong_secret_is_an_auth_error_that_does_not_show_the_secret(fake: FakeTulip) -> None:
    wrong = "Wrong-Secret-987"
    settings = fake.client_settings(TABLE, api_key_secret=wrong)
    with TulipTablesClient(settings) as client, pytest.raises(TulipAuthError) as caught:
        client.upsert_record(ORDER)
    message = str(caught.value)
    assert "HTTP 401" in message
    assert KEY_ID in message
    assert "MESBRIDGE_TULIP_API_KEY_SECRET" in message
    assert wrong not in message
    assert isinstance(caught.value, ConfigurationError)
    assert len(fake.requests()) == 1  # not retried


def test_403_is_an_auth_error_about_scopes(make_client: MakeClient, fake: FakeTulip) -> None:
    fake.fail_next(1, 403, body={"message": "missing scope tables:write"})
    with pytest.raises(TulipAuthError, match="lacks a scope"):
        make_client().column_ids_by_label()


def test_an_unknown_column_is_rejected_naming_record_and_column(make_client: MakeClient) -> None:
    with pytest.raises(TulipRecordRejected) as caught:
        make_client().upsert_record({**ORDER, "ahvbb_colour": "blue"})
    error = caught.value
    assert isinstance(error, PermanentError)
    assert "record 000001000123" in error.summary
    assert "HTTP 400" in error.summary
    assert "unknown column 'ahvbb_colour'" in error.summary
    (finding,) = error.findings
    assert finding.where == f"Tulip table {TABLE}, record 000001000123, column ahvbb_colour"
    assert finding.value == "blue"


def test_a_bad_value_is_rejected_naming_the_column(make_client: MakeClient) -> None:
    with pytest.raises(TulipRecordRejected) as caught:
        make_client().upsert_record({**ORDER, "ahvbb_phases": "four"})
    (finding,) = caught.value.findings
    assert finding.where.endswith("column ahvbb_phases")
    assert "invalid value 'four'" in finding.expected


def test_a_rejection_that_names_no_column_names_the_record(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    fake.fail_next(1, 422, body={"message": "record is too large"}, methods=["POST"])
    with pytest.raises(TulipRecordRejected, match="HTTP 422") as caught:
        make_client().upsert_record(ORDER)
    (finding,) = caught.value.findings
    assert finding.where == f"Tulip table {TABLE}, record 000001000123"
    assert "record is too large" in finding.expected


def test_a_timeout_is_transient_after_bounded_retries(
    make_client: MakeClient, fake: FakeTulip
) -> None:
    fake.delay_next(5, 2.0)
    client = make_client(timeout_s=0.2, max_retries=1, backoff_s=0.01)
    started = time.monotonic()
    with pytest.raises(TransientError, match="timed out") as caught:
        client.get_record("1")
    assert time.monotonic() - started < 1.5
    assert "after 2 attempt(s)" in str(caught.value)
    assert isinstance(caught.value.__cause__, httpx.TimeoutException)


def test_connection_refused_is_transient(vtime: VirtualTime) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = TulipSettings(
        base_url=f"http://127.0.0.1:{port}/api/v3",
        api_key_id=KEY_ID,
        api_key_secret=SECRET,
        table_id=TABLE,
    )
    with (
        TulipTablesClient(settings, clock=vtime.clock, sleep=vtime.sleep) as client,
        pytest.raises(TransientError, match="ConnectError") as caught,
    ):
        client.upsert_record(ORDER)
    assert vtime.sleeps == [0.5, 1.0, 2.0]
    assert SECRET not in str(caught.value)


def test_the_secret_is_in_no_error_text(
    make_client: MakeClient, fake: FakeTulip, vtime: VirtualTime
) -> None:
    errors: list[MesbridgeError] = []
    # (status, how many requests the client makes before giving up: 401/403 once, else 1 + 3)
    for status, requests in [(401, 1), (403, 1), (503, 4), (429, 4)]:
        fake.fail_next(requests, status)
        with pytest.raises(MesbridgeError) as caught:
            make_client(virtual=vtime).upsert_record(ORDER)
        errors.append(caught.value)
    with pytest.raises(MesbridgeError) as rejected:
        make_client().upsert_record({**ORDER, "nope": "x"})
    errors.append(rejected.value)
    fake.delay_next(1, 1.0)
    with pytest.raises(MesbridgeError) as timed_out:
        make_client(timeout_s=0.1, max_retries=0).get_record("1")
    errors.append(timed_out.value)

    encoded = base64.b64encode(f"{KEY_ID}:{SECRET}".encode()).decode()
    assert len(errors) == 6
    for error in errors:
        text = str(error) + repr(error.findings) + repr(error.__cause__)
        assert SECRET not in text
        assert encoded not in text


# -- httpx.MockTransport: races and odd answers ---------------------------------------------


def _scripted(answers: list[httpx.Response], seen: list[str]) -> httpx.MockTransport:
    script = iter(answers)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.method} {request.url.path}")
        return next(script)

    return httpx.MockTransport(handle)


@pytest.fixture
def mock_settings() -> TulipSettings:
    return TulipSettings(
        base_url="https://acme.tulip.co/api/v3",
        api_key_id=KEY_ID,
        api_key_secret=SECRET,
        table_id=TABLE,
    )


@pytest.fixture
def scripted(mock_settings: TulipSettings, vtime: VirtualTime) -> Iterator[Scripted]:
    clients: list[TulipTablesClient] = []

    def build(answers: list[httpx.Response]) -> tuple[TulipTablesClient, list[str]]:
        seen: list[str] = []
        client = TulipTablesClient(
            mock_settings,
            transport=_scripted(answers, seen),
            clock=vtime.clock,
            sleep=vtime.sleep,
            now=vtime.now,
        )
        clients.append(client)
        return client, seen

    yield build
    for client in clients:
        client.close()


STORED = {
    "id": ORDER["id"],
    "ahvbb_material": "CRBN-0001",
    "ahvbb_quantity": "1250.500",
    "ahvbb_unit": "kg",
    "ahvbb_phases": 4,
}
RECORD_PATH = f"/api/v3/tables/{TABLE}/records/000001000123"
RECORDS_PATH = f"/api/v3/tables/{TABLE}/records"


def test_created_by_someone_else_between_read_and_create(scripted: Scripted) -> None:
    client, seen = scripted(
        [httpx.Response(404), httpx.Response(409), httpx.Response(200, json=STORED)]
    )
    assert client.upsert_record(ORDER).outcome is UpsertOutcome.UNCHANGED
    assert seen == [f"GET {RECORD_PATH}", f"POST {RECORDS_PATH}", f"GET {RECORD_PATH}"]


def test_deleted_by_someone_else_between_read_and_update(scripted: Scripted) -> None:
    client, seen = scripted(
        [
            httpx.Response(200, json={**STORED, "ahvbb_unit": "g"}),
            httpx.Response(404),
            httpx.Response(404),
            httpx.Response(201, json=STORED),
        ]
    )
    assert client.upsert_record(ORDER).outcome is UpsertOutcome.CREATED
    assert seen == [
        f"GET {RECORD_PATH}",
        f"PUT {RECORD_PATH}",
        f"GET {RECORD_PATH}",
        f"POST {RECORDS_PATH}",
    ]


def test_a_record_that_keeps_flipping_is_transient_after_three_rounds(scripted: Scripted) -> None:
    client, seen = scripted([httpx.Response(404), httpx.Response(409)] * 3)
    with pytest.raises(TransientError, match="during each of 3 upsert rounds"):
        client.upsert_record(ORDER)
    assert len(seen) == 6


def test_a_non_json_answer_is_transient(scripted: Scripted) -> None:
    client, _ = scripted([httpx.Response(200, text="<html>proxy login</html>")])
    with pytest.raises(TransientError, match="not JSON"):
        client.get_record("1")


def test_a_redirect_is_a_configuration_error(scripted: Scripted) -> None:
    client, _ = scripted([httpx.Response(301, headers={"Location": "https://login.example/"})])
    with pytest.raises(ConfigurationError, match=re.escape("redirect to 'https://login.example/'")):
        client.column_ids_by_label()


def test_an_unexpected_4xx_is_permanent(scripted: Scripted) -> None:
    client, _ = scripted([httpx.Response(404), httpx.Response(413, text="too big")])
    with pytest.raises(
        PermanentError, match=re.escape("unexpected HTTP 413 (Tulip says: too big)")
    ):
        client.upsert_record(ORDER)


def test_basic_auth_and_headers_are_sent() -> None:
    captured: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        captured.append(request)
        return httpx.Response(200, json={"columns": []})

    settings = TulipSettings(
        base_url="https://acme.tulip.co/api/v3/",
        api_key_id=KEY_ID,
        api_key_secret=SECRET,
        table_id=TABLE,
    )
    with TulipTablesClient(settings, transport=httpx.MockTransport(handle)) as client:
        assert client.column_ids_by_label() == {}
    (request,) = captured
    assert str(request.url) == f"https://acme.tulip.co/api/v3/tables/{TABLE}"
    assert request.headers["X-Tulip-Number-Format"] == "decimal"
    expected = base64.b64encode(f"{KEY_ID}:{SECRET}".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"
