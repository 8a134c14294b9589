"""``GET /metrics``: the runtime's counters, live-store gauges and the process's own metrics, in
Prometheus' text format, written by ``prometheus_client``.

The counters stay plain integers that the hot paths add to (:mod:`headcount.metrics`); a
custom collector turns them into metric families when the page is asked for, beside
``prometheus_client``'s process and platform collectors (CPU, memory, open files, Python). The
live store's gauges are read first (the store may be on the network), then handed to the
collector for that one page.

**Behind a token** (setting ``metrics_token``): the page then answers only a request with
``Authorization: Bearer <token>``, compared in constant time; anything else gets 401 with
Mux's envelope and ``WWW-Authenticate: Bearer``. Unset (the default), it is open, as exporters
usually are: keep the port private, or set the token where it is not.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, generate_latest
from prometheus_client.core import CollectorRegistry, Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from headcount.errors import Unauthorized, error_response
from headcount.runtime import Runtime

__all__ = ["CONTENT_TYPE", "metrics_routes"]

# The classic text format generate_latest writes (what every Prometheus server reads).
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


class _RuntimeCollector:
    """The runtime's counters, and the gauges of the page being written."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.gauges: list[tuple[str, str, float]] = []

    def collect(self) -> Iterator[Metric]:
        return self.runtime.metrics.families(self.gauges)


def metrics_routes(runtime: Runtime) -> list[BaseRoute]:
    collector = _RuntimeCollector(runtime)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)  # a Collector: it has collect()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    expected = runtime.settings.metrics_token.encode()

    async def metrics(request: Request) -> Response:
        if expected and not _bearer_matches(request.headers.get("authorization"), expected):
            status, body = error_response(
                Unauthorized("GET /metrics needs Authorization: Bearer <metrics_token>.")
            )
            return Response(
                body,
                status_code=status,
                media_type="application/json",
                headers={"www-authenticate": 'Bearer realm="Headcount metrics"'},
            )
        stats = await runtime.live.stats()
        collector.gauges = [
            (
                "headcount_live_views",
                "Views held by the live store (happening, paused, not started, ended).",
                stats.views,
            ),
            (
                "headcount_views_happening",
                "Views happening now, all environments.",
                stats.happening,
            ),
            (
                "headcount_live_updated_at_seconds",
                "Epoch seconds of the last sweep (the updated_at of /counts).",
                runtime.live.updated_at,
            ),
        ]
        text = generate_latest(registry)
        return Response(text, media_type=CONTENT_TYPE, headers={"cache-control": "no-store"})

    return [Route("/metrics", metrics, methods=["GET"])]


def _bearer_matches(header: str | None, expected: bytes) -> bool:
    scheme, _, given = (header or "").partition(" ")
    # compare_digest takes as long whatever the given token is: nothing to learn from timing.
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected)
