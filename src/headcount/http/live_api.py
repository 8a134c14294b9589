"""Headcount's own read of live counts and their history, under ``/system/v1/live``.

- ``GET /system/v1/live?id_type=&limit=&page=`` — the ids with most views now, best first
  (``id_type`` one of the four content id types; absent: all of them), paginated like the
  signing-keys list (``limit`` 1..100, default 25; ``page`` ≥ 1; ``{"data":[]}`` past the end);
- ``GET /system/v1/live/{id_type}/{id}`` — one id now, its peaks and its per-minute series;
  ``/system/v1/live/environment`` — the environment's totals (every happening view).

Access-token Basic auth with the ``data:read`` permission (403 without it, as Mux's Data API
answers a System-only token). Times are ``YYYY-MM-DDTHH:MM:SSZ``. See docs/history.md.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from headcount.core.ids import ID_TYPES
from headcount.errors import BadRequest, NotFound
from headcount.history.model import LiveDetail, LiveEntry, iso_time
from headcount.http.system import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    caller,
    json_answer,
    page_parameter,
    with_challenge,
)
from headcount.runtime import Runtime
from headcount.stores.control import DATA_READ

__all__ = ["LIVE_PATH", "detail_document", "entry_document", "live_routes"]

LIVE_PATH = "/system/v1/live"
_MAX_ID_LENGTH = 512


def entry_document(entry: LiveEntry) -> dict[str, Any]:
    return {
        "id_type": entry.id_type,
        "id": entry.id,
        "views": entry.views,
        "viewers": entry.viewers,
        "peak_views": entry.peak_views,
        "peak_viewers": entry.peak_viewers,
        "peak_views_at": iso_time(entry.peak_views_at),
        "peak_viewers_at": iso_time(entry.peak_viewers_at),
    }


def detail_document(detail: LiveDetail) -> dict[str, Any]:
    return {
        "id_type": detail.id_type,
        "id": detail.id,
        "views": detail.views,
        "viewers": detail.viewers,
        "updated_at": iso_time(detail.updated_at),
        "peak": {
            "views": detail.peak_views,
            "views_at": iso_time(detail.peak_views_at),
            "viewers": detail.peak_viewers,
            "viewers_at": iso_time(detail.peak_viewers_at),
        },
        "series": [
            {
                "minute": iso_time(m.minute_start),
                "views": m.views,
                "viewers": m.viewers,
                "max_views": m.max_views,
                "max_viewers": m.max_viewers,
            }
            for m in detail.series
        ],
    }


def _id_type(raw: str | None) -> str | None:
    if raw is None:
        return None
    if raw not in ID_TYPES:
        raise BadRequest(f"id_type must be one of {', '.join(ID_TYPES)}; got {raw[:40]!r}.")
    return raw


def live_routes(runtime: Runtime) -> list[BaseRoute]:
    async def top(request: Request) -> Response:
        token = await caller(runtime.control, request, DATA_READ)
        params = request.query_params
        id_type = _id_type(params.get("id_type"))
        limit = page_parameter(params, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        page = page_parameter(params, "page", 1, MAX_OFFSET)
        entries: list[LiveEntry] = []
        if (page - 1) * limit < MAX_OFFSET:
            entries = await runtime.history.top(
                token.environment_id, id_type, limit, page, runtime.clock()
            )
        return json_answer(200, {"data": [entry_document(e) for e in entries]})

    async def environment(request: Request) -> Response:
        token = await caller(runtime.control, request, DATA_READ)
        detail = await runtime.history.environment(token.environment_id, runtime.clock())
        return json_answer(200, {"data": detail_document(detail)})

    async def one(request: Request) -> Response:
        token = await caller(runtime.control, request, DATA_READ)
        id_type: str = request.path_params["id_type"]
        id_value: str = request.path_params["id"]
        if id_type not in ID_TYPES or not id_value or len(id_value) > _MAX_ID_LENGTH:
            raise NotFound()
        detail = await runtime.history.detail(
            token.environment_id, id_type, id_value, runtime.clock()
        )
        return json_answer(200, {"data": detail_document(detail)})

    return [
        Route(LIVE_PATH, with_challenge(top), methods=["GET"]),
        Route(LIVE_PATH + "/environment", with_challenge(environment), methods=["GET"]),
        Route(LIVE_PATH + "/{id_type}/{id:path}", with_challenge(one), methods=["GET"]),
    ]
