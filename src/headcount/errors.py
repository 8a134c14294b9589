"""The one error tree of Headcount, and its one mapping to HTTP.

    HeadcountError                 500  internal_error
    ├── BadRequest                 400  invalid_parameters
    │   └── PayloadTooLarge        413  payload_too_large
    ├── Unauthorized               401  unauthorized
    ├── Forbidden                  403  forbidden
    │   └── TokenRefused           403  invalid_token   (the /counts JWT; ``error_type`` says why)
    ├── NotFound                   404  not_found
    └── StoreUnavailable           503  service_unavailable

Every HTTP surface turns an exception into a status and Mux's envelope
``{"error":{"type":...,"messages":[...]}}`` through :func:`error_response` and nothing else.
Messages are written for the developer calling us: they say what is wrong and never echo secrets.
"""

from __future__ import annotations

import json

__all__ = [
    "BadRequest",
    "Forbidden",
    "HeadcountError",
    "NotFound",
    "PayloadTooLarge",
    "StoreUnavailable",
    "TokenRefused",
    "Unauthorized",
    "envelope",
    "error_response",
    "status_and_type",
]


class HeadcountError(Exception):
    """Base of every error Headcount raises on purpose."""

    default_message = "Internal server error."

    def __init__(self, message: str | None = None, *, error_type: str | None = None) -> None:
        self.message = message or self.default_message
        self.error_type = error_type
        super().__init__(self.message)


class BadRequest(HeadcountError):
    default_message = "The request is not valid."


class PayloadTooLarge(BadRequest):
    default_message = "The request body is too large."


class Unauthorized(HeadcountError):
    default_message = "Unauthorized request"


class Forbidden(HeadcountError):
    default_message = "The access token does not have the permission this request needs."


class TokenRefused(Forbidden):
    default_message = "The token was refused."


class NotFound(HeadcountError):
    default_message = "The requested resource either doesn't exist or you don't have access to it."


class StoreUnavailable(HeadcountError):
    default_message = "A store Headcount depends on is unavailable; try again shortly."


# class -> (HTTP status, Mux error type). Looked up along the MRO, most specific first.
_STATUS: dict[type[HeadcountError], tuple[int, str]] = {
    PayloadTooLarge: (413, "payload_too_large"),
    BadRequest: (400, "invalid_parameters"),
    Unauthorized: (401, "unauthorized"),
    TokenRefused: (403, "invalid_token"),
    Forbidden: (403, "forbidden"),
    NotFound: (404, "not_found"),
    StoreUnavailable: (503, "service_unavailable"),
    HeadcountError: (500, "internal_error"),
}


def status_and_type(exc: HeadcountError) -> tuple[int, str]:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            status, error_type = _STATUS[cls]
            return status, exc.error_type or error_type
    raise AssertionError("HeadcountError is always mapped")  # pragma: no cover


def envelope(error_type: str, *messages: str) -> bytes:
    """Mux's error body, as bytes."""
    return json.dumps(
        {"error": {"type": error_type, "messages": list(messages)}}, separators=(",", ":")
    ).encode()


def error_response(exc: HeadcountError) -> tuple[int, bytes]:
    """The status and body for an error: the single place errors meet HTTP."""
    status, error_type = status_and_type(exc)
    return status, envelope(error_type, exc.message)
