"""TulipSettings refuse what cannot work and never show the secret."""

from __future__ import annotations

from typing import Any

import pytest

from adapters.tulip import TulipSettings
from contracts.errors import ConfigurationError

SECRET = "very-secret-value-123"


def _settings(**changes: Any) -> TulipSettings:
    values: dict[str, Any] = {
        "base_url": "https://acme.tulip.co/api/v3",
        "api_key_id": "apikey.2_abc",
        "api_key_secret": SECRET,
        "table_id": "Wk9rZGVycw",
    }
    values.update(changes)
    return TulipSettings(**values)


def test_the_secret_is_not_in_repr() -> None:
    settings = _settings()
    assert SECRET not in repr(settings)
    assert "apikey.2_abc" in repr(settings)


def test_api_root_has_exactly_one_trailing_slash() -> None:
    assert _settings().api_root == "https://acme.tulip.co/api/v3/"
    assert _settings(base_url="https://acme.tulip.co/api/v3//").api_root == (
        "https://acme.tulip.co/api/v3/"
    )


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080/api/v3", "http://localhost/api/v3", "http://[::1]:9/api/v3"]
)
def test_plain_http_is_allowed_on_loopback(url: str) -> None:
    assert _settings(base_url=url).base_url == url


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"base_url": "http://acme.tulip.co/api/v3"}, "clear text"),
        ({"base_url": "ftp://acme.tulip.co/api/v3"}, "not an http(s) URL"),
        ({"base_url": "acme.tulip.co"}, "not an http(s) URL"),
        ({"base_url": "https://u:p@acme.tulip.co/api/v3"}, "contains credentials"),
        ({"base_url": "https://acme.tulip.co/api/v3?x=1"}, "query or fragment"),
        ({"api_key_id": " "}, "api_key_id is empty"),
        ({"api_key_id": "apikey.2_a:b"}, "contains ':'"),
        ({"api_key_secret": ""}, "api_key_secret is empty"),
        ({"table_id": "Work Orders"}, "not a Tulip table id"),
        ({"table_id": "a/b"}, "not a Tulip table id"),
        ({"timeout_s": 0}, "timeout_s"),
        ({"writes_per_second": -1.0}, "writes_per_second"),
        ({"reads_per_second": float("inf")}, "reads_per_second"),
        ({"backoff_s": float("nan")}, "backoff_s"),
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": 1.5}, "max_retries"),
        ({"max_retry_after_s": -1}, "max_retry_after_s"),
    ],
)
def test_unusable_settings_are_configuration_errors(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(
        ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")
    ) as caught:
        _settings(**changes)
    assert SECRET not in str(caught.value)


def test_the_url_with_credentials_error_does_not_echo_them() -> None:
    with pytest.raises(ConfigurationError) as caught:
        _settings(base_url="https://apikey.2_x:hunter2@acme.tulip.co/api/v3")
    assert "hunter2" not in str(caught.value)
