"""connect_broker, broker URLs and password masking, AMQP topic matching: no broker needed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters.amqp import RabbitBroker, mask_url, topic_matches
from adapters.amqp.url import connection_parameters
from adapters.brokers import connect_broker
from adapters.memory_broker import InMemoryBroker
from contracts.errors import ConfigurationError


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("amqp://user:s3cret@host:5672/vh", "amqp://user:***@host:5672/vh"),
        ("amqps://user:p%40ss@host/", "amqps://user:***@host/"),
        ("amqp://user:pa:ss@host", "amqp://user:***@host"),
        ("amqp://user@host/", "amqp://user@host/"),
        ("amqp://host:5672/", "amqp://host:5672/"),
        ("amqp://us:er@pw@host:99999/", "amqp://us:***@host:99999/"),  # bad port: still masked
        ("weird://a:b@c?x=y#f", "weird://a:***@c?x=y#f"),
        ("a:b@c", "a:***@c"),
        ("memory://name", "memory://name"),
    ],
)
def test_mask_url_hides_the_password(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_amqp_urls_make_a_rabbitmq_broker_without_connecting() -> None:
    broker = connect_broker(
        "amqp://svc:hunter2@rabbit.invalid:5672/plant", connection_name="mesbridge-test"
    )

    assert isinstance(broker, RabbitBroker)
    assert "hunter2" not in repr(broker) and "hunter2" not in broker.url
    assert isinstance(connect_broker("amqps://svc:hunter2@rabbit.invalid/"), RabbitBroker)


def test_url_options_and_keyword_options_reach_pika() -> None:
    parameters = connection_parameters(
        "amqps://svc:pw@rabbit.invalid/plant%2Fa?heartbeat=30&connection_attempts=3",
        connection_name="mesbridge consumer q",
        connect_timeout_s=4.0,
    )

    assert (parameters.host, parameters.port, parameters.virtual_host) == (
        "rabbit.invalid",
        5671,
        "plant/a",
    )
    assert parameters.ssl_options is not None
    assert (parameters.heartbeat, parameters.connection_attempts) == (30, 3)
    assert (parameters.socket_timeout, parameters.stack_timeout) == (4.0, 4.0)
    assert parameters.client_properties == {"connection_name": "mesbridge consumer q"}


def test_memory_urls_make_the_in_process_broker() -> None:
    assert isinstance(connect_broker("memory://", connect_timeout_s=1.0), InMemoryBroker)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("kafka://user:hunter2@host/", r"scheme 'kafka' is not supported; use amqp://"),
        ("ampq://user:hunter2@host/", r"did you mean amqp://\?"),
        ("rabbit.example.com:5672", "no scheme"),
        ("memory://name/path", "expected memory:// or memory://NAME"),
        ("memory://user:hunter2@name", "expected memory:// or memory://NAME"),
        ("amqp://user:hunter2@host/?heartbeat=often", "cannot be used"),
        ("amqp://user:hunter2@/vhost", "no host name"),
    ],
)
def test_unusable_urls_are_configuration_errors_without_the_password(
    url: str, expected: str
) -> None:
    with pytest.raises(ConfigurationError, match=expected) as raised:
        connect_broker(url)

    assert "hunter2" not in str(raised.value)


@pytest.mark.parametrize(
    "options",
    [{"heartbeat_s": -1}, {"connect_timeout_s": "soon"}, {"blocked_connection_timeout_s": -5}],
)
def test_an_unusable_option_value_is_a_configuration_error(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="option refused") as raised:
        connect_broker("amqp://user:hunter2@host/", **options)

    assert "hunter2" not in str(raised.value)


def test_an_unknown_option_names_the_nearest_known_one() -> None:
    with pytest.raises(
        ConfigurationError, match=r"unknown option 'heartbeat'; did you mean 'heartbeat_s'"
    ):
        connect_broker("amqp://user:hunter2@host/", heartbeat=10)


# -- topic matching: the memory broker's router against the textbook definition ---------


def _reference(pattern: tuple[str, ...], key: tuple[str, ...]) -> bool:
    if not pattern:
        return not key
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return _reference(rest, key) or (bool(key) and _reference(pattern, key[1:]))
    return bool(key) and head in ("*", key[0]) and _reference(rest, key[1:])


_word = st.sampled_from(["a", "b", "sap", ""])
_pattern_word = st.sampled_from(["a", "b", "sap", "", "*", "#"])


@given(
    pattern=st.lists(_pattern_word, max_size=6),
    key=st.lists(_word, max_size=6),
)
def test_topic_matching_agrees_with_the_definition(pattern: list[str], key: list[str]) -> None:
    # The empty string is zero words, so a list of one empty word cannot be written.
    pattern_text, key_text = ".".join(pattern), ".".join(key)
    pattern_words = tuple(pattern) if pattern_text else ()
    key_words = tuple(key) if key_text else ()
    assert topic_matches(pattern_text, key_text) is _reference(pattern_words, key_words)


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("#", "", True),
        ("*", "", False),
        ("a..b", "a..b", True),
        ("a.*.b", "a..b", True),
        ("#.#.#.#.x", "a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y", False),
    ],
)
def test_topic_matching_edge_cases(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected
