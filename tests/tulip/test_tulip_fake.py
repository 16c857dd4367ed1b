"""The fake Tulip itself, spoken to with plain httpx: the statuses and bodies the client uses."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import pytest
from tulip_testdata import KEY_ID, SECRET, TABLE

from adapters.tulip import FakeTulip, tulip_column


@pytest.fixture
def http(fake: FakeTulip) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=fake.base_url + "/",
        auth=(KEY_ID, SECRET),
        headers={"X-Tulip-Number-Format": "decimal"},
        timeout=5,
    ) as client:
        yield client


RECORDS = f"tables/{TABLE}/records"


def test_serves_on_loopback_with_an_ephemeral_port(fake: FakeTulip) -> None:
    parts = urlsplit(fake.base_url)
    assert parts.hostname == "127.0.0.1"
    assert parts.port not in (None, 0, 80)
    assert parts.path == "/api/v3"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "localhost", "::1", ""])
def test_refuses_to_bind_anything_but_ipv4_loopback(host: str) -> None:
    with pytest.raises(ValueError, match="loopback only"):
        FakeTulip(tables={}, host=host)


def test_another_loopback_address_works() -> None:
    with FakeTulip(tables={"T": []}, host="127.0.0.2") as server:
        assert urlsplit(server.base_url).hostname == "127.0.0.2"
        auth = (server.api_key_id, server.api_key_secret)
        assert httpx.get(server.base_url + "/tables/T", auth=auth).status_code == 200


def test_schema_has_the_id_column_first_then_the_given_columns(http: httpx.Client) -> None:
    response = http.get(f"tables/{TABLE}")
    assert response.status_code == 200
    columns = response.json()["columns"]
    assert columns[0]["name"] == "id"
    assert columns[0]["unique"] is True
    assert [c["name"] for c in columns[1:3]] == ["ahvbb_material", "ahvbb_quantity"]
    assert columns[2] == {
        "name": "ahvbb_quantity",
        "label": "Quantity",
        "description": "",
        "dataType": {"type": "float"},
        "hidden": False,
        "unique": False,
    }


def test_missing_or_wrong_credentials_are_401(fake: FakeTulip) -> None:
    url = fake.base_url + f"/tables/{TABLE}"
    anonymous = httpx.get(url)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
    assert httpx.get(url, auth=(KEY_ID, "wrong")).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Basic !!!"}).status_code == 401


def test_unknown_table_and_unknown_paths_are_404(http: httpx.Client) -> None:
    assert http.get("tables/Nope").status_code == 404
    assert http.get("tables/Nope/records/1").status_code == 404
    assert http.get(f"tables/{TABLE}/other").status_code == 404
    assert http.get("machines").status_code == 404


def test_create_answers_201_with_location_and_the_record(http: httpx.Client) -> None:
    response = http.post(RECORDS, json={"id": "1000123", "ahvbb_quantity": "1.50"})
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/v3/tables/{TABLE}/records/1000123"
    body = response.json()
    assert body["id"] == "1000123"
    assert body["ahvbb_quantity"] == "1.50"
    assert body["ahvbb_material"] is None  # every visible column, null when unset
    assert "ahvbb_old" not in body  # hidden columns are not shown
    assert body["_sequenceNumber"] == 1
    assert body["_createdAt"].endswith("Z")


def test_create_of_an_existing_id_is_409_and_changes_nothing(
    http: httpx.Client, fake: FakeTulip
) -> None:
    assert http.post(RECORDS, json={"id": "1", "ahvbb_unit": "kg"}).status_code == 201
    again = http.post(RECORDS, json={"id": "1", "ahvbb_unit": "g"})
    assert again.status_code == 409
    assert "already exists" in again.json()["message"]
    assert [r["ahvbb_unit"] for r in fake.records(TABLE)] == ["kg"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"ahvbb_unit": "kg"}, "must have an 'id'"),
        ({"id": ""}, "must have an 'id'"),
        ({"id": 5}, "invalid value 5 for column 'id'"),
        ({"id": "1", "nope": 1}, "unknown column 'nope'"),
        ({"id": "1", "ahvbb_quantity": "1,5"}, "column 'ahvbb_quantity'"),
        ({"id": "1", "ahvbb_quantity": "1e3"}, "column 'ahvbb_quantity'"),
        ({"id": "1", "ahvbb_phases": "3"}, "column 'ahvbb_phases'"),
        ({"id": "1", "ahvbb_start": "2026-01-01 06:00"}, "column 'ahvbb_start'"),
        (["not", "an", "object"], "JSON object"),
    ],
)
def test_bad_records_are_400_with_a_message(http: httpx.Client, body: object, message: str) -> None:
    response = http.post(RECORDS, json=body)
    assert response.status_code == 400
    assert message in response.json()["message"]


def test_update_changes_only_the_columns_sent(http: httpx.Client, fake: FakeTulip) -> None:
    http.post(RECORDS, json={"id": "1", "ahvbb_unit": "kg", "ahvbb_status": "RELEASED"})
    response = http.put(f"{RECORDS}/1", json={"ahvbb_unit": "g"})
    assert response.status_code == 200
    (record,) = fake.records(TABLE)
    assert (record["ahvbb_unit"], record["ahvbb_status"]) == ("g", "RELEASED")
    assert record["_updatedAt"] >= record["_createdAt"]


def test_update_of_a_missing_record_is_404(http: httpx.Client) -> None:
    assert http.put(f"{RECORDS}/404404", json={"ahvbb_unit": "g"}).status_code == 404


def test_update_with_a_different_id_in_the_body_is_400(http: httpx.Client) -> None:
    http.post(RECORDS, json={"id": "1"})
    assert http.put(f"{RECORDS}/1", json={"id": "2"}).status_code == 400


def test_numbers_are_strings_only_with_the_decimal_header(
    http: httpx.Client, fake: FakeTulip
) -> None:
    http.post(RECORDS, json={"id": "s", "ahvbb_quantity": "1.20"})
    http.post(RECORDS, json={"id": "n", "ahvbb_quantity": 1.20})
    as_decimal = http.get(f"{RECORDS}/s").json()["ahvbb_quantity"]
    as_float = httpx.get(
        fake.base_url + f"/tables/{TABLE}/records/s", auth=(KEY_ID, SECRET)
    ).json()["ahvbb_quantity"]
    assert as_decimal == "1.20"
    assert as_float == 1.2
    # A JSON number is read as a float, so its trailing zero is gone: why the client sends strings.
    assert http.get(f"{RECORDS}/n").json()["ahvbb_quantity"] == "1.2"


def test_list_limit_must_be_at_most_100(http: httpx.Client) -> None:
    assert http.get(RECORDS, params={"limit": 101}).status_code == 400
    assert http.get(RECORDS, params={"limit": 0}).status_code == 400
    assert http.get(RECORDS, params={"limit": "x"}).status_code == 400
    assert http.get(RECORDS, params={"limit": 100}).status_code == 200


def test_list_pages_and_filters(http: httpx.Client, fake: FakeTulip) -> None:
    for index in range(5):
        fake.seed_record(TABLE, {"id": f"R{index}", "ahvbb_unit": "kg" if index % 2 else "g"})
    page = http.get(RECORDS, params={"limit": 2, "offset": 1}).json()
    assert [r["id"] for r in page] == ["R1", "R2"]
    filters = json.dumps([{"field": "ahvbb_unit", "functionType": "equal", "arg": "kg"}])
    assert [r["id"] for r in http.get(RECORDS, params={"filters": filters}).json()] == ["R1", "R3"]
    bad = json.dumps([{"field": "ahvbb_unit", "functionType": "regex", "arg": "k"}])
    assert http.get(RECORDS, params={"filters": bad}).status_code == 400


def test_writes_beyond_ten_per_second_are_429_with_retry_after(http: httpx.Client) -> None:
    # The bucket refills while requests are in flight, so the 429 may come a little after the 10th.
    responses = [http.post(RECORDS, json={"id": f"W{i}"}) for i in range(30)]
    statuses = [r.status_code for r in responses]
    assert statuses[:10] == [201] * 10
    limited = next(r for r in responses if r.status_code == 429)
    assert limited.headers["Retry-After"] == "1"
    assert "rate limit" in limited.json()["message"]
    # reads have their own budget
    assert http.get(f"{RECORDS}/W0").status_code == 200


def test_the_write_limit_is_per_table() -> None:
    tables = {"A": [tulip_column("x", "X")], "B": [tulip_column("x", "X")]}
    with FakeTulip(tables=tables, write_limit_per_second=2) as server:
        auth = (server.api_key_id, server.api_key_secret)
        with httpx.Client(base_url=server.base_url + "/", auth=auth) as client:
            a = [client.post("tables/A/records", json={"id": str(i)}).status_code for i in range(3)]
            b = [client.post("tables/B/records", json={"id": str(i)}).status_code for i in range(2)]
    assert a == [201, 201, 429]
    assert b == [201, 201]


def test_fail_next_and_the_request_log(http: httpx.Client, fake: FakeTulip) -> None:
    fake.fail_next(2, 503, methods=["POST"])
    fake.fail_next(1, 429, retry_after="7")
    assert http.get(f"tables/{TABLE}").status_code == 429  # the 429 applies to any method
    first = http.post(RECORDS, json={"id": "1"})
    assert first.status_code == 503
    assert http.post(RECORDS, json={"id": "1"}).status_code == 503
    assert http.post(RECORDS, json={"id": "1"}).status_code == 201
    log = fake.requests()
    assert [(r.method, r.status) for r in log] == [
        ("GET", 429),
        ("POST", 503),
        ("POST", 503),
        ("POST", 201),
    ]
    assert log[-1].body == {"id": "1"}
    assert log[-1].table_id == TABLE
    assert log[-1].user == KEY_ID
    assert log[-1].number_format == "decimal"
    assert log[0].at <= log[-1].at
    assert SECRET not in repr(log)


def test_injected_429_carries_the_chosen_retry_after(http: httpx.Client, fake: FakeTulip) -> None:
    fake.fail_next(1, 429, retry_after="Mon, 04 May 2026 12:00:09 GMT")
    response = http.get(f"tables/{TABLE}")
    assert response.headers["Retry-After"] == "Mon, 04 May 2026 12:00:09 GMT"


def test_delete_record_and_seed_record(fake: FakeTulip, http: httpx.Client) -> None:
    fake.seed_record(TABLE, {"id": "X", "ahvbb_unit": "kg"})
    assert http.get(f"{RECORDS}/X").status_code == 200
    fake.delete_record(TABLE, "X")
    assert http.get(f"{RECORDS}/X").status_code == 404
    with pytest.raises(ValueError, match="unknown column"):
        fake.seed_record(TABLE, {"id": "Y", "nope": 1})
    assert fake.requests()[0].method == "GET"  # seeding is not logged
