"""POST /ingest/tulip/events over real HTTP (uvicorn on loopback), on the in-process broker.

What is checked: the bearer token (401), the size cap (413, also for a chunked body), the
media type (415), the intake guard (400), contract and mapping (422 with findings), the
confirmed publish (202 only with the original bytes on a queue bound to ``<prefix>.in``),
and every way the broker can fail to take the event (503 with Retry-After, nothing on the
queue), then recovery on the next request. tests/http/test_tulip_ingest_rabbitmq.py runs the
same endpoint against RabbitMQ with connections cut under concurrent load.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry

from adapters.memory_broker import InMemoryBroker
from contracts.errors import ConfigurationError
from contracts.registry import ContractRegistry
from integration.broker import Envelope, PublishResult, QueueSpec, Topology
from integration.http import create_app
from integration.http.ingest import (
    TULIP_EVENTS_PATH,
    BrokerEventPublisher,
    EventPublisher,
    tulip_ingest_route,
)
from integration.intake import IntakeLimits
from integration.mapping_files import load_mapping_profile
from integration.metrics import Metrics
from integration.settings import Settings
from tests.http.conftest import Serve

TOKEN = "t0k-" + "9f8e7d6c5b4a3210" * 3
REGISTRY = ContractRegistry.load()
PROFILE = load_mapping_profile()


def event(event_id: str = "EV-0001", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "event": "completion",
        "version": "1",
        "event_id": event_id,
        "occurred_at": "2026-12-02T14:05:00+01:00",
        "station": "Granulation-1",
        "operator": "jdoe",
        "order_number": "600001",
        "phase": "0020",
        "final": True,
        "yield": {"material": "500001", "quantity": "120.000", "unit": "kg", "batch": "B26001"},
        "consumed": [{"material": "300010", "quantity": "12.500", "unit": "kg"}],
    }
    body.update(changes)
    return body


def encoded(data: object) -> bytes:
    return json.dumps(data, indent=1).encode("utf-8")


class Endpoint:
    """An ingest endpoint served over HTTP, its broker, and the queue bound to ``tulip.#``."""

    def __init__(self, serve: Serve, **options: Any) -> None:
        self.prefix = f"ing{uuid.uuid4().hex[:10]}"
        self.broker = InMemoryBroker(self.prefix)
        self.queue = f"{self.prefix}.tulip-events"
        self.exchange = f"{self.prefix}.in"
        self.broker.declare(
            Topology(
                inbound_exchange=self.exchange,
                outbound_exchange=f"{self.prefix}.out",
                dead_letter_exchange=f"{self.prefix}.dlx",
                parked_queue=f"{self.prefix}.parked",
                queues=(QueueSpec(name=self.queue, exchange=self.exchange, bindings=("tulip.#",)),),
            )
        )
        self.registry = CollectorRegistry()
        self.metrics = Metrics(
            self.registry, routes=["tulip.completion"], contracts=[], version="t"
        )
        self.publisher: EventPublisher = options.pop("publisher", None) or BrokerEventPublisher(
            self.broker
        )
        route = tulip_ingest_route(
            publisher=self.publisher,
            token=TOKEN,
            registry=REGISTRY,
            exchange=options.pop("exchange", self.exchange),
            profile=PROFILE,
            metrics=self.metrics,
            **options,
        )
        self.client = serve(
            create_app(metrics_registry=self.registry, checks=[], extra_routes=[route])
        )

    def post(
        self,
        body: bytes | Iterator[bytes],
        *,
        token: str | None = TOKEN,
        content_type: str = "application/json",
        scheme: str = "Bearer",
    ) -> httpx.Response:
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"{scheme} {token}".rstrip()
        return self.client.post(TULIP_EVENTS_PATH, content=body, headers=headers)

    def queued(self) -> list[Any]:
        taken = []
        while (delivery := self.broker.get(self.queue)) is not None:
            taken.append(delivery)
        return taken

    def count(self, result: str) -> float:
        value = self.registry.get_sample_value(
            "mesbridge_ingest_requests_total", {"result": result}
        )
        return value or 0.0


@pytest.fixture
def endpoint(serve: Serve) -> Endpoint:
    return Endpoint(serve)


def test_a_valid_event_is_on_the_queue_before_the_202(endpoint: Endpoint) -> None:
    body = encoded(event())

    response = endpoint.post(body)

    assert response.status_code == 202
    assert response.json() == {
        "status": "accepted",
        "event_id": "EV-0001",
        "contract": "tulip/completion/1",
    }
    [delivery] = endpoint.queued()
    assert delivery.body == body  # the original bytes, not a re-serialisation
    assert delivery.message_id == "EV-0001"
    assert delivery.routing_key == "tulip.completion"
    assert delivery.exchange == endpoint.exchange
    assert delivery.content_type == "application/json"
    assert endpoint.count("accepted") == 1


def test_sending_the_same_event_again_is_accepted_again_with_the_same_message_id(
    endpoint: Endpoint,
) -> None:
    body = encoded(event("EV-RETRY"))

    assert [endpoint.post(body).status_code for _ in range(2)] == [202, 202]
    assert [d.message_id for d in endpoint.queued()] == ["EV-RETRY", "EV-RETRY"]


@pytest.mark.parametrize(
    ("token", "scheme", "challenge"),
    [
        (None, "Bearer", 'Bearer realm="mesbridge"'),
        ("", "Bearer", 'Bearer realm="mesbridge"'),
        (TOKEN, "Basic", 'Bearer realm="mesbridge"'),
        (TOKEN[:-1] + "x", "Bearer", 'Bearer realm="mesbridge", error="invalid_token"'),
        (TOKEN + "x", "Bearer", 'Bearer realm="mesbridge", error="invalid_token"'),
    ],
)
def test_without_the_right_bearer_token_nothing_is_accepted(
    endpoint: Endpoint, token: str | None, scheme: str, challenge: str
) -> None:
    response = endpoint.post(encoded(event()), token=token, scheme=scheme)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == challenge
    assert response.json()["status"] == "unauthorized"
    assert endpoint.queued() == []
    assert endpoint.count("unauthorized") == 1


def test_the_token_is_never_logged_nor_echoed(
    endpoint: Endpoint, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = TOKEN[:-4] + "abcd"

    answers = [
        endpoint.post(encoded(event()), token=wrong),
        endpoint.post(encoded(event(quantity=1))),
        endpoint.post(encoded(event())),
    ]

    assert [a.status_code for a in answers] == [401, 422, 202]
    for secret in (TOKEN, wrong):
        assert all(secret not in a.text for a in answers)
        assert all(secret not in record.getMessage() for record in caplog.records)


def test_the_size_cap_is_checked_before_the_body_is_read(serve: Serve) -> None:
    endpoint = Endpoint(serve, limits=IntakeLimits(max_bytes=2000))
    body = encoded(event(station="S" * 3000))

    declared = endpoint.post(body)
    chunked = endpoint.post(iter([body[:1500], body[1500:]]))  # no Content-Length

    for response in (declared, chunked):
        assert response.status_code == 413
        assert response.json()["error"] == "OversizedMessage"
        assert "2,000 bytes" in response.json()["reason"]
    assert f"{len(body):,} bytes" in declared.json()["reason"]  # the declared size is named
    assert "more than 2,000 bytes" in chunked.json()["reason"]
    assert endpoint.queued() == []
    assert endpoint.count("too_large") == 2
    assert endpoint.post(encoded(event())).status_code == 202  # a normal event still passes


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/xml", "application/json; charset=latin-1", ""]
)
def test_only_json_is_taken(endpoint: Endpoint, content_type: str) -> None:
    response = endpoint.post(encoded(event()), content_type=content_type)

    assert response.status_code == 415
    assert endpoint.queued() == []


def test_json_with_a_charset_parameter_is_taken(endpoint: Endpoint) -> None:
    response = endpoint.post(encoded(event()), content_type="application/json; charset=UTF-8")

    assert response.status_code == 202


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"event": "completion",', "not well-formed JSON"),
        (b'{"event": "completion", "event": "completion"}', "duplicate key"),
        (b'{"event": "completion", "x": NaN}', "NaN is not a JSON number"),
        (b"", "empty"),
        (b"\xff\xfe{}", "UTF-"),
    ],
)
def test_malformed_json_is_400_with_the_reason(
    endpoint: Endpoint, body: bytes, reason: str
) -> None:
    response = endpoint.post(body)

    assert response.status_code == 400
    answer = response.json()
    assert answer["status"] == "refused"
    assert answer["error"] in {"MalformedInput", "HostileInput"}
    assert reason in answer["reason"]
    assert endpoint.queued() == []
    assert endpoint.count("malformed") == 1


def test_a_contract_violation_is_422_with_every_finding(endpoint: Endpoint) -> None:
    data = event(consumed=[{"material": "300010", "quantity": 12.5, "unit": "kg"}])
    del data["operator"]

    response = endpoint.post(encoded(data))

    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "ContractViolation"
    assert answer["reason"] == "does not satisfy tulip/completion/1 (2 problems)"
    assert answer["findings"] == [
        {
            "where": "$.operator",
            "value": None,
            "expected": "required property 'operator', missing",
            "line": None,
        },
        {
            "where": "$.consumed[0].quantity",
            "value": "12.5",
            "expected": "a JSON string",
            "line": None,
        },
    ]
    assert endpoint.queued() == []
    assert endpoint.count("invalid") == 1


def test_a_mapping_gap_is_422_before_anything_is_accepted(endpoint: Endpoint) -> None:
    data = event(consumed=[{"material": "300010", "quantity": "3", "unit": "lbs"}])

    response = endpoint.post(encoded(data))

    assert response.status_code == 422
    answer = response.json()
    assert answer["error"] == "MappingError"
    assert answer["message"] == "Tulip completion EV-0001"
    [finding] = answer["findings"]
    assert (finding["where"], finding["value"]) == ("/consumed/0/unit", "lbs")
    assert endpoint.queued() == []


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ([event("A"), event("B")], "one event per request: a JSON object, not a JSON array"),
        ({"event": "start", "version": "1"}, "no contract for a JSON object with event = 'start'"),
        ({"event": "completion", "version": 1}, "no contract for"),
    ],
)
def test_not_one_known_event_is_422(endpoint: Endpoint, data: object, reason: str) -> None:
    response = endpoint.post(encoded(data))

    assert response.status_code == 422
    assert reason in response.json()["reason"]
    assert endpoint.queued() == []


def test_only_post_is_served(endpoint: Endpoint) -> None:
    response = endpoint.client.get(TULIP_EVENTS_PATH, headers={"Authorization": f"Bearer {TOKEN}"})

    assert response.status_code == 405


def test_broker_unreachable_is_503_then_the_next_request_reconnects(endpoint: Endpoint) -> None:
    assert endpoint.post(encoded(event("EV-1"))).status_code == 202
    endpoint.broker.set_reachable(False)

    refused = [endpoint.post(encoded(event(f"EV-{n}"))) for n in (2, 3)]

    for response in refused:
        assert response.status_code == 503
        assert response.headers["retry-after"] == "5"
        answer = response.json()
        assert answer["status"] == "unavailable"
        assert "nothing was accepted" in answer["reason"]
        assert "memory://" not in response.text  # broker details stay in the log
    endpoint.broker.set_reachable(True)
    assert endpoint.post(encoded(event("EV-2"))).status_code == 202
    assert [d.message_id for d in endpoint.queued()] == ["EV-1", "EV-2"]
    assert (endpoint.count("accepted"), endpoint.count("unavailable")) == (2, 2)


def test_a_publisher_that_died_while_idle_is_replaced_within_the_request(
    endpoint: Endpoint,
) -> None:
    assert endpoint.post(encoded(event("EV-1"))).status_code == 202
    endpoint.broker.drop_connections()  # the link went down between two events

    assert endpoint.post(encoded(event("EV-2"))).status_code == 202
    assert [d.message_id for d in endpoint.queued()] == ["EV-1", "EV-2"]


def test_unroutable_is_503_and_nothing_is_claimed(serve: Serve) -> None:
    endpoint = Endpoint(serve, exchange="")  # the default exchange: no queue named tulip.*

    response = endpoint.post(encoded(event()))

    assert response.status_code == 503
    assert "unroutable" in response.json()["reason"]
    assert endpoint.queued() == []


def test_a_nack_is_503(endpoint: Endpoint) -> None:
    endpoint.broker.limit_queue(endpoint.queue, 0)

    response = endpoint.post(encoded(event()))

    assert response.status_code == 503
    assert "nacked" in response.json()["reason"]
    endpoint.broker.limit_queue(endpoint.queue, None)
    assert endpoint.post(encoded(event())).status_code == 202


class _StuckPublisher:
    """Holds the first publish until released: a broker that does not confirm."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def publish_batch(
        self, envelopes: Sequence[Envelope], *, timeout_s: float = 30.0
    ) -> list[PublishResult]:
        self.entered.set()
        self.release.wait(10)
        return [PublishResult.CONFIRMED for _ in envelopes]

    def close(self) -> None:
        self.release.set()


class _StuckBroker:
    def __init__(self) -> None:
        self.publisher_stub = _StuckPublisher()

    def publisher(self) -> _StuckPublisher:
        return self.publisher_stub


def test_requests_waiting_behind_a_stuck_publish_get_503_in_bounded_time(serve: Serve) -> None:
    broker = _StuckBroker()
    publisher = BrokerEventPublisher(broker)  # type: ignore[arg-type]
    endpoint = Endpoint(serve, publisher=publisher, publish_timeout_s=0.3)
    first: list[int] = []
    thread = threading.Thread(
        target=lambda: first.append(endpoint.post(encoded(event("EV-1"))).status_code)
    )
    thread.start()
    assert broker.publisher_stub.entered.wait(5)

    waiting = endpoint.post(encoded(event("EV-2")))

    assert waiting.status_code == 503
    broker.publisher_stub.release.set()
    thread.join(5)
    assert first == [202]


def test_a_closed_publisher_answers_503(endpoint: Endpoint) -> None:
    endpoint.publisher.close()

    assert endpoint.post(encoded(event())).status_code == 503


@pytest.mark.parametrize("token", ["", "short", "x" * 31, "y" * 31 + " ", "z" * 31 + "é"])
def test_a_weak_or_unsendable_token_stops_start_up(token: str) -> None:
    with pytest.raises(ConfigurationError, match="tulip_ingest_token") as caught:
        tulip_ingest_route(
            publisher=BrokerEventPublisher(InMemoryBroker("weak")),
            token=token,
            registry=REGISTRY,
            exchange="x.in",
        )
    assert not token or token not in str(caught.value)


def test_the_token_setting_is_read_from_the_environment_and_never_shown() -> None:
    settings = Settings.load({"MESBRIDGE_TULIP_INGEST_TOKEN": TOKEN})

    assert settings.tulip_ingest_token == TOKEN
    assert TOKEN not in repr(settings)
    assert Settings().tulip_ingest_token == ""  # off unless set
