"""Metrics: every series exists at 0 from the start, increments show on /metrics,
label values outside the closed sets are refused, registries do not clash, docs list them all."""

from __future__ import annotations

import platform
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import prometheus_client
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from integration.http import create_app
from integration.metrics import (
    BATCH_SETTLE_BUCKETS,
    BATCH_SIZE_BUCKETS,
    END_TO_END_BUCKETS,
    PROCESSING_BUCKETS,
    Metrics,
    Outcome,
)
from tests.http.conftest import Serve

REPO = Path(__file__).resolve().parents[2]
ROUTES = ("sap.LOIPRO", "pasx.ProductionPerformance")
CONTRACTS = ("sap-idoc/LOIPRO01/1", "b2mml/ProductionSchedule/V0600")
VERSION = "0.1.0"

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _metrics(registry: CollectorRegistry) -> Metrics:
    return Metrics(registry, routes=ROUTES, contracts=CONTRACTS, version=VERSION)


def _key(name: str, **labels: str) -> tuple[str, frozenset[tuple[str, str]]]:
    return name, frozenset(labels.items())


def _scrape(client: httpx.Client) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"] == prometheus_client.CONTENT_TYPE_LATEST
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if not sample.name.endswith("_created"):  # creation timestamps, not values
                samples[_key(sample.name, **sample.labels)] = sample.value
    return samples


def _expected_at_start() -> Samples:
    """Every series the brief and DESIGN §5 ask for, written out by hand, with its start value."""
    expected: Samples = {}
    for route in ROUTES:
        expected[_key("mesbridge_messages_received_total", route=route)] = 0
        expected[_key("mesbridge_retries_total", route=route)] = 0
        expected[_key("mesbridge_consumer_errors_total", route=route)] = 0
        expected[_key("mesbridge_pipeline_worker_deaths_total", route=route)] = 0
        for outcome in ("ok", "duplicate", "retried", "parked"):
            expected[_key("mesbridge_messages_processed_total", route=route, outcome=outcome)] = 0
        for name, buckets in (
            ("mesbridge_processing_seconds", PROCESSING_BUCKETS),
            ("mesbridge_end_to_end_seconds", END_TO_END_BUCKETS),
        ):
            _add_histogram(expected, name, buckets, route=route)
    for contract, version in (
        ("sap-idoc/LOIPRO01", "1"),
        ("b2mml/ProductionSchedule", "V0600"),
        ("unknown", "unknown"),
    ):
        expected[
            _key("mesbridge_validation_failures_total", contract=contract, version=version)
        ] = 0
    expected[_key("mesbridge_outbox_backlog")] = 0
    expected[_key("mesbridge_parked_messages")] = 0
    for destination in ("amqp", "tulip"):
        for result in ("confirmed", "unroutable", "nacked", "failed"):
            expected[
                _key("mesbridge_outputs_published_total", destination=destination, result=result)
            ] = 0
    for component in ("broker", "database", "tulip"):
        expected[_key("mesbridge_connection_up", component=component)] = 0
    for result in (
        "accepted",
        "unauthorized",
        "too_large",
        "unsupported",
        "malformed",
        "invalid",
        "unavailable",
    ):
        expected[_key("mesbridge_ingest_requests_total", result=result)] = 0
    _add_histogram(expected, "mesbridge_batch_size", BATCH_SIZE_BUCKETS)
    _add_histogram(expected, "mesbridge_batch_settle_seconds", BATCH_SETTLE_BUCKETS)
    expected[_key("mesbridge_build_info", version=VERSION, python=platform.python_version())] = 1
    return expected


def _add_histogram(expected: Samples, name: str, buckets: tuple[float, ...], **labels: str) -> None:
    for bound in (*buckets, float("inf")):
        le = "+Inf" if bound == float("inf") else repr(bound)
        expected[_key(f"{name}_bucket", le=le, **labels)] = 0
    expected[_key(f"{name}_count", **labels)] = 0
    expected[_key(f"{name}_sum", **labels)] = 0


def test_buckets_span_the_ranges_asked_for() -> None:
    assert (PROCESSING_BUCKETS[0], PROCESSING_BUCKETS[-1]) == (0.00005, 5.0)
    assert (END_TO_END_BUCKETS[0], END_TO_END_BUCKETS[-1]) == (0.001, 60.0)
    assert (BATCH_SIZE_BUCKETS[0], BATCH_SIZE_BUCKETS[-1]) == (1.0, 1000.0)
    for buckets in (PROCESSING_BUCKETS, END_TO_END_BUCKETS, BATCH_SIZE_BUCKETS):
        assert list(buckets) == sorted(set(buckets))


def test_every_series_is_exported_at_zero_from_the_start(serve: Serve) -> None:
    registry = CollectorRegistry()
    _metrics(registry)

    samples = _scrape(serve(create_app(metrics_registry=registry, checks=[])))

    assert samples == _expected_at_start()


def test_metrics_reflects_every_kind_of_update(serve: Serve) -> None:
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    client = serve(create_app(metrics_registry=registry, checks=[]))

    metrics.received("sap.LOIPRO")
    metrics.received("sap.LOIPRO", count=99)
    metrics.processed("sap.LOIPRO", Outcome.OK, count=97)
    metrics.processed("sap.LOIPRO", Outcome.DUPLICATE)
    metrics.processed("pasx.ProductionPerformance", Outcome.PARKED)
    metrics.validation_failed("sap-idoc/LOIPRO01/1")
    metrics.validation_failed("unknown")
    metrics.validation_failed("unknown")
    metrics.observe_processing("sap.LOIPRO", 0.00007)
    metrics.observe_end_to_end("sap.LOIPRO", 0.02)
    metrics.set_outbox_backlog(12)
    metrics.set_parked(3)
    metrics.retried("sap.LOIPRO")
    metrics.published("amqp", "confirmed", count=5)
    metrics.published("tulip", "failed")
    metrics.set_connection("broker", True)
    metrics.set_connection("database", True)
    metrics.set_connection("database", False)
    metrics.batch_settled(100, 0.004)

    expected = _expected_at_start()
    changes = {
        _key("mesbridge_messages_received_total", route="sap.LOIPRO"): 100,
        _key("mesbridge_messages_processed_total", route="sap.LOIPRO", outcome="ok"): 97,
        _key("mesbridge_messages_processed_total", route="sap.LOIPRO", outcome="duplicate"): 1,
        _key(
            "mesbridge_messages_processed_total",
            route="pasx.ProductionPerformance",
            outcome="parked",
        ): 1,
        _key("mesbridge_validation_failures_total", contract="sap-idoc/LOIPRO01", version="1"): 1,
        _key("mesbridge_validation_failures_total", contract="unknown", version="unknown"): 2,
        _key("mesbridge_outbox_backlog"): 12,
        _key("mesbridge_parked_messages"): 3,
        _key("mesbridge_retries_total", route="sap.LOIPRO"): 1,
        _key("mesbridge_outputs_published_total", destination="amqp", result="confirmed"): 5,
        _key("mesbridge_outputs_published_total", destination="tulip", result="failed"): 1,
        _key("mesbridge_connection_up", component="broker"): 1,
        _key("mesbridge_connection_up", component="database"): 0,
        _key("mesbridge_processing_seconds_count", route="sap.LOIPRO"): 1,
        _key("mesbridge_processing_seconds_sum", route="sap.LOIPRO"): 0.00007,
        _key("mesbridge_end_to_end_seconds_count", route="sap.LOIPRO"): 1,
        _key("mesbridge_end_to_end_seconds_sum", route="sap.LOIPRO"): 0.02,
        _key("mesbridge_batch_size_count"): 1,
        _key("mesbridge_batch_size_sum"): 100,
        _key("mesbridge_batch_settle_seconds_count"): 1,
        _key("mesbridge_batch_settle_seconds_sum"): 0.004,
    }
    for name, route, bounds, value in (
        ("mesbridge_processing_seconds", "sap.LOIPRO", PROCESSING_BUCKETS, 0.00007),
        ("mesbridge_end_to_end_seconds", "sap.LOIPRO", END_TO_END_BUCKETS, 0.02),
        ("mesbridge_batch_size", None, BATCH_SIZE_BUCKETS, 100),
        ("mesbridge_batch_settle_seconds", None, BATCH_SETTLE_BUCKETS, 0.004),
    ):
        labels = {} if route is None else {"route": route}
        for bound in (*bounds, float("inf")):
            if bound >= value:
                le = "+Inf" if bound == float("inf") else repr(bound)
                changes[_key(f"{name}_bucket", le=le, **labels)] = 1
    assert set(changes) <= set(expected)  # every change is to a pre-initialised series
    expected.update(changes)

    assert _scrape(client) == pytest.approx(expected)
    # The bucket boundaries themselves: 70 µs is above 50 µs and within 100 µs.
    assert (
        registry.get_sample_value(
            "mesbridge_processing_seconds_bucket", {"route": "sap.LOIPRO", "le": "5e-05"}
        )
        == 0
    )
    assert (
        registry.get_sample_value(
            "mesbridge_processing_seconds_bucket", {"route": "sap.LOIPRO", "le": "0.0001"}
        )
        == 1
    )


def _calls_with_bad_labels(metrics: Metrics) -> list[tuple[Callable[[], None], str]]:
    return [
        (lambda: metrics.received("sap.MATMAS"), "route 'sap.MATMAS'"),
        (lambda: metrics.processed("sap.loipro", Outcome.OK), "route 'sap.loipro'"),
        (lambda: metrics.processed("sap.LOIPRO", "lost"), "outcome 'lost'"),  # type: ignore[arg-type]
        (
            lambda: metrics.validation_failed("sap-idoc/LOIPRO01/2"),
            "contract 'sap-idoc/LOIPRO01/2'",
        ),
        (lambda: metrics.validation_failed("sap-idoc/LOIPRO01"), "contract 'sap-idoc/LOIPRO01'"),
        (
            lambda: metrics.validation_failed("Element 'AUFNR': [facet 'maxLength'] ..."),
            "contract \"Element 'AUFNR'",
        ),
        (lambda: metrics.observe_processing("other", 0.1), "route 'other'"),
        (lambda: metrics.observe_end_to_end("", 0.1), "route ''"),
        (lambda: metrics.retried("sap.LOIPRO "), "route 'sap.LOIPRO '"),
        (lambda: metrics.published("kafka", "confirmed"), "destination 'kafka'"),
        (lambda: metrics.published("amqp", "timeout after 5 s"), "result 'timeout after 5 s'"),
        (lambda: metrics.set_connection("sap", True), "component 'sap'"),
        (lambda: metrics.received("sap.LOIPRO", count=-1), "count must be a whole number >= 0"),
        (lambda: metrics.received("sap.LOIPRO", count=True), "count must be a whole number"),
        (lambda: metrics.set_parked(-2), "found -2"),
        (lambda: metrics.set_outbox_backlog(1.5), "found 1.5"),  # type: ignore[arg-type]
        (lambda: metrics.observe_processing("sap.LOIPRO", -0.001), "duration must be finite"),
        (lambda: metrics.observe_end_to_end("sap.LOIPRO", float("nan")), "found nan"),
        (lambda: metrics.batch_settled(10, float("inf")), "found inf"),
        (lambda: metrics.batch_settled(-1, 0.1), "found -1"),
    ]


def test_values_outside_the_closed_sets_are_refused_and_record_nothing() -> None:
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    before = _samples_of(registry)

    calls = _calls_with_bad_labels(metrics)
    for call, named in calls:
        with pytest.raises(ValueError, match=r"^metrics: ") as refused:
            call()
        assert named in str(refused.value)

    assert _samples_of(registry) == before
    assert len(calls) == 20


def test_the_refusal_lists_what_is_allowed() -> None:
    metrics = _metrics(CollectorRegistry())

    expected = (
        "metrics: outcome 'lost' is not one of the closed set "
        "['duplicate', 'ok', 'parked', 'retried']"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        metrics.processed("sap.LOIPRO", "lost")  # type: ignore[arg-type]


def test_plain_strings_from_the_closed_sets_are_accepted() -> None:
    registry = CollectorRegistry()
    metrics = _metrics(registry)

    metrics.processed("sap.LOIPRO", "retried")  # type: ignore[arg-type]

    assert (
        registry.get_sample_value(
            "mesbridge_messages_processed_total", {"route": "sap.LOIPRO", "outcome": "retried"}
        )
        == 1
    )


@pytest.mark.parametrize(
    ("routes", "contracts", "message"),
    [
        (["sap.LOIPRO", ""], [], "a route name must be a non-empty string, found ''"),
        ("sap.LOIPRO", [], "routes must be a collection of names, found 'sap.LOIPRO'"),
        (
            [],
            ["sap-idoc/LOIPRO01"],
            "contract key 'sap-idoc/LOIPRO01' is not 'family/type/version'",
        ),
        ([], ["a/b/c/d"], "contract key 'a/b/c/d' is not"),
        ([], ["sap-idoc//1"], "contract key 'sap-idoc//1' is not"),
    ],
)
def test_the_closed_sets_themselves_are_checked(
    routes: list[str], contracts: list[str], message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Metrics(CollectorRegistry(), routes=routes, contracts=contracts, version=VERSION)


def test_two_metrics_on_two_registries_do_not_clash() -> None:
    first_registry, second_registry = CollectorRegistry(), CollectorRegistry()
    first, second = _metrics(first_registry), _metrics(second_registry)

    first.received("sap.LOIPRO", count=7)
    second.set_parked(4)

    labels = {"route": "sap.LOIPRO"}
    assert first_registry.get_sample_value("mesbridge_messages_received_total", labels) == 7
    assert second_registry.get_sample_value("mesbridge_messages_received_total", labels) == 0
    assert first_registry.get_sample_value("mesbridge_parked_messages") == 0
    assert second_registry.get_sample_value("mesbridge_parked_messages") == 4
    # Nothing leaked into prometheus_client's process-wide default registry.
    assert prometheus_client.REGISTRY.get_sample_value("mesbridge_parked_messages") is None


def test_a_second_metrics_on_the_same_registry_is_refused() -> None:
    registry = CollectorRegistry()
    _metrics(registry)

    with pytest.raises(ValueError, match="Duplicated timeseries"):
        _metrics(registry)


def test_every_exported_metric_is_documented_for_operators() -> None:
    registry = CollectorRegistry()
    _metrics(registry)
    suffix = {"counter": "_total", "info": "_info"}
    # Collected families omit the _total/_info suffix; the docs name the series as exported.
    exported = {family.name + suffix.get(family.type, "") for family in registry.collect()}
    docs = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")

    assert len(exported) == 16
    assert sorted(name for name in exported if f"`{name}`" not in docs) == []


def _samples_of(registry: CollectorRegistry) -> Samples:
    return {
        _key(sample.name, **sample.labels): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


def test_an_installation_without_tulip_exports_no_tulip_connection_series() -> None:
    registry = CollectorRegistry()
    metrics = Metrics(
        registry,
        routes=ROUTES,
        contracts=CONTRACTS,
        version=VERSION,
        components=["broker", "database"],
    )

    with pytest.raises(ValueError, match=r"component 'tulip' is not one of the closed set"):
        metrics.set_connection("tulip", True)
    metrics.set_connection("database", True)

    assert registry.get_sample_value("mesbridge_connection_up", {"component": "tulip"}) is None
    assert registry.get_sample_value("mesbridge_connection_up", {"component": "broker"}) == 0
    assert registry.get_sample_value("mesbridge_connection_up", {"component": "database"}) == 1


def test_components_must_come_from_the_closed_set() -> None:
    with pytest.raises(ValueError, match=r"component 'sap' is not one of the closed set"):
        Metrics(CollectorRegistry(), routes=[], contracts=[], version=VERSION, components=["sap"])
