"""The path items of the reads of live counts and their history (``data:read``): Headcount's
own ``/system/v1/live`` (:mod:`headcount.http.live_api`) and Mux's Monitoring API subset
(:mod:`headcount.http.monitoring`). Part of :data:`~headcount.http.openapi_paths.PATHS`."""

from __future__ import annotations

from typing import Any, Final

from headcount.core.ids import ID_TYPES
from headcount.http.monitoring import BREAKDOWN_ROWS, METRIC, MONITORING_PATH
from headcount.http.openapi_operations import BASIC_AUTH, Operation, ok, operation
from headcount.http.openapi_schemas import ref
from headcount.http.system import DEFAULT_LIMIT, MAX_LIMIT

__all__ = ["DATA_PATHS", "DATA_TAG"]

DATA_TAG: Final = "Data"
_ERRORS: Final = (400, 401, 403, 503)
_NEEDS: Final = " Needs the `data:read` permission."


def _read(
    operation_id: str,
    summary: str,
    description: str,
    schema: str,
    parameters: list[dict[str, Any]] | None = None,
    errors: tuple[int, ...] = _ERRORS,
) -> Operation:
    return operation(
        operation_id,
        DATA_TAG,
        summary,
        description + _NEEDS,
        {200: ok(summary + ".", "application/json", ref(schema))},
        errors=errors,
        parameters=parameters,
        security=BASIC_AUTH,
    )


def _query(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description, "schema": schema}


_LIVE_PARAMETERS: Final = [
    _query("id_type", {"enum": list(ID_TYPES)}, "Only ids of this type (absent: every type)."),
    _query(
        "limit",
        {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
        "Ids per page.",
    ),
    _query(
        "page",
        {"type": "integer", "minimum": 1, "default": 1},
        "Page number; past the end the list is empty.",
    ),
]
_ID_PARAMETERS: Final = [
    {
        "name": "id_type",
        "in": "path",
        "required": True,
        "description": "One of the four id types; another answers 404.",
        "schema": {"type": "string"},
        "example": "video_id",
    },
    {
        "name": "id",
        "in": "path",
        "required": True,
        "description": "The id (it may hold `/`; at most 512 characters, longer answers 404).",
        "schema": {"type": "string"},
    },
]
_METRIC: Final = {
    "name": "metric",
    "in": "path",
    "required": True,
    "description": f"Headcount serves `{METRIC}`; any other metric answers 400.",
    "schema": {"type": "string"},
    "example": METRIC,
}
_FILTERS: Final = {
    **_query(
        "filters[]",
        {"type": "array", "items": {"type": "string"}, "maxItems": 1},
        "One filter `dimension:value` with one of the four id types as dimension (`!`, "
        "exclusion, and several filters answer 400). `filters` is read too.",
    ),
    "style": "form",
    "explode": True,
}
_DIMENSION: Final = _query(
    "dimension",
    {"enum": list(ID_TYPES), "default": "video_id"},
    "The id type to break down by; another answers 400.",
)
_TIMESTAMP: Final = _query(
    "timestamp",
    {"type": "integer", "minimum": -(10**11) + 1, "maximum": 10**12 - 1},
    "Epoch seconds.",
)

_MONITORING: Final = MONITORING_PATH + "/metrics/{metric}"

DATA_PATHS: Final[dict[str, dict[str, Operation]]] = {
    "/system/v1/live": {
        "get": _read(
            "listLive",
            "The ids with most views now",
            "Best first (most views, then most viewers, then id), with their peaks within "
            "`history_retention`; ids nobody watches are not listed.",
            "LiveList",
            _LIVE_PARAMETERS,
        )
    },
    "/system/v1/live/environment": {
        "get": _read(
            "getLiveEnvironment",
            "The environment's totals",
            "Every happening view of the environment, whatever its ids: now, peaks and one "
            "entry a minute.",
            "LiveDetail",
            errors=(401, 403, 503),
        )
    },
    "/system/v1/live/{id_type}/{id}": {
        "get": _read(
            "getLive",
            "One id now and its history",
            "Views and viewers now, the peaks and one entry a minute within "
            "`history_retention`. An id nobody watched reads 0 with an empty series.",
            "LiveDetail",
            _ID_PARAMETERS,
            errors=(401, 403, 404, 503),
        )
    },
    MONITORING_PATH + "/metrics": {
        "get": _read(
            "listMonitoringMetrics",
            "The monitoring metrics",
            f"Mux's `GET /data/v1/monitoring/metrics`: Headcount has one, `{METRIC}`.",
            "MonitoringList",
            errors=(401, 403, 503),
        )
    },
    MONITORING_PATH + "/dimensions": {
        "get": _read(
            "listMonitoringDimensions",
            "The monitoring dimensions",
            "Mux's `GET /data/v1/monitoring/dimensions`: the four id types Headcount keeps.",
            "MonitoringList",
            errors=(401, 403, 503),
        )
    },
    _MONITORING + "/timeseries": {
        "get": _read(
            "getMonitoringTimeseries",
            "Concurrent viewers, a point a minute",
            "From `timestamp` (default 30 minutes ago) to now, one point a minute (Mux's are "
            "5 s apart): the views at the minute's end, of the environment or of the one id "
            "the filter names. Mux's CCV counts views.",
            "MonitoringTimeseries",
            [_METRIC, _FILTERS, _TIMESTAMP],
        )
    },
    _MONITORING + "/breakdown": {
        "get": _read(
            "getMonitoringBreakdown",
            "The ids watched now",
            f"The ids of `dimension` being watched now (at most {BREAKDOWN_ROWS}), "
            "`negative_impact` their rank by views; `timestamp` is checked, the answer is "
            "always now. A filter must name the breakdown's own dimension.",
            "MonitoringBreakdown",
            [
                _METRIC,
                _DIMENSION,
                _FILTERS,
                _TIMESTAMP,
                _query(
                    "order_by",
                    {"enum": ["negative_impact", "value", "views", "field"], "default": "value"},
                    "`field` orders by id; the others by views.",
                ),
                _query(
                    "order_direction", {"enum": ["asc", "desc"], "default": "desc"}, "The order."
                ),
            ],
        )
    },
    _MONITORING + "/breakdown-timeseries": {
        "get": _read(
            "getMonitoringBreakdownTimeseries",
            "The ids with most views, minute by minute",
            "The `limit` ids of `dimension` with most views now, with their views each minute "
            "of `timeframe[]` (default the last 5 minutes).",
            "MonitoringBreakdownTimeseries",
            [
                _METRIC,
                _DIMENSION,
                {
                    **_query(
                        "timeframe[]",
                        {
                            "type": "array",
                            "items": {"type": "integer", "minimum": 0, "maximum": 10**12 - 1},
                            "minItems": 2,
                            "maxItems": 2,
                        },
                        "[start, end], epoch seconds. `timeframe` is read too.",
                    ),
                    "style": "form",
                    "explode": True,
                },
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": BREAKDOWN_ROWS, "default": 10},
                    "Ids per minute.",
                ),
            ],
        )
    },
}
