"""Every public endpoint of Headcount, as OpenAPI 3.1 path items: the one place to describe one.

**Adding an endpoint** is one entry in :data:`PATHS` (its path as OpenAPI writes it, ``{name}``
for a path parameter, and one
:func:`~headcount.http.openapi_operations.operation` per method), plus any new schema in
:mod:`headcount.http.openapi_schemas`. The reads of live counts (``/system/v1/live``, the
Monitoring API) and the dashboard's pages have their entries in
:mod:`~headcount.http.openapi_paths_data` and :mod:`~headcount.http.openapi_paths_dashboard`,
merged into :data:`PATHS` here. ``tests/http/test_openapi.py`` reads the app's routing
tables and names every route served but not described here, and every path described here but
not served. ``HEAD`` is not listed: it is answered wherever ``GET`` is, but on the paths of
:data:`~headcount.http.openapi.GET_WITHOUT_HEAD` (tested too).
"""

from __future__ import annotations

from typing import Any, Final

from headcount.auth.jwt_verify import MAX_TOKEN_LENGTH
from headcount.http.openapi_operations import (
    BASIC_AUTH,
    Operation,
    ok,
    operation,
    plain,
    preflight,
)
from headcount.http.openapi_paths_dashboard import DASHBOARD_PATHS, DASHBOARD_TAG
from headcount.http.openapi_paths_data import DATA_PATHS, DATA_TAG
from headcount.http.openapi_schemas import ref
from headcount.http.stream import MAX_TOKENS
from headcount.http.system import DEFAULT_LIMIT, MAX_LIMIT

__all__ = ["PATHS", "TAGS"]

TAGS: Final[list[dict[str, str]]] = [
    {"name": "Collector", "description": "Beacons from video players (mux-embed) in."},
    {"name": "Counts", "description": "Views and viewers of one id, for browsers and apps."},
    {"name": "System", "description": "Signing keys, for your backend and Mux's SDKs."},
    {
        "name": DATA_TAG,
        "description": "Live counts and their history, for your backend and dashboards: "
        "Headcount's `/system/v1/live` and the subset of Mux's Monitoring API these counts "
        "answer. HTTP Basic with an access token that has `data:read`.",
    },
    {"name": "Operations", "description": "Health, readiness and metrics, for operators."},
    {"name": "Pages", "description": "The `<headcount-viewers>` element, the demo, this API."},
    {
        "name": DASHBOARD_TAG,
        "description": "Pages for people (`text/html`) behind a sign-in with an access token: "
        "a session cookie, and a CSRF token in every form that changes something. Served "
        "where the System API is.",
    },
]

# -- the collector -------------------------------------------------------------------------

_BEACON_BODY: Final = {
    "required": True,
    "description": '`{"metadata":{...},"events":[{...}]}`. mux-embed sends it as '
    "`text/plain` (no CORS preflight); any Content-Type is read the same way.",
    "content": {
        "text/plain": {"schema": {"type": "string", "description": "The JSON envelope."}},
        "application/json": {"schema": ref("Beacon")},
    },
}


def _collect(operation_id: str, where: str) -> Operation:
    return operation(
        operation_id,
        "Collector",
        f"Post beacons ({where})",
        "Decodes every event (abbreviated or spelled-out keys), checks each on its own, "
        "deduplicates by view and sequence number and counts. A well-formed envelope is "
        "answered 200 even when every event is refused: any other status makes mux-embed "
        "re-send the batch.",
        {
            200: ok(
                "Events accepted or refused one by one.",
                "application/json",
                ref("CollectorAnswer"),
                cors=True,
            )
        },
        errors=(400, 413, 503),
        cors=True,
        body=_BEACON_BODY,
    )


# -- counts --------------------------------------------------------------------------------

_TOKEN: Final = {
    "name": "token",
    "in": "query",
    "required": True,
    "description": "A viewer-counts JWT (RS256, `kid`, `aud` one of video_id, asset_id, "
    "playback_id, live_stream_id, `sub` the id, `exp`) signed with one of your signing keys. "
    "`TOKEN` (Mux's spelling) is read too.",
    "schema": {"type": "string", "maxLength": MAX_TOKEN_LENGTH},
}
_TOKENS: Final = {
    **_TOKEN,
    "description": f"Up to {MAX_TOKENS} viewer-counts tokens (see `GET /counts`); the events "
    "of the token at 0-based position i are named `counts-<i>` when there are several.",
    "schema": {
        "type": "array",
        "items": {"type": "string", "maxLength": MAX_TOKEN_LENGTH},
        "maxItems": MAX_TOKENS,
    },
    "style": "form",
    "explode": True,
}

# -- the System API ------------------------------------------------------------------------

_KEY_ID: Final = {"name": "key_id", "in": "path", "required": True, "schema": {"type": "string"}}
_PAGING: Final = [
    {
        "name": "limit",
        "in": "query",
        "description": "Keys per page.",
        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    },
    {
        "name": "page",
        "in": "query",
        "description": "Page number; past the end the list is empty.",
        "schema": {"type": "integer", "minimum": 1, "default": 1},
    },
]


def _signing_keys(prefix: str, suffix: str = "", *, legacy: bool = False) -> dict[str, Any]:
    """The collection and the item, at ``prefix`` (legacy ones deprecated)."""

    def op(name: str, *args: Any, **kwargs: Any) -> Operation:
        found = operation(f"{name}{suffix}", "System", *args, security=BASIC_AUTH, **kwargs)
        if legacy:
            found["deprecated"] = True
        return found

    return {
        prefix: {
            "get": op(
                "listSigningKeys",
                "List signing keys",
                "The environment's signing keys, oldest first, without private keys.",
                {200: ok("A page of keys.", "application/json", ref("SigningKeyList"))},
                errors=(400, 401, 403, 503),
                parameters=_PAGING,
            ),
            "post": op(
                "createSigningKey",
                "Create a signing key",
                "A new 2048-bit RSA key; the only answer that holds its private key. A body "
                "and query parameters are ignored.",
                {201: ok("The new key.", "application/json", ref("SigningKeyCreatedAnswer"))},
                errors=(401, 403, 503),
            ),
        },
        prefix + "/{key_id}": {
            "get": op(
                "getSigningKey",
                "Get a signing key",
                "One key of the environment, without its private key.",
                {200: ok("The key.", "application/json", ref("SigningKeyAnswer"))},
                errors=(401, 403, 404, 503),
                parameters=[_KEY_ID],
            ),
            "delete": op(
                "deleteSigningKey",
                "Delete a signing key",
                "Its tokens are refused at once on this node, within about a second on others.",
                {204: {"description": "Deleted."}},
                errors=(401, 403, 404, 503),
                parameters=[_KEY_ID],
            ),
        },
    }


_VERSION: Final = {
    "name": "version",
    "in": "path",
    "required": True,
    "schema": {"type": "string"},
    "description": "The first 16 hex digits of the script's SHA-256.",
}

PATHS: Final[dict[str, dict[str, Operation]]] = {
    "/": {
        "post": _collect("postBeacons", "POST /"),
        "options": preflight("preflightBeacons", "Collector", "POST, OPTIONS"),
    },
    "/collect": {
        "post": _collect("postBeaconsCollect", "POST /collect"),
        "options": preflight("preflightBeaconsCollect", "Collector", "POST, OPTIONS"),
    },
    "/counts": {
        "get": operation(
            "getCounts",
            "Counts",
            "Read the counts of one id",
            "Views and viewers of the id the token names, in the environment of its signing "
            "key. Cacheable for the snapshot interval (`Cache-Control: public, max-age=N`).",
            {200: ok("The counts.", "application/json", ref("Counts"), cors=True)},
            errors=(400, 403, 503),
            cors=True,
            parameters=[_TOKEN],
        ),
        "options": preflight("preflightCounts", "Counts", "GET, OPTIONS"),
    },
    "/counts/stream": {
        "get": operation(
            "streamCounts",
            "Counts",
            "Stream the counts (Server-Sent Events)",
            "`retry: 3000`, the first event at once, then one event per change (at most one "
            "a second); each event's data is the `GET /counts` body. A refused token gets the "
            "status and envelope `GET /counts` would give.",
            {200: ok("The event stream.", "text/event-stream", {"type": "string"}, cors=True)},
            errors=(400, 403, 503),
            cors=True,
            parameters=[_TOKENS],
        ),
        "options": preflight("preflightCountsStream", "Counts", "GET, OPTIONS"),
    },
    **_signing_keys("/system/v1/signing-keys"),
    **_signing_keys("/video/v1/signing-keys", "Legacy", legacy=True),
    **DATA_PATHS,
    "/system/v1/whoami": {
        "get": operation(
            "whoami",
            "System",
            "Who is calling",
            "The calling access token, its environment and its permissions (Mux's CLI asks "
            "this in `mux login`).",
            {200: ok("The caller.", "application/json", ref("Whoami"))},
            errors=(401, 503),
            security=BASIC_AUTH,
        )
    },
    "/healthz": {
        "get": operation(
            "health",
            "Operations",
            "Liveness",
            "200 while the process answers.",
            {200: ok("Alive.", "application/json", ref("Health"))},
        )
    },
    "/readyz": {
        "get": operation(
            "ready",
            "Operations",
            "Readiness",
            "200 when the live store answers and the node is not shutting down; balancers "
            "send traffic only then.",
            {200: ok("Ready.", "application/json", ref("Ready"))},
            errors=(503,),
        )
    },
    "/metrics": {"get": plain("metrics", "Operations", "Prometheus metrics", "text/plain")},
    "/widget/headcount-viewers.js": {
        "get": plain(
            "widgetScript",
            "Pages",
            "The <headcount-viewers> element",
            "text/javascript",
            "The current version of the element, cached 5 minutes.",
        )
    },
    "/widget/{version}/headcount-viewers.js": {
        "get": operation(
            "widgetScriptPinned",
            "Pages",
            "One version of the element",
            "Immutable; an upgrade answers the old version 404.",
            {200: ok("The element.", "text/javascript", {"type": "string"})},
            errors=(404,),
            parameters=[_VERSION],
        )
    },
    "/widget/headcount-viewers.json": {
        "get": operation(
            "widgetManifest",
            "Pages",
            "The element's versioned URL",
            "The URL to pin and its subresource integrity.",
            {200: ok("The manifest.", "application/json", ref("WidgetManifest"), cors=True)},
        )
    },
    "/demo": {
        "get": operation(
            "demo",
            "Pages",
            "The demo page",
            "A clip counted live by mux-embed beside `<headcount-viewers>` (setting `demo`). "
            "Asked for at a loopback address, it redirects to `localhost`.",
            {
                200: ok("The page.", "text/html", {"type": "string"}),
                302: {"description": "To the same page at `localhost` (mux-embed's http rule)."},
            },
            errors=(503,),
        )
    },
    "/demo/token": {
        "get": operation(
            "demoToken",
            "Pages",
            "A token for the demo video",
            "Same origin only (no CORS).",
            {200: ok("A 10-minute token.", "application/json", ref("DemoToken"))},
            errors=(503,),
        )
    },
    "/demo/{name}": {
        "get": operation(
            "demoAsset",
            "Pages",
            "The demo's assets",
            "The clip, the vendored mux-embed and its licence.",
            {
                200: {
                    "description": "The asset.",
                    "content": {
                        media_type: {"schema": {"type": "string"}}
                        for media_type in ("video/webm", "text/javascript", "text/plain")
                    },
                }
            },
            errors=(404,),
            parameters=[
                {"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
        )
    },
    "/openapi.json": {
        "get": operation(
            "openapi",
            "Pages",
            "This description",
            "OpenAPI 3.1, the same document `/docs/api` shows.",
            {200: ok("The document.", "application/json", {"type": "object"})},
        )
    },
    "/docs/api": {"get": plain("apiPage", "Pages", "This description, for people", "text/html")},
    **DASHBOARD_PATHS,
}
