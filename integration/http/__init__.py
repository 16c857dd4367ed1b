"""The service's HTTP side: operations endpoints (``/healthz``, ``/readyz``, ``/metrics``)
served by uvicorn in a background thread. See ``docs/operations.md``."""

from integration.http.app import DEFAULT_CHECK_TIMEOUT_S, ReadinessCheck, create_app
from integration.http.server import HttpServer

__all__ = ["DEFAULT_CHECK_TIMEOUT_S", "HttpServer", "ReadinessCheck", "create_app"]
