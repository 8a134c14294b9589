"""The dashboard at ``/dashboard``: server-rendered pages for people (docs/dashboard.md).

* :mod:`~headcount.http.dashboard.session` — the signed session cookie and CSRF tokens;
* :mod:`~headcount.http.dashboard.gate` — who is signed in; the guard of every page and form;
* :mod:`~headcount.http.dashboard.signin` — sign in, sign out, switch environment;
* :mod:`~headcount.http.dashboard.live` — the ids with most views now, one id's chart;
* :mod:`~headcount.http.dashboard.keys` — the signing keys;
* :mod:`~headcount.http.dashboard.web` — templates, headers, forms, static files.

Served where the System API is (role ``system``): it reads and changes the same things.
"""

from __future__ import annotations

from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from headcount.http.dashboard.gate import Gate
from headcount.http.dashboard.keys import key_routes
from headcount.http.dashboard.live import live_page_routes
from headcount.http.dashboard.signin import signin_routes
from headcount.http.dashboard.web import Templates, static_routes
from headcount.runtime import Runtime

__all__ = ["DASHBOARD_PATH", "dashboard_routes"]

DASHBOARD_PATH = "/dashboard"


def dashboard_routes(runtime: Runtime) -> list[BaseRoute]:
    gate = Gate(runtime, Templates())

    async def slash(request: object) -> Response:
        return RedirectResponse(DASHBOARD_PATH, status_code=308)

    return [
        *static_routes(),
        *signin_routes(gate),
        *key_routes(gate),
        *live_page_routes(gate),
        Route(DASHBOARD_PATH + "/", slash, methods=["GET"]),
    ]
