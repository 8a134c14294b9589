"""The access log (setting ``access_log``, off by default): one line per request, logger
``headcount.access``, written by :func:`log_request` whichever way the request was answered.

- The ASGI way (everything but the hot paths, and any request under stock uvicorn):
  :class:`~headcount.http.app.HeadcountApp` wraps ``send`` with :func:`logged_send`.
- The hot paths (``/counts``, the collector, their preflights, ``/counts/stream``), answered in
  the parser callback without ASGI: ``headcount serve`` runs
  :class:`~headcount.http.protocol_access.AccessLoggedProtocol` instead of the plain
  :class:`~headcount.http.protocol.HotPathProtocol`. Off, nothing of this runs on them.

uvicorn's own access log stays off (``headcount serve`` never turns it on): it would print
``/counts?token=<JWT>`` as it came. Where it is on anyway (stock uvicorn serving
:func:`~headcount.http.app.create_app`, where it is on by default), :func:`redact_uvicorn_access`
has put a filter on its logger that redacts the same parameters in its lines.

**What a line never holds.** A query parameter whose name holds ``token``, ``secret``,
``password``, ``signature`` or ``key`` is logged as ``name=REDACTED`` (``/counts?token=REDACTED``);
headers (``Authorization``) and bodies (the System API's new private key, a new token's secret)
are never logged at all.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Final
from urllib.parse import unquote_to_bytes

__all__ = ["REDACTED", "log_request", "logged_send", "redact_target", "redact_uvicorn_access"]

log = logging.getLogger("headcount.access")

REDACTED: Final = b"REDACTED"
_SECRET_WORDS: Final = (b"token", b"secret", b"password", b"signature", b"key")
_MAX_TARGET: Final = 2048  # characters of a path and query kept in a line

Message = MutableMapping[str, Any]
Send = Callable[[Message], Awaitable[None]]


def redact_target(target: bytes) -> str:
    """The request target as it may be logged: secret query parameters redacted."""
    path, question, query = target.partition(b"?")
    if question:
        parts = query.split(b"&")
        for i, part in enumerate(parts):
            name, equals, _ = part.partition(b"=")
            # The name as the server reads it: %74oken is token too.
            plain = unquote_to_bytes(name.replace(b"+", b" ")).lower()
            if any(word in plain for word in _SECRET_WORDS):
                parts[i] = name + b"=" + REDACTED if equals else REDACTED
        target = path + b"?" + b"&".join(parts)
    text = target.decode("latin-1")
    return text if len(text) <= _MAX_TARGET else text[:_MAX_TARGET] + "..."


def log_request(
    client: tuple[str, int] | None, method: str, target: bytes, http_version: str, status: int
) -> None:
    """One access line, in uvicorn's shape: ``1.2.3.4:5678 - "GET /counts?token=REDACTED
    HTTP/1.1" 200``; with ``log_format=json`` its parts are fields too."""
    where = f"{client[0]}:{client[1]}" if client else "-"
    path = redact_target(target)
    log.info(
        '%s - "%s %s HTTP/%s" %d',
        where,
        method,
        path,
        http_version,
        status,
        extra={
            "client": where,
            "method": method,
            "path": path,
            "http_version": http_version,
            "status": status,
        },
    )


def logged_send(scope: MutableMapping[str, Any], send: Send) -> Send:
    """``send`` for one ASGI request, logging it when its answer starts."""

    async def send_and_log(message: Message) -> None:
        if message["type"] == "http.response.start":
            target = scope.get("raw_path") or scope["path"].encode("utf-8")
            if scope.get("query_string"):
                target += b"?" + scope["query_string"]
            client = scope.get("client")
            log_request(
                tuple(client) if client else None,
                scope["method"],
                target,
                scope.get("http_version", "1.1"),
                message["status"],
            )
        await send(message)

    return send_and_log


class _RedactUvicornAccess(logging.Filter):
    """Redacts the target in uvicorn's access lines: ``(client, method, path with query,
    http version, status)`` (``UVICORN_INTERNALS["access_log_args"]``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            target = redact_target(args[2].encode("latin-1", "replace"))
            record.args = (args[0], args[1], target, args[3], args[4])
        return True


def redact_uvicorn_access() -> None:
    """Put the redacting filter on uvicorn's access logger (once per process)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, _RedactUvicornAccess) for f in access.filters):
        access.addFilter(_RedactUvicornAccess())
