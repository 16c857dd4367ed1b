"""The running service mounts POST /ingest/tulip/events when a token is set, and only then."""

from __future__ import annotations

import logging
from collections.abc import Callable

import httpx
import pytest

from integration.http.ingest import TULIP_EVENTS_PATH
from tests.http.test_tulip_ingest import TOKEN, encoded, event
from tests.service.conftest import Harness


def _post(harness: Harness, body: bytes) -> httpx.Response:
    assert harness.service.http is not None
    return httpx.post(
        f"http://127.0.0.1:{harness.service.http.port}{TULIP_EVENTS_PATH}",
        content=body,
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        trust_env=False,
        timeout=10.0,
    )


def test_an_accepted_event_reaches_the_service_through_its_inbound_exchange(
    make_service: Callable[..., Harness],
) -> None:
    harness = make_service(tulip_ingest_token=TOKEN)

    response = _post(harness, encoded(event("EV-SVC-1", plant="1000")))

    assert response.status_code == 202
    # Taken from the performance route's queue and settled (the route decides the outcome).
    harness.wait_for(lambda: harness.count("inbox") + harness.count("failed_message") == 1)
    assert harness.service.http is not None
    metrics = httpx.get(
        f"http://127.0.0.1:{harness.service.http.port}/metrics", trust_env=False
    ).text
    assert 'mesbridge_ingest_requests_total{result="accepted"} 1.0' in metrics


def test_without_a_token_the_endpoint_is_off_and_says_so(
    make_service: Callable[..., Harness], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mesbridge.service")
    harness = make_service()

    response = _post(harness, encoded(event()))

    assert response.status_code == 404
    assert any(
        "Tulip event ingest is off" in record.getMessage()
        and "MESBRIDGE_TULIP_INGEST_TOKEN" in record.getMessage()
        for record in caplog.records
    )
