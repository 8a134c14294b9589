"""The cold paths (System API, health) — placeholder until the Foundation issue lands."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from headcount.runtime import Runtime


def system_app(runtime: Runtime) -> Any:
    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route("/healthz", health)])
