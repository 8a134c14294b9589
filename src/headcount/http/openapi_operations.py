"""Builders of OpenAPI 3.1 operations in Headcount's conventions: every error an envelope,
CORS headers where browsers call, HTTP Basic for the System API. The paths themselves are in
:mod:`headcount.http.openapi_paths`."""

from __future__ import annotations

from typing import Any, Final

from headcount.http.collector import MAX_EVENTS
from headcount.http.openapi_schemas import ref

__all__ = ["CORS_HEADERS", "Operation", "ok", "operation", "plain", "preflight"]

Operation = dict[str, Any]

_ERRORS: Final[dict[int, str]] = {
    400: "Bad parameters or body (`invalid_parameters`).",
    401: "No access token, or a wrong one (`unauthorized`); carries `WWW-Authenticate`.",
    403: "Refused: the access token lacks the permission, or the viewer-counts token was "
    "refused (the error type says why).",
    404: "No such resource here (`not_found`).",
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


def _error(status: int, cors: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": _ERRORS[status],
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
    system: bool = False,
) -> Operation:
    """One operation: its answers, then the error statuses it may give (each the envelope)."""
    answers = {str(status): answer for status, answer in responses.items()}
    answers.update({str(status): _error(status, cors) for status in errors})
    document: Operation = {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        "description": description,
        "responses": answers,
    }
    if parameters:
        document["parameters"] = parameters
    if body is not None:
        document["requestBody"] = body
    if system:
        document["security"] = [{"accessToken": []}]
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
