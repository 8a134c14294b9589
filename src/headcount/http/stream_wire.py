"""The bytes of ``GET /counts/stream`` (docs/stream.md): its headers and its frames.

- ``retry: 3000``, then the first event at once; then one event per change of the counts
  (views or viewers; a new ``updated_at`` alone is not a change), coalesced to at most one
  a second per counter (:data:`~headcount.http.stream.MIN_SPACING` ticks), within about a
  second of the change reaching the live store. Every event has ``id: <server epoch ms>``; a
  reconnect (``Last-Event-ID``) is answered like a first connection, with the current counts
  at once, so nothing is missed.
- One token: unnamed events (``message``). Several ``token`` parameters (up to
  :data:`~headcount.http.stream.MAX_TOKENS`; one connection for every counter of a page):
  the events of the token at 0-based position ``i`` are named ``counts-<i>``, its end
  ``error-<i>``.
- When a token expires or its signing key is deleted, its ``error`` event carries the
  envelope ``/counts`` would give now, and the stream ends once no token is left.
- A comment (``: keep-alive``) every ``stream_keepalive`` seconds (a setting, 15 s) keeps
  proxies from closing an idle stream.
"""

from __future__ import annotations

from typing import Final

from headcount.errors import TokenRefused, error_response
from headcount.http.reply import CORS

__all__ = ["KEEPALIVE", "RETRY", "RETRY_MS", "STREAM_HEADERS", "counts_frame", "error_frame"]

RETRY_MS: Final = 3000  # the browser's wait before reconnecting
RETRY: Final = b"retry: %d\n\n" % RETRY_MS
KEEPALIVE: Final = b": keep-alive\n\n"

STREAM_HEADERS: Final[list[tuple[str, str]]] = [
    ("content-type", "text/event-stream"),
    ("cache-control", "no-store"),
    *CORS,
    ("x-accel-buffering", "no"),  # nginx: do not buffer the stream
]


def counts_frame(index: int, body: bytes, stamp: int) -> bytes:
    """An event carrying a ``/counts`` body: unnamed (``message``) for a stream of one token
    (``index`` -1), else named ``counts-<index>``; ``stamp`` is its id (server epoch ms)."""
    if index < 0:
        return b"id: %d\ndata: %b\n\n" % (stamp, body)
    return b"event: counts-%d\nid: %d\ndata: %b\n\n" % (index, stamp, body)


def error_frame(index: int, exc: TokenRefused) -> bytes:
    """The end of a token's events: the envelope ``/counts`` gives for ``exc``."""
    _, body = error_response(exc)
    name = b"error" if index < 0 else b"error-%d" % index
    return b"event: %b\ndata: %b\n\n" % (name, body)
