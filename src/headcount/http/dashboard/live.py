"""The live pages: the environment's ids with most views now, and one id's per-minute chart.

*Decision — polling, not the counts stream.* The pages are server-rendered with the numbers of
the moment, then ``dashboard.js`` reads a JSON twin of the page every :data:`POLL_SECONDS`
(same origin, authenticated by the session cookie, ``no-store``). ``GET /counts/stream`` would
need a viewer token per id, minted server-side with a key of the dashboard's own, and it
pushes one known id per subscription, while this page's rows are *which* ids are on top,
changing as the audience moves, with their peaks and last hour: none of that is in the
stream. A poll every few seconds is one read of the history (O(rows)), works through any
proxy, and recovers from a restart or a network drop by itself.

Reading them needs the ``data:read`` permission, as ``/system/v1/live`` does. The reads are
``runtime.history`` (``headcount.history``), the same as the System API's
``/system/v1/live``; the sparklines are the last :data:`SPARK_MINUTES` minutes of each row's
series.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from headcount.core.ids import ID_TYPES
from headcount.errors import Forbidden, HeadcountError, NotFound, error_response
from headcount.history.model import LiveDetail, Minute
from headcount.http.dashboard.gate import Gate, PageHandler, Viewer
from headcount.http.dashboard.web import HEADERS
from headcount.stores.control import DATA_READ

__all__ = ["POLL_SECONDS", "ROWS", "SPARK_MINUTES", "live_page_routes"]

POLL_SECONDS = 5
ROWS = 20  # ids on the live page
SPARK_MINUTES = 60
_MAX_ID_LENGTH = 512
_UNKNOWN_ID_TYPE = f"There is no such id type: the id types are {', '.join(ID_TYPES)}."


def _minutes(series: list[Minute], last: int | None = None) -> list[list[float]]:
    """``[minute_start, views, viewers, max_views, max_viewers]`` per minute, oldest first."""
    chosen = series if last is None else series[-last:]
    return [[m.minute_start, m.views, m.viewers, m.max_views, m.max_viewers] for m in chosen]


def _last_hour(series: list[Minute], now: float) -> list[Minute]:
    """The last :data:`SPARK_MINUTES` minutes, the ones before the id's first recorded minute
    read 0 (a key's record begins when its counts first move from 0), so every sparkline
    spans the same hour."""
    first = (int(now // 60) - SPARK_MINUTES + 1) * 60.0
    kept = [m for m in series if m.minute_start >= first]
    start = kept[0].minute_start if kept else now // 60 * 60.0 + 60
    padding = int((start - first) // 60)
    return [Minute(first + 60.0 * i, 0, 0, 0, 0) for i in range(padding)] + kept


def _detail(detail: LiveDetail, last: int | None = None) -> dict[str, Any]:
    return {
        "id_type": detail.id_type,
        "id": detail.id,
        "views": detail.views,
        "viewers": detail.viewers,
        "updated_at": detail.updated_at,
        "peak_views": detail.peak_views,
        "peak_views_at": detail.peak_views_at,
        "peak_viewers": detail.peak_viewers,
        "peak_viewers_at": detail.peak_viewers_at,
        "series": _minutes(detail.series, last),
    }


def _error(exc: HeadcountError) -> Response:
    status, body = error_response(exc)
    return Response(body, status_code=status, media_type="application/json", headers=HEADERS)


def _id_type(request: Request) -> str | None:
    wanted = request.query_params.get("id_type", "")
    return wanted if wanted in ID_TYPES else None


def live_page_routes(gate: Gate) -> list[BaseRoute]:
    templates = gate.templates
    runtime = gate.runtime

    def reads(handler: PageHandler, as_json: bool = False) -> PageHandler:
        async def checked(request: Request, viewer: Viewer) -> Response:
            message = (
                "This access token cannot read live counts: that needs the data:read "
                "permission (`headcount access-tokens create --permission data:read`)."
            )
            if as_json:
                # What the page's script reads: errors in the APIs' envelope, not a page.
                try:
                    if not viewer.can(DATA_READ):
                        raise Forbidden(message)
                    return await handler(request, viewer)
                except HeadcountError as exc:
                    return _error(exc)
            if viewer.can(DATA_READ):
                return await handler(request, viewer)
            context = {"viewer": viewer, "title": "Live", "active": "live", "message": message}
            return templates.page("message.html", context, status=403)

        return checked

    async def rows(viewer: Viewer, id_type: str | None, now: float) -> list[LiveDetail]:
        top = await runtime.history.top(viewer.environment.id, id_type, ROWS, 1, now)
        return [
            await runtime.history.detail(viewer.environment.id, entry.id_type, entry.id, now)
            for entry in top
        ]

    async def home(request: Request, viewer: Viewer) -> Response:
        id_type = _id_type(request)
        now = runtime.clock()
        context = {
            "viewer": viewer,
            "title": "Live",
            "active": "live",
            "id_types": ID_TYPES,
            "id_type": id_type or "",
            "total": await runtime.history.environment(viewer.environment.id, now),
            "rows": await runtime.history.top(viewer.environment.id, id_type, ROWS, 1, now),
            "poll_seconds": POLL_SECONDS,
        }
        return templates.page("live.html", context)

    async def home_data(request: Request, viewer: Viewer) -> Response:
        now = runtime.clock()
        total = await runtime.history.environment(viewer.environment.id, now)
        document = {
            "environment": _detail(total, SPARK_MINUTES),
            "data": [
                {**_detail(detail), "series": _minutes(_last_hour(detail.series, now))}
                for detail in await rows(viewer, _id_type(request), now)
            ],
        }
        return JSONResponse(document, headers=HEADERS)

    def _key(request: Request) -> tuple[str, str] | None:
        id_type, id_value = request.path_params["id_type"], request.path_params["id"]
        if id_type not in ID_TYPES or not 0 < len(id_value) <= _MAX_ID_LENGTH:
            return None
        return id_type, id_value

    async def one(request: Request, viewer: Viewer) -> Response:
        key = _key(request)
        if key is None:
            return _unknown(viewer)
        detail = await runtime.history.detail(viewer.environment.id, *key, runtime.clock())
        context = {
            "viewer": viewer,
            "title": f"{key[0]} {key[1]}",
            "active": "live",
            "detail": detail,
            "poll_seconds": POLL_SECONDS,
        }
        return templates.page("id.html", context)

    async def one_data(request: Request, viewer: Viewer) -> Response:
        key = _key(request)
        if key is None:
            raise NotFound(_UNKNOWN_ID_TYPE)
        detail = await runtime.history.detail(viewer.environment.id, *key, runtime.clock())
        return JSONResponse(_detail(detail), headers=HEADERS)

    def _unknown(viewer: Viewer) -> Response:
        context = {
            "viewer": viewer,
            "title": "Not found",
            "active": "live",
            "message": _UNKNOWN_ID_TYPE,
        }
        return templates.page("message.html", context, status=404)

    return [
        Route("/dashboard", gate.page(reads(home)), methods=["GET"]),
        Route("/dashboard/live.json", gate.page(reads(home_data, True)), methods=["GET"]),
        Route("/dashboard/ids/{id_type}/{id:path}", gate.page(reads(one)), methods=["GET"]),
        Route(
            "/dashboard/data/{id_type}/{id:path}", gate.page(reads(one_data, True)), methods=["GET"]
        ),
    ]
