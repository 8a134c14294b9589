"""``GET /metrics``: the runtime's counters plus live-store gauges, Prometheus text format."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from headcount.runtime import Runtime

__all__ = ["metrics_routes"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def metrics_routes(runtime: Runtime) -> list[BaseRoute]:
    async def metrics(request: Request) -> Response:
        stats = await runtime.live.stats()
        text = runtime.metrics.render(
            [
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
        )
        return Response(text, media_type=CONTENT_TYPE, headers={"cache-control": "no-store"})

    return [Route("/metrics", metrics, methods=["GET"])]
