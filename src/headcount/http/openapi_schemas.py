"""The shapes of Headcount's answers and bodies, as JSON Schema (2020-12, what OpenAPI 3.1 uses).

Each entry of :data:`SCHEMAS` becomes ``#/components/schemas/<name>`` of ``/openapi.json``
(:mod:`headcount.http.openapi`); operations refer to them with :func:`ref`. The suite checks
real answers against them (``tests/http/test_openapi.py``), so a schema here is a promise.
"""

from __future__ import annotations

from typing import Any, Final

from headcount.core.ids import ID_TYPES
from headcount.history.model import ENVIRONMENT
from headcount.http.collector import MAX_EVENTS, MAX_LISTED

__all__ = ["SCHEMAS", "ref"]

Schema = dict[str, Any]


def ref(name: str) -> Schema:
    assert name in SCHEMAS, f"no schema {name!r} in openapi_schemas.SCHEMAS"
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Schema], *, optional: tuple[str, ...] = ()) -> Schema:
    """An object with exactly these properties, all required but ``optional``."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def _data(inner: Schema) -> Schema:
    return _object({"data": inner})


_COUNT: Final[Schema] = {"type": "integer", "minimum": 0}
_STRING: Final[Schema] = {"type": "string"}
_EPOCH_STRING: Final[Schema] = {
    "type": "string",
    "pattern": "^[0-9]+$",
    "description": "Epoch seconds, as a string (as Mux writes it).",
}

_TIME: Final[Schema] = {
    "type": "string",
    "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
    "description": "UTC, whole seconds.",
}
_TIME_OR_NULL: Final[Schema] = {
    "anyOf": [_TIME, {"type": "null"}],
    "description": "When the peak was reached; null while it is 0.",
}
_ID_TYPE: Final[Schema] = {"enum": list(ID_TYPES)}
_DETAIL_ID_TYPE: Final[Schema] = {
    "enum": [*ID_TYPES, ENVIRONMENT],
    "description": f"`{ENVIRONMENT}` for the environment's totals (the id is its id).",
}
_EPOCH: Final[Schema] = {"type": "number", "description": "Epoch seconds."}
_EPOCH_OR_NULL: Final[Schema] = {"type": ["number", "null"], "description": "Epoch seconds."}
_TIMEFRAME: Final[Schema] = {
    "type": "array",
    "items": {"type": "integer"},
    "minItems": 2,
    "maxItems": 2,
    "description": "[start, end], epoch seconds.",
}


def _monitoring(row: Schema, *, total: Schema = _COUNT) -> Schema:
    """Mux's Monitoring envelope: rows, their number, the timeframe they cover."""
    return _object(
        {"data": {"type": "array", "items": row}, "total_row_count": total, "timeframe": _TIMEFRAME}
    )


_MONITORING_VALUE: Final[Schema] = _object(
    {
        "value": _STRING,
        "metric_value": {"type": "number", "minimum": 0},
        "concurrent_viewers": _COUNT,
        "starting_up_viewers": {"const": 0},
    }
)

SCHEMAS: Final[dict[str, Schema]] = {
    "Error": _object(
        {
            "error": _object(
                {
                    "type": {
                        "type": "string",
                        "description": "What went wrong: `invalid_parameters`, `unauthorized`, "
                        "`not_found`, `payload_too_large`, `service_unavailable`, and for a "
                        "refused viewer-counts token the reason (`expired_token`, "
                        "`unknown_key`, `invalid_signature`...).",
                    },
                    "messages": {"type": "array", "items": _STRING, "minItems": 1},
                }
            )
        }
    ),
    "Counts": _data(
        {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": _object(
                {
                    "views": _COUNT,
                    "viewers": _COUNT,
                    "updated_at": {
                        "type": "string",
                        "pattern": "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$",
                        "description": "When the counters were last brought up to date "
                        "(the last sweep), UTC, whole seconds.",
                    },
                }
            ),
        }
    ),
    "Beacon": {
        "type": "object",
        "description": "mux-embed's envelope. Event keys may be abbreviated the way mux-embed "
        "abbreviates them or spelled out; each event is checked on its own.",
        "properties": {
            "metadata": {"type": ["object", "null"]},
            "events": {"type": "array", "maxItems": MAX_EVENTS, "items": {}},
        },
        "required": ["events"],
    },
    "CollectorAnswer": _object(
        {
            "accepted": _COUNT,
            "rejected": {
                "type": "array",
                "maxItems": MAX_LISTED,
                "description": f"The first {MAX_LISTED} events refused, by index in `events`.",
                "items": _object({"index": _COUNT, "reason": _STRING}),
            },
            "rejected_total": {
                "type": "integer",
                "minimum": MAX_LISTED + 1,
                "description": f"How many events were refused, when more than {MAX_LISTED} were.",
            },
        },
        optional=("rejected_total",),
    ),
    "SigningKey": _object({"id": _STRING, "created_at": _EPOCH_STRING}),
    "SigningKeyCreated": _object(
        {
            "id": _STRING,
            "created_at": _EPOCH_STRING,
            "private_key": {
                "type": "string",
                "contentEncoding": "base64",
                "description": "Base64 of the PEM of the RSA private key. Returned once, "
                "never stored.",
            },
        }
    ),
    "SigningKeyAnswer": _data({"$ref": "#/components/schemas/SigningKey"}),
    "SigningKeyCreatedAnswer": _data({"$ref": "#/components/schemas/SigningKeyCreated"}),
    "SigningKeyList": _data(
        {"type": "array", "items": {"$ref": "#/components/schemas/SigningKey"}}
    ),
    "Whoami": _data(
        _object(
            {
                "access_token_name": _STRING,
                "environment_id": _STRING,
                "environment_name": _STRING,
                "environment_type": _STRING,
                "organization_id": _STRING,
                "organization_name": _STRING,
                "permissions": {"type": "array", "items": _STRING},
            }
        )
    ),
    "Health": _object({"status": {"const": "ok"}}),
    "Ready": _object({"status": {"const": "ready"}}),
    "WidgetManifest": _object(
        {
            "url": _STRING,
            "version": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
            "integrity": {"type": "string", "pattern": "^sha384-"},
        }
    ),
    "DemoToken": _object({"token": _STRING, "expires_at": _COUNT, "id": _STRING}),
    "LiveEntry": _object(
        {
            "id_type": _ID_TYPE,
            "id": _STRING,
            "views": _COUNT,
            "viewers": _COUNT,
            "peak_views": _COUNT,
            "peak_viewers": _COUNT,
            "peak_views_at": _TIME_OR_NULL,
            "peak_viewers_at": _TIME_OR_NULL,
        }
    ),
    "LiveList": _data({"type": "array", "items": {"$ref": "#/components/schemas/LiveEntry"}}),
    "LiveDetail": _data(
        _object(
            {
                "id_type": _DETAIL_ID_TYPE,
                "id": _STRING,
                "views": _COUNT,
                "viewers": _COUNT,
                "updated_at": _TIME,
                "peak": _object(
                    {
                        "views": _COUNT,
                        "views_at": _TIME_OR_NULL,
                        "viewers": _COUNT,
                        "viewers_at": _TIME_OR_NULL,
                    }
                ),
                "series": {
                    "type": "array",
                    "description": "One entry a minute, oldest first, within `history_retention`.",
                    "items": _object(
                        {
                            "minute": _TIME,
                            "views": _COUNT,
                            "viewers": _COUNT,
                            "max_views": _COUNT,
                            "max_viewers": _COUNT,
                        }
                    ),
                },
            }
        )
    ),
    "MonitoringList": _monitoring(_object({"name": _STRING, "display_name": _STRING})),
    "MonitoringTimeseries": _monitoring(
        _object(
            {"value": {"type": "number", "minimum": 0}, "date": _TIME, "concurrent_viewers": _COUNT}
        ),
        total={"type": "null"},
    ),
    "MonitoringBreakdown": _monitoring(
        _object(
            {
                "value": _STRING,
                "negative_impact": {"type": "integer", "minimum": 1},
                "metric_value": {"type": "number", "minimum": 0},
                "display_value": _STRING,
                "concurrent_viewers": _COUNT,
                "starting_up_viewers": {"const": 0},
            }
        )
    ),
    "MonitoringBreakdownTimeseries": _monitoring(
        _object({"date": _TIME, "values": {"type": "array", "items": _MONITORING_VALUE}})
    ),
    "DashboardDetail": _object(
        {
            "id_type": _DETAIL_ID_TYPE,
            "id": _STRING,
            "views": _COUNT,
            "viewers": _COUNT,
            "updated_at": _EPOCH,
            "peak_views": _COUNT,
            "peak_views_at": _EPOCH_OR_NULL,
            "peak_viewers": _COUNT,
            "peak_viewers_at": _EPOCH_OR_NULL,
            "series": {
                "type": "array",
                "description": "`[minute_start, views, viewers, max_views, max_viewers]` a "
                "minute, oldest first.",
                # Not prefixItems: schemathesis reads response schemas as an older draft.
                "items": {
                    "type": "array",
                    "items": {"type": "number", "minimum": 0},
                    "minItems": 5,
                    "maxItems": 5,
                },
            },
        }
    ),
    "DashboardLive": _object(
        {
            "environment": {"$ref": "#/components/schemas/DashboardDetail"},
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/DashboardDetail"}},
        }
    ),
}
