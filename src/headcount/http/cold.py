"""The cold paths as one Starlette app: System API, dashboard, metrics, health, pages, the
OpenAPI document.

Each surface contributes a list of routes from its own module; this module only composes them
and maps every error (ours, Starlette's 404/405, and a bug's 500) to Mux's envelope.

A path with or without a trailing slash is answered where the other spelling has a route
(``/system/v1/signing-keys/`` lists the keys): Starlette's own way, a redirect, builds its
``Location`` from the request's ``Host`` header (``Host: evil.example.com`` got a 307 to
``http://evil.example.com/...``). Nothing here redirects to a host.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

from headcount.errors import HeadcountError, StoreUnavailable, envelope, error_response
from headcount.http.dashboard import dashboard_routes
from headcount.http.live_api import live_routes
from headcount.http.metrics import metrics_routes
from headcount.http.monitoring import monitoring_routes
from headcount.http.openapi import openapi_routes
from headcount.http.pages import page_routes
from headcount.http.system import system_routes
from headcount.runtime import Runtime

__all__ = ["cold_app"]

_HTTP_TYPES = {404: "not_found", 405: "method_not_allowed", 400: "invalid_parameters"}


async def _headcount_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HeadcountError)
    status, body = error_response(exc)
    return Response(body, status_code=status, media_type="application/json")


async def _internal_error(request: Request, exc: Exception) -> Response:
    # A bug: Starlette still re-raises it after this answer, and uvicorn logs it.
    status, body = error_response(HeadcountError("The server failed to answer the request."))
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
        *openapi_routes(),
    ]
    if runtime.settings.serves("system"):
        routes += system_routes(runtime)
        routes += live_routes(runtime)
        routes += monitoring_routes(runtime)
        routes += dashboard_routes(runtime)
    app = Starlette(
        routes=routes,
        exception_handlers={
            HeadcountError: _headcount_error,
            HTTPException: _http_error,
            Exception: _internal_error,  # Starlette's 500 would be text/plain
        },
    )
    _answer_both_spellings(app.router)
    return app


def _answer_both_spellings(router: Router) -> None:
    """No redirect for a trailing slash: the path is answered as the other spelling is (see
    the module's text). Costs nothing on a path that has a route: only a miss looks."""
    router.redirect_slashes = False
    not_found = router.default

    async def other_spelling(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if scope["type"] == "http" and path != "/":
            other = {**scope, "path": path.rstrip("/") if path.endswith("/") else path + "/"}
            if any(route.matches(other)[0] is not Match.NONE for route in router.routes):
                await router.app(other, receive, send)
                return
        await not_found(scope, receive, send)

    router.default = other_spelling
