"""What a hot-path handler returns, and the headers every answer shares.

A :data:`Reply` is ``(status, headers, body)`` with ``str`` header pairs, so the same handler
serves the ASGI path (tests, any ASGI server) and the hot-path protocol
(:mod:`headcount.http.protocol`, which writes it to the transport in the parser's callback)
unchanged.
"""

from __future__ import annotations

from headcount.errors import HeadcountError, error_response

__all__ = [
    "CORS",
    "JSON",
    "Reply",
    "error_reply",
    "preflight_reply",
]

Reply = tuple[int, list[tuple[str, str]], bytes]

CORS: list[tuple[str, str]] = [("access-control-allow-origin", "*")]
JSON: list[tuple[str, str]] = [("content-type", "application/json"), *CORS]


def preflight_reply(methods: str) -> Reply:
    return (
        204,
        [
            *CORS,
            ("access-control-allow-methods", methods),
            ("access-control-allow-headers", "Content-Type, Authorization"),
            ("access-control-max-age", "86400"),
        ],
        b"",
    )


_ERROR_HEADERS: list[tuple[str, str]] = [*JSON, ("cache-control", "no-store")]


def error_reply(exc: HeadcountError, extra: list[tuple[str, str]] | None = None) -> Reply:
    status, body = error_response(exc)
    return status, [*_ERROR_HEADERS, *extra] if extra else _ERROR_HEADERS, body
