"""The shapes of Headcount's answers and bodies, as JSON Schema (2020-12, what OpenAPI 3.1 uses).

Each entry of :data:`SCHEMAS` becomes ``#/components/schemas/<name>`` of ``/openapi.json``
(:mod:`headcount.http.openapi`); operations refer to them with :func:`ref`. The suite checks
real answers against them (``tests/http/test_openapi.py``), so a schema here is a promise.
"""

from __future__ import annotations

from typing import Any, Final

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
}
