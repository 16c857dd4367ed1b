"""The retry policy, its settings and the headers of a retry copy (integration/retry.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.amqp.fields import check_envelope
from contracts.errors import ConfigurationError, RetryLater
from integration.broker import Delivery
from integration.retry import (
    ATTEMPTS_HEADER,
    EXCHANGE_HEADER,
    FIRST_SEEN_HEADER,
    JITTER,
    LAST_ERROR_HEADER,
    ROUTING_KEY_HEADER,
    RetryPolicy,
    RetryState,
    delay_queue_name,
    delay_queues,
    describe_age,
    format_duration,
    parse_delays,
    parse_duration,
    retry_envelope,
    returned,
)
from integration.settings import Settings


@pytest.mark.parametrize(
    ("text", "ms"),
    [("5s", 5_000), ("0.2s", 200), ("200ms", 200), ("2m", 120_000), ("24h", 86_400_000),
     ("1d", 86_400_000), (" 30s ", 30_000), ("1.5m", 90_000)],
)  # fmt: skip
def test_durations_are_read_exactly_in_milliseconds(text: str, ms: int) -> None:
    assert parse_duration(text, what="retry_max_age") == ms


@pytest.mark.parametrize(
    ("text", "why"),
    [("5", "not a duration"), ("5 sec", "not a duration"), ("-5s", "not a duration"),
     ("0s", "out of range"), ("0.0005s", "finer than a millisecond"), ("50d", "out of range")],
)  # fmt: skip
def test_an_unusable_duration_names_the_setting_and_the_value(text: str, why: str) -> None:
    with pytest.raises(ConfigurationError, match=why) as caught:
        parse_duration(text, what="retry_delays")
    assert "setting retry_delays" in str(caught.value)
    assert repr(text) in str(caught.value)


def test_delays_are_a_comma_separated_list() -> None:
    assert parse_delays("5s,30s,2m,10m,30m", what="d") == (
        5_000,
        30_000,
        120_000,
        600_000,
        1_800_000,
    )
    with pytest.raises(ConfigurationError, match="no delays given"):
        parse_delays(" , ", what="retry_delays")


@pytest.mark.parametrize(
    ("ms", "label"), [(5_000, "5s"), (200, "200ms"), (1_500, "1500ms"), (120_000, "2m"),
                      (7_200_000, "2h"), (86_400_000, "1d"), (90_000, "90s")],
)  # fmt: skip
def test_delay_labels_are_exact(ms: int, label: str) -> None:
    assert format_duration(ms) == label
    assert parse_duration(label, what="x") == ms


def test_describe_age_reads_well() -> None:
    assert describe_age(800) == "0.8 s"
    assert describe_age(250_000) == "4 min 10 s"
    assert describe_age(94_000_000) == "26 h 6 min"


def test_max_attempts_counts_the_first_try() -> None:
    policy = RetryPolicy(delays_ms=(100, 200), max_attempts=4, max_age_ms=60_000)

    # Attempts 1..3 wait 100, 200, 200 ms (the last delay repeats); attempt 4 is the last.
    assert [policy.delay_after(n) for n in (1, 2, 3)] == [100, 200, 200]
    assert [policy.gives_up(n, age_ms=0) for n in (1, 2, 3, 4)] == [False, False, False, True]
    assert policy.stage_delays() == (100, 200)


def test_the_default_policy_is_the_first_try_and_one_retry_per_delay() -> None:
    policy = RetryPolicy()
    assert policy.max_attempts == len(policy.delays_ms) + 1
    assert policy.stage_delays() == policy.delays_ms
    assert [policy.gives_up(n, age_ms=0) for n in range(1, 7)] == [False] * 5 + [True]


def test_a_message_past_its_max_age_is_parked_whatever_its_attempts() -> None:
    policy = RetryPolicy(delays_ms=(100,), max_attempts=10, max_age_ms=1_000)
    assert not policy.gives_up(2, age_ms=1_000)
    assert policy.gives_up(2, age_ms=1_001)


def test_one_attempt_means_no_delay_queue() -> None:
    policy = RetryPolicy(delays_ms=(100, 200), max_attempts=1, max_age_ms=1_000)
    assert policy.gives_up(1, age_ms=0)
    assert delay_queues("mb.performance", policy) == ()


def test_expiration_is_jittered_around_the_stage_delay() -> None:
    policy = RetryPolicy(delays_ms=(10_000,), max_attempts=3, max_age_ms=60_000)
    rng = random.Random(7)
    drawn = [policy.expiration_ms(1, rng) for _ in range(500)]
    assert min(drawn) >= 10_000 * (1 - JITTER)
    assert max(drawn) <= 10_000 * (1 + JITTER)
    assert len(set(drawn)) > 100  # spread out, not one value


def test_delay_queues_dead_letter_to_the_route_queue_through_the_default_exchange() -> None:
    policy = RetryPolicy(delays_ms=(5_000, 30_000, 30_000), max_attempts=6, max_age_ms=60_000)

    specs = delay_queues("mb.performance", policy)

    assert [spec.name for spec in specs] == ["mb.performance.retry.5s", "mb.performance.retry.30s"]
    for spec, delay in zip(specs, (5_000, 30_000), strict=True):
        assert (spec.exchange, spec.bindings) == ("", ())
        assert (spec.dead_letter_exchange, spec.dead_letter_routing_key) == ("", "mb.performance")
        # The queue's TTL is only a ceiling above the jittered per-message expiration.
        assert spec.message_ttl_ms == round(delay * (1 + JITTER))


def test_policy_limits_are_refused() -> None:
    with pytest.raises(ConfigurationError, match="at least 1"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ConfigurationError, match="at least one"):
        RetryPolicy(delays_ms=())


def _delivery(**extra: object) -> Delivery:
    values: dict[str, object] = {
        "body": b"<x/>",
        "exchange": "mb.in",
        "routing_key": "pasx.ProductionPerformance",
        "delivery_tag": 7,
        "message_id": "PP-1",
        "content_type": "application/xml",
        "headers": {"x-custom": "kept"},
    }
    values.update(extra)
    return Delivery(**values)  # type: ignore[arg-type]


def test_a_retry_copy_keeps_the_message_and_records_the_attempt() -> None:
    policy = RetryPolicy(delays_ms=(1_000, 2_000), max_attempts=5, max_age_ms=60_000)
    first_seen = datetime(2025, 3, 14, 15, 0, 1, 250_000, tzinfo=UTC)
    error = RetryLater("order 4711 has not been received from SAP yet\n  - detail", message_ref="m")

    envelope = retry_envelope(
        _delivery(),
        route_queue="mb.performance",
        policy=policy,
        attempts=2,
        first_seen=first_seen,
        error=error,
        rng=random.Random(1),
    )

    assert (envelope.exchange, envelope.routing_key) == ("", "mb.performance.retry.2s")
    assert (envelope.body, envelope.message_id) == (b"<x/>", "PP-1")
    assert envelope.content_type == "application/xml"
    assert envelope.expiration_ms is not None
    assert 1_800 <= envelope.expiration_ms <= 2_200
    headers = envelope.headers
    assert headers["x-custom"] == "kept"
    assert headers[ATTEMPTS_HEADER] == 2
    assert headers[FIRST_SEEN_HEADER] == "2025-03-14T15:00:01.250000+00:00"
    assert headers[LAST_ERROR_HEADER] == "m: order 4711 has not been received from SAP yet"
    assert (headers[EXCHANGE_HEADER], headers[ROUTING_KEY_HEADER]) == (
        "mb.in",
        "pasx.ProductionPerformance",
    )


def test_the_last_error_header_is_cut_at_200_characters() -> None:
    error = RetryLater("x" * 500)
    envelope = retry_envelope(
        _delivery(),
        route_queue="q",
        policy=RetryPolicy(),
        attempts=1,
        first_seen=datetime.now(UTC),
        error=error,
        rng=random.Random(1),
    )
    assert len(envelope.headers[LAST_ERROR_HEADER]) == 200


def test_a_copy_drops_the_brokers_bookkeeping_and_keeps_where_it_first_came_from() -> None:
    came_back = _delivery(
        exchange="",
        routing_key="mb.performance",
        headers={
            "x-death": [{"reason": "expired"}],
            "x-first-death-queue": "mb.performance.retry.5s",
            "x-delivery-count": 1,
            EXCHANGE_HEADER: "mb.in",
            ROUTING_KEY_HEADER: "pasx.ProductionPerformance",
            ATTEMPTS_HEADER: 1,
            FIRST_SEEN_HEADER: "2025-03-14T15:00:00+00:00",
        },
    )

    restored = returned(came_back, "mb.performance")
    state = RetryState.of(restored)
    envelope = retry_envelope(
        restored,
        route_queue="mb.performance",
        policy=RetryPolicy(),
        attempts=state.attempts + 1,
        first_seen=state.first_seen or datetime.now(UTC),
        error=RetryLater("still no order"),
        rng=random.Random(1),
    )

    assert (restored.exchange, restored.routing_key) == ("mb.in", "pasx.ProductionPerformance")
    assert restored.delivery_tag == came_back.delivery_tag
    assert state == RetryState(attempts=1, first_seen=datetime(2025, 3, 14, 15, tzinfo=UTC))
    assert not any(
        key.startswith(("x-death", "x-first-death", "x-delivery")) for key in envelope.headers
    )
    assert envelope.headers[ATTEMPTS_HEADER] == 2
    assert envelope.headers[FIRST_SEEN_HEADER] == "2025-03-14T15:00:00+00:00"
    assert envelope.routing_key == delay_queue_name("mb.performance", 30_000)


def test_a_copy_can_be_published_whatever_headers_the_sender_used() -> None:
    odd = {
        "x-rate": 1.5,
        "x-amount": Decimal("12.345"),
        "x-raw": b"bytes",
        "x-local-time": datetime(2025, 3, 14, 15, 0, 0, 5),
        "x-nested": {"deep": [1.25, "ok"]},
        "x-huge": 2**70,
        "x-fine": datetime(2025, 3, 14, 15, tzinfo=UTC),
    }
    envelope = retry_envelope(
        _delivery(headers=odd),
        route_queue="q",
        policy=RetryPolicy(),
        attempts=1,
        first_seen=datetime.now(UTC),
        error=RetryLater("later"),
        rng=random.Random(1),
    )

    check_envelope(envelope)  # what the publisher checks before sending
    headers = envelope.headers
    assert (headers["x-rate"], headers["x-amount"], headers["x-raw"]) == ("1.5", "12.345", "bytes")
    assert headers["x-local-time"] == "2025-03-14T15:00:00.000005"
    assert headers["x-nested"] == {"deep": ["1.25", "ok"]}
    assert headers["x-huge"] == str(2**70)
    assert headers["x-fine"] == odd["x-fine"]


def test_only_a_delivery_back_from_a_delay_queue_is_restored() -> None:
    # Published normally, with look-alike headers: left as it came.
    normal = _delivery(headers={EXCHANGE_HEADER: "elsewhere", ROUTING_KEY_HEADER: "x.y"})
    assert returned(normal, "mb.performance") is normal


@pytest.mark.parametrize(
    ("headers", "state"),
    [({}, RetryState(attempts=0, first_seen=None)),
     ({ATTEMPTS_HEADER: "3"}, RetryState(attempts=3, first_seen=None)),
     ({ATTEMPTS_HEADER: "junk", FIRST_SEEN_HEADER: "yesterday"},
      RetryState(attempts=0, first_seen=None)),
     ({FIRST_SEEN_HEADER: "2025-03-14T15:00:00"}, RetryState(attempts=0, first_seen=None))],
)  # fmt: skip
def test_retry_state_reads_only_what_it_can_trust(
    headers: dict[str, object], state: RetryState
) -> None:
    assert RetryState.of(_delivery(headers=headers)) == state


# -- settings -------------------------------------------------------------------------


def test_settings_default_policy() -> None:
    assert Settings().retry_policy("performance") == RetryPolicy()


def test_environment_sets_the_policy_of_every_route() -> None:
    settings = Settings.load(
        {
            "MESBRIDGE_RETRY_DELAYS": "0.2s, 0.4s",
            "MESBRIDGE_RETRY_MAX_ATTEMPTS": "3",
            "MESBRIDGE_RETRY_MAX_AGE": "1h",
        }
    )
    expected = RetryPolicy(delays_ms=(200, 400), max_attempts=3, max_age_ms=3_600_000)
    assert settings.retry_policy("performance") == expected
    assert settings.retry_policy("process-order") == expected


def test_a_routes_table_overrides_one_route(tmp_path: Path) -> None:
    config = tmp_path / "mesbridge.toml"
    config.write_text(
        'retry_max_age = "2h"\n\n'
        '[routes.performance]\nretry_max_attempts = 10\nretry_delays = "1m"\n'
    )

    settings = Settings.load({}, config_file=config)
    settings.check_routes(["process-order", "performance"])

    assert settings.retry_policy("performance") == RetryPolicy(
        delays_ms=(60_000,), max_attempts=10, max_age_ms=7_200_000
    )
    assert settings.retry_policy("process-order") == RetryPolicy(max_age_ms=7_200_000)


def test_a_routes_table_for_an_unknown_route_is_refused_with_a_hint(tmp_path: Path) -> None:
    config = tmp_path / "mesbridge.toml"
    config.write_text("[routes.perfromance]\nretry_max_attempts = 10\n")
    settings = Settings.load({}, config_file=config)

    with pytest.raises(ConfigurationError, match=r"did you mean \[routes\.performance\]\?"):
        settings.check_routes(["process-order", "performance"])


def test_an_unknown_key_in_a_routes_table_is_refused_with_a_hint(tmp_path: Path) -> None:
    config = tmp_path / "mesbridge.toml"
    config.write_text("[routes.performance]\nretry_max_attempt = 10\n")

    with pytest.raises(ConfigurationError, match="did you mean retry_max_attempts"):
        Settings.load({}, config_file=config)


def test_a_bad_route_override_names_the_table(tmp_path: Path) -> None:
    config = tmp_path / "mesbridge.toml"
    config.write_text('[routes.performance]\nretry_max_age = "forever"\n')

    with pytest.raises(ConfigurationError, match=r"setting routes\.performance\.retry_max_age"):
        Settings.load({}, config_file=config)


def test_routes_cannot_come_from_the_environment() -> None:
    with pytest.raises(ConfigurationError, match=r"config file only.*\[routes\.<name>\]"):
        Settings.load({"MESBRIDGE_ROUTES": "performance"})


def test_a_bad_global_policy_stops_start_up() -> None:
    with pytest.raises(ConfigurationError, match="setting retry_delays: '5 sec'"):
        Settings.load({"MESBRIDGE_RETRY_DELAYS": "5s,5 sec"})
    with pytest.raises(ConfigurationError, match="at least 1"):
        Settings(retry_max_attempts=0)
