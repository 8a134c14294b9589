"""What a hot-path handler returns, and the headers every answer shares.

A :data:`Reply` is ``(status, headers, body)`` with ``str`` header pairs, so the same handler
serves the ASGI path (tests, any ASGI server) and the hot-path protocol
(:mod:`headcount.http.protocol`, which writes it to the transport in the parser's callback)
unchanged.

**CORS lives here.** Every answer a browser reads cross-origin carries :data:`CORS`
(``Access-Control-Allow-Origin: *``); the System API's carry none. With the ``cors_origins``
setting naming origins, :class:`CorsPolicy` rewrites that one header where answers are
written (the hot-path protocol's bytes, the ASGI ``http.response.start``): the request's
``Origin`` echoed when it is allowed, no such header when it is not, ``Vary: Origin`` either
way (a cache must not hand one page's answer to another). Handlers stay the same, and with
the default ``*`` nothing is rewritten: the hot paths pay nothing for the setting.
"""

from __future__ import annotations

from headcount.errors import HeadcountError, error_response

__all__ = [
    "CORS",
    "JSON",
    "CorsPolicy",
    "Reply",
    "error_reply",
    "preflight_reply",
]

Reply = tuple[int, list[tuple[str, str]], bytes]

CORS: list[tuple[str, str]] = [("access-control-allow-origin", "*")]
JSON: list[tuple[str, str]] = [("content-type", "application/json"), *CORS]


class CorsPolicy:
    """The ``cors_origins`` setting, applied to answers as they are written."""

    _WILDCARD = b"access-control-allow-origin: *\r\n"
    _VARY = b"vary: Origin\r\n"

    def __init__(self, origins: str) -> None:
        self.any = origins == "*"  # nothing to rewrite: every answer already says so
        self._allowed = frozenset(o.encode() for o in origins.split(",")) if not self.any else None

    def allows(self, origin: bytes | None) -> bool:
        return self.any or (origin is not None and origin in (self._allowed or ()))

    def head(self, head: bytes, origin: bytes | None) -> bytes:
        """A reply's head (status line and headers, as the hot path writes them) for a
        request from ``origin`` (its ``Origin`` header; None without one)."""
        if self.any or self._WILDCARD not in head:
            return head
        if self.allows(origin):
            assert origin is not None
            line = b"access-control-allow-origin: %b\r\n%b" % (origin, self._VARY)
        else:
            line = self._VARY
        return head.replace(self._WILDCARD, line)

    def headers(
        self, headers: list[tuple[bytes, bytes]], origin: bytes | None
    ) -> list[tuple[bytes, bytes]]:
        """The same for an ASGI ``http.response.start``'s headers."""
        if self.any or (b"access-control-allow-origin", b"*") not in headers:
            return headers
        kept = [h for h in headers if h[0] != b"access-control-allow-origin"]
        if self.allows(origin):
            assert origin is not None
            kept.append((b"access-control-allow-origin", origin))
        kept.append((b"vary", b"Origin"))
        return kept


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
