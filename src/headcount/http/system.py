"""The System API — placeholder until the Foundation issue lands."""

from __future__ import annotations

from starlette.routing import BaseRoute

from headcount.runtime import Runtime


def system_routes(runtime: Runtime) -> list[BaseRoute]:
    return []
