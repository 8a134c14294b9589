"""Builders of OpenAPI 3.1 operations in Headcount's conventions: every error an envelope,
CORS headers where browsers call, HTTP Basic with an access token for the System, live and
Monitoring APIs, the session cookie for the dashboard's pages. The paths themselves are in
:mod:`headcount.http.openapi_paths`."""

from __future__ import annotations

from typing import Any, Final

from headcount.http.collector import MAX_EVENTS
from headcount.http.dashboard.session import COOKIE
from headcount.http.openapi_schemas import ref

__all__ = [
    "BASIC_AUTH",
    "CORS_HEADERS",
    "SECURITY_SCHEMES",
    "SESSION",
    "Operation",
    "error",
    "ok",
    "operation",
    "plain",
    "preflight",
]

Operation = dict[str, Any]

BASIC_AUTH: Final = "accessToken"
SESSION: Final = "dashboardSession"
SECURITY_SCHEMES: Final[dict[str, dict[str, str]]] = {
    BASIC_AUTH: {
        "type": "http",
        "scheme": "basic",
        "description": "An access token's id and secret (`headcount init` prints them), as "
        "user name and password. Each operation names the permission it needs.",
    },
    SESSION: {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE,
        "description": "The dashboard's signed session cookie, set by `POST /dashboard/sign-in`. "
        "Every form that changes something also carries the session's CSRF token (field "
        "`csrf`).",
    },
}

_ERRORS: Final[dict[int, str]] = {
    400: "Bad parameters or body (`invalid_parameters`).",
    401: "No access token, or a wrong one (`unauthorized`); carries `WWW-Authenticate`.",
    403: "Refused: the access token lacks the permission, or the viewer-counts token was "
    "refused (the error type says why).",
    404: "No such resource here (`not_found`).",
    414: "The request target (path and query) is longer than `max_url_bytes` (32 KiB by "
    "default; `uri_too_long`).",
    413: f"The body is larger than `max_body_bytes`, or holds more than {MAX_EVENTS:,} events.",
    503: "A store Headcount depends on does not answer (`service_unavailable`); try again.",
}

CORS_HEADERS: Final[dict[str, Any]] = {
    "Access-Control-Allow-Origin": {
        "description": "Always `*`: browsers call this from any origin.",
        "required": True,
        "schema": {"type": "string", "const": "*"},
    }
}


def error(status: int, cors: bool = False, description: str = "") -> dict[str, Any]:
    """The envelope answer for ``status`` (its usual description unless one is given)."""
    answer: dict[str, Any] = {
        "description": description or _ERRORS[status],
        "content": {"application/json": {"schema": ref("Error")}},
    }
    if cors:
        answer["headers"] = CORS_HEADERS
    return answer


def ok(
    description: str, media_type: str, schema: dict[str, Any], *, cors: bool = False
) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": description,
        "content": {media_type: {"schema": schema}},
    }
    if cors:
        answer["headers"] = CORS_HEADERS
    return answer


def operation(
    operation_id: str,
    tag: str,
    summary: str,
    description: str,
    responses: dict[int, dict[str, Any]],
    *,
    errors: tuple[int, ...] = (),
    cors: bool = False,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    security: str | None = None,
) -> Operation:
    """One operation: its answers, then the error statuses it may give (each the envelope).
    An operation with parameters may answer 414: a string parameter of the longest length
    it allows, percent-encoded, can pass ``max_url_bytes``."""
    answers = {str(status): answer for status, answer in responses.items()}
    answers.update({str(status): error(status, cors) for status in errors})
    if parameters and any(p["in"] in ("query", "path") for p in parameters):
        answers.setdefault("414", error(414, cors))
    document: Operation = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
        "responses": dict(sorted(answers.items())),  # three digits: sorted as numbers
    }
    if parameters:
        document["parameters"] = parameters
    if body is not None:
        document["requestBody"] = body
    if security is not None:
        assert security in SECURITY_SCHEMES, security
        document["security"] = [{security: []}]
    return document


def preflight(operation_id: str, tag: str, methods: str) -> Operation:
    return operation(
        operation_id,
        tag,
        "CORS preflight",
        f"Answers any preflight: `Access-Control-Allow-Methods: {methods}`, cached a day.",
        {204: {"description": "Preflight allowed.", "headers": CORS_HEADERS}},
    )


def plain(
    operation_id: str, tag: str, summary: str, media_type: str, description: str = ""
) -> Operation:
    return operation(
        operation_id,
        tag,
        summary,
        description or summary + ".",
        {200: ok(summary + ".", media_type, {"type": "string"})},
    )
