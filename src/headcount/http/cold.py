"""The cold paths as one Starlette app: System API, dashboard, metrics, health.

Each surface contributes a list of routes from its own module; this module only composes them
and maps every error (ours and Starlette's 404/405) to Mux's envelope.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headcount.errors import HeadcountError, StoreUnavailable, envelope, error_response
from headcount.http.dashboard import dashboard_routes
from headcount.http.live_api import live_routes
from headcount.http.metrics import metrics_routes
from headcount.http.monitoring import monitoring_routes
from headcount.http.pages import page_routes
from headcount.http.system import system_routes
from headcount.runtime import Runtime

__all__ = ["cold_app"]

_HTTP_TYPES = {404: "not_found", 405: "method_not_allowed", 400: "invalid_parameters"}


async def _headcount_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HeadcountError)
    status, body = error_response(exc)
    return Response(body, status_code=status, media_type="application/json")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error_type = _HTTP_TYPES.get(exc.status_code, "error")
    message = (
        "The requested resource either doesn't exist or you don't have access to it."
        if exc.status_code == 404
        else str(exc.detail)
    )
    return Response(
        envelope(error_type, message),
        status_code=exc.status_code,
        media_type="application/json",
        headers=exc.headers,
    )


def cold_app(runtime: Runtime) -> Starlette:
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def ready(request: Request) -> Response:
        # Liveness is /healthz (the process answers); readiness also needs the live store
        # (a node whose Redis does not answer, yet or any more, should get no traffic from a
        # balancer) and a node that is not shutting down.
        if runtime.shutting_down:
            raise StoreUnavailable("This node is shutting down; send traffic to another.")
        if runtime.live.ready:
            return JSONResponse({"status": "ready"})
        raise StoreUnavailable("The live store does not answer; this node is not ready.")

    routes: list[BaseRoute] = [
        Route("/healthz", health),
        Route("/readyz", ready),
        *metrics_routes(runtime),
        *page_routes(runtime),
    ]
    if runtime.settings.serves("system"):
        routes += system_routes(runtime)
        routes += live_routes(runtime)
        routes += monitoring_routes(runtime)
        routes += dashboard_routes(runtime)
    return Starlette(
        routes=routes,
        exception_handlers={HeadcountError: _headcount_error, HTTPException: _http_error},
    )
