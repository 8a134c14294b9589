"""The subset of Mux's Monitoring API these counts answer (``/data/v1/monitoring``).

Served, with Mux's paths, parameters and ``{data, total_row_count, timeframe}`` envelopes (read
in mux-python's ``MonitoringApi`` models and mux-node's ``data.monitoring`` types):

- ``GET /data/v1/monitoring/metrics`` — one metric, ``current-concurrent-viewers``;
- ``GET /data/v1/monitoring/dimensions`` — the content ids Headcount keeps: ``video_id``,
  ``asset_id``, ``playback_id``, ``live_stream_id``;
- ``…/metrics/current-concurrent-viewers/timeseries`` (``filters[]``, ``timestamp``: start,
  default 30 minutes ago): one point a minute (Mux's are 5 s apart: Headcount keeps minutes),
  ``value`` and ``concurrent_viewers`` the views at the minute's end; the environment's, or one
  id's with ``filters[]=video_id:ID``;
- ``…/breakdown`` (``dimension``, default ``video_id``; ``filters[]``; ``order_by`` ``value`` |
  ``views`` | ``negative_impact`` | ``field``; ``order_direction``; ``timestamp``: now only) —
  the ids of the dimension being watched now;
- ``…/breakdown-timeseries`` (``dimension``, ``timeframe[]`` = [start, end], default the last
  5 minutes; ``limit`` ids per point, default 10) — the ids with most views now, minute by
  minute.

Decisions: "concurrent viewers" is Mux's CCV, which counts views (Headcount's ``views``);
``starting_up_viewers`` is 0 and ``negative_impact`` the row's rank (Headcount does not
measure start-up). Other metrics (rebuffering, failures, bitrate, start-up time) need
playback-quality data Headcount does not collect: 400 with the served list. Filters name
one of the four dimensions; ``!`` (exclude) and several filters are refused with 400.
Auth: the ``data:read`` permission, like ``/system/v1/live``.
"""

from __future__ import annotations

from typing import Any, Final

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from headcount.core.ids import ID_TYPES
from headcount.errors import BadRequest
from headcount.history.model import LiveDetail, Minute, iso_time
from headcount.http.system import caller, json_answer, with_challenge
from headcount.runtime import Runtime
from headcount.stores.control import DATA_READ

__all__ = ["BREAKDOWN_ROWS", "METRIC", "MONITORING_PATH", "monitoring_routes"]

MONITORING_PATH: Final = "/data/v1/monitoring"
METRIC: Final = "current-concurrent-viewers"
_DISPLAY: Final = {
    "video_id": "Video ID",
    "asset_id": "Asset ID",
    "playback_id": "Playback ID",
    "live_stream_id": "Live Stream ID",
}
BREAKDOWN_ROWS: Final = 100
_ORDER_BY: Final = ("negative_impact", "value", "views", "field")


def _int(params: QueryParams, name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    if not raw.isascii() or not raw.lstrip("-").isdigit() or len(raw) > 12:
        raise BadRequest(f"{name} must be an integer; got {raw[:40]!r}.")
    return int(raw)


def _metric(request: Request) -> None:
    metric = request.path_params["metric"]
    if metric != METRIC:
        raise BadRequest(f"Headcount serves only the metric {METRIC}; got {metric[:60]!r}.")


def _dimension(params: QueryParams) -> str:
    dimension = params.get("dimension", "video_id")
    if dimension not in ID_TYPES:
        raise BadRequest(
            f"dimension must be one of {', '.join(ID_TYPES)} (the ids Headcount keeps); "
            f"got {dimension[:40]!r}."
        )
    return dimension


def _filter(params: QueryParams) -> tuple[str, str] | None:
    filters = params.getlist("filters[]") + params.getlist("filters")
    if not filters:
        return None
    if len(filters) > 1 or filters[0].startswith("!"):
        raise BadRequest("Headcount answers one filter, dimension:value, without '!'.")
    dimension, colon, value = filters[0].partition(":")
    if not colon or dimension not in ID_TYPES or not value:
        raise BadRequest(
            f"A filter is dimension:value with a dimension among {', '.join(ID_TYPES)}; "
            f"got {filters[0][:80]!r}."
        )
    return dimension, value


def _point(minute: Minute) -> dict[str, Any]:
    return {
        "value": float(minute.views),
        "date": iso_time(minute.minute_start),
        "concurrent_viewers": minute.views,
    }


def _minutes(detail: LiveDetail, start: float, end: float) -> list[Minute]:
    return [m for m in detail.series if start <= m.minute_start + 59 and m.minute_start <= end]


def monitoring_routes(runtime: Runtime) -> list[BaseRoute]:
    history = runtime.history

    async def metrics(request: Request) -> Response:
        await caller(runtime.control, request, DATA_READ)
        now = int(runtime.clock())
        data = [{"name": METRIC, "display_name": "Current Concurrent Viewers (CCV)"}]
        return json_answer(200, {"data": data, "total_row_count": 1, "timeframe": [now, now]})

    async def dimensions(request: Request) -> Response:
        await caller(runtime.control, request, DATA_READ)
        now = int(runtime.clock())
        data = [{"name": n, "display_name": _DISPLAY[n]} for n in ID_TYPES]
        return json_answer(
            200, {"data": data, "total_row_count": len(data), "timeframe": [now, now]}
        )

    async def timeseries(request: Request) -> Response:
        token = await caller(runtime.control, request, DATA_READ)
        _metric(request)
        now = runtime.clock()
        start = _int(request.query_params, "timestamp", int(now) - 1800)
        chosen = _filter(request.query_params)
        environment_id = token.environment_id
        detail = (
            await history.environment(environment_id, now)
            if chosen is None
            else await history.detail(environment_id, chosen[0], chosen[1], now)
        )
        points = [_point(m) for m in _minutes(detail, start, now)]
        return json_answer(
            200, {"data": points, "total_row_count": None, "timeframe": [start, int(now)]}
        )

    async def breakdown(request: Request) -> Response:
        token = await caller(runtime.control, request, DATA_READ)
        _metric(request)
        params = request.query_params
        dimension = _dimension(params)
        _int(params, "timestamp", 0)  # checked; Headcount answers now
        order_by = params.get("order_by", "value")
        direction = params.get("order_direction", "desc")
        if order_by not in _ORDER_BY or direction not in ("asc", "desc"):
            raise BadRequest(
                f"order_by is one of {', '.join(_ORDER_BY)} and order_direction asc or desc."
            )
        chosen = _filter(params)
        now = runtime.clock()
        entries = await history.top(token.environment_id, dimension, BREAKDOWN_ROWS, 1, now)
        if chosen is not None:
            if chosen[0] != dimension:
                raise BadRequest("Headcount filters a breakdown by its own dimension only.")
            entries = [e for e in entries if e.id == chosen[1]]
        rows: list[dict[str, Any]] = [
            {
                "value": e.id,
                "negative_impact": rank,
                "metric_value": float(e.views),
                "display_value": e.id,
                "concurrent_viewers": e.views,
                "starting_up_viewers": 0,
            }
            for rank, e in enumerate(entries, 1)
        ]
        if order_by == "field":
            rows.sort(key=lambda r: str(r["value"]), reverse=direction == "desc")
        elif direction == "asc":
            rows.reverse()
        return json_answer(
            200, {"data": rows, "total_row_count": len(rows), "timeframe": [int(now), int(now)]}
        )

    async def breakdown_timeseries(request: Request) -> Response:
        token = await caller(runtime.control, request, DATA_READ)
        _metric(request)
        params = request.query_params
        dimension = _dimension(params)
        now = runtime.clock()
        frame = params.getlist("timeframe[]") or params.getlist("timeframe")
        # At most 12 digits, as every integer here: int() of thousands of digits raises.
        if frame and (
            len(frame) != 2 or not all(f.isascii() and f.isdigit() and len(f) <= 12 for f in frame)
        ):
            raise BadRequest("timeframe[] is two unix timestamps: start and end.")
        start, end = (int(frame[0]), int(frame[1])) if frame else (int(now) - 300, int(now))
        limit = _int(params, "limit", 10)
        if not 1 <= limit <= BREAKDOWN_ROWS:
            raise BadRequest(f"limit must be from 1 to {BREAKDOWN_ROWS}.")
        entries = await history.top(token.environment_id, dimension, limit, 1, now)
        by_minute: dict[float, list[dict[str, Any]]] = {}
        for entry in entries:
            detail = await history.detail(token.environment_id, dimension, entry.id, now)
            for m in _minutes(detail, start, end):
                by_minute.setdefault(m.minute_start, []).append(
                    {
                        "value": entry.id,
                        "metric_value": float(m.views),
                        "concurrent_viewers": m.views,
                        "starting_up_viewers": 0,
                    }
                )
        data = [
            {
                "date": iso_time(minute),
                "values": sorted(values, key=lambda v: -v["concurrent_viewers"]),
            }
            for minute, values in sorted(by_minute.items())
        ]
        return json_answer(
            200, {"data": data, "total_row_count": len(data), "timeframe": [start, end]}
        )

    base = MONITORING_PATH
    return [
        Route(base + "/metrics", with_challenge(metrics), methods=["GET"]),
        Route(base + "/dimensions", with_challenge(dimensions), methods=["GET"]),
        Route(base + "/metrics/{metric}/timeseries", with_challenge(timeseries), methods=["GET"]),
        Route(base + "/metrics/{metric}/breakdown", with_challenge(breakdown), methods=["GET"]),
        Route(
            base + "/metrics/{metric}/breakdown-timeseries",
            with_challenge(breakdown_timeseries),
            methods=["GET"],
        ),
    ]
