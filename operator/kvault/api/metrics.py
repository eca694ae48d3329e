"""Prometheus metrics of the data plane, in their own registry (the operator serves it on
its /metrics beside the controller's). Labelled by route pattern, never by item name, so
the series stay few and name nothing secret."""

from __future__ import annotations

import time

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

REQUESTS = Counter(
    "kvault_http_requests_total",
    "Data-plane requests by route pattern, method and status",
    ["route", "method", "status"],
    registry=REGISTRY,
)
SECONDS = Histogram(
    "kvault_http_request_seconds",
    "Data-plane request latency by route pattern",
    ["route"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
    registry=REGISTRY,
)

AUTH_FAILURES = Counter(
    "kvault_auth_failures_total",
    "Data-plane requests refused authentication (401), by reason (MissingToken is the SDKs' "
    "first, challenge request; the others are refused credentials)",
    ["reason"],
    registry=REGISTRY,
)
THROTTLED = Counter(
    "kvault_throttled_requests_total",
    "Data-plane requests refused with 429 by a rate limit, by limit (vault or principal)",
    ["limit"],
    registry=REGISTRY,
)

CONNECTIONS_OPEN = Gauge(
    "kvault_http_connections_open",
    "Data-plane connections open now (TLS handshakes under way included)",
    registry=REGISTRY,
)
CONNECTIONS_CLOSED = Counter(
    "kvault_http_connections_closed_total",
    "Data-plane connections kvault closed or refused, by reason: header_timeout, body_timeout, "
    "idle_timeout, tls_handshake_timeout, tls_handshake_failed, total_limit, client_limit, "
    "body_too_large (a declared Content-Length over the limit), malformed_request",
    ["reason"],
    registry=REGISTRY,
)


#: The series of each (route, method, status) once looked up (``labels()`` takes a lock and
#: checks its arguments every time; the children it returns are the same each time).
_SERIES: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
_SERIES_KEPT = 4096  # beyond: looked up each time (methods are the client's word)


def observe(request: web.Request, status: int, started: float) -> None:
    """Count one answered request (``started`` from ``time.perf_counter()``)."""
    resource = request.match_info.route.resource
    route = resource.canonical if resource is not None else "unmatched"
    method = request.method
    series = _SERIES.get((route, method, status))
    if series is None:
        series = (REQUESTS.labels(route, method, str(status)), SECONDS.labels(route))
        if len(_SERIES) < _SERIES_KEPT:
            _SERIES[route, method, status] = series
    series[0].inc()
    series[1].observe(time.perf_counter() - started)
