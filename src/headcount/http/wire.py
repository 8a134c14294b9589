"""Bytes on the wire for the hot-path protocol: status lines, reply heads, the 500 for a
failing handler, the 400 for a request the parser refused, the per-loop outbox that writes the
answers of one event-loop round together (see :class:`Outbox`), and the transport a request on
uvicorn's way writes to (:class:`WritesWhileOpen`)."""

from __future__ import annotations

import asyncio
import http
import weakref
from typing import Final

from headcount.errors import BadRequest, HeadcountError, error_response

__all__ = ["INTERNAL_ERROR", "Outbox", "WritesWhileOpen", "head", "outbox", "unparsable"]

_STATUS_LINES: Final = {
    status.value: b"HTTP/1.1 %d %b\r\n" % (status.value, status.phrase.encode())
    for status in http.HTTPStatus
}
# Status line and headers (without date and content-length) of each reply's header list, by
# the list's id; bounded, oldest out first, whatever a handler does.
_HEADS: dict[int, tuple[list[tuple[str, str]], int, bytes]] = {}
_MAX_HEADS: Final = 256
_FAILED_STATUS, _FAILED_BODY = error_response(
    HeadcountError("The server failed to answer the request.")
)
# The answer when a handler fails (a bug): written at once, then the connection is closed.
INTERNAL_ERROR: Final = (
    _STATUS_LINES[_FAILED_STATUS]
    + b"content-type: application/json\r\n"
    + b"access-control-allow-origin: *\r\n"
    + b"cache-control: no-store\r\n"
    + b"connection: close\r\n"
    + b"content-length: %d\r\n\r\n" % len(_FAILED_BODY)
    + _FAILED_BODY
)


def unparsable(message: str, default_headers: bytes, *, cors: bool) -> bytes:
    """The answer to a request the parser refused (a bad request line, bad headers): the
    envelope where uvicorn writes ``text/plain``, with CORS when the request was for a public
    path (a browser's script then reads the 400 instead of a CORS failure); the connection
    closes after it, as uvicorn's does."""
    status, body = error_response(BadRequest(message))
    return (
        _STATUS_LINES[status]
        + default_headers
        + b"content-type: application/json\r\n"
        + (b"access-control-allow-origin: *\r\n" if cors else b"")
        + b"cache-control: no-store\r\n"
        + b"connection: close\r\n"
        + b"content-length: %d\r\n\r\n" % len(body)
        + body
    )


class WritesWhileOpen:
    """The transport as a request on uvicorn's way sees it (the protocol gives one to each
    ``RequestResponseCycle``): a write once it is closing is
    dropped. uvloop raises ``RuntimeError`` for a write to a transport that a failed write
    (the client reset the connection) has closed, until ``connection_lost`` tells uvicorn the
    client is gone; reading is paused meanwhile when requests are pipelined, so the reset is
    not seen earlier. That was the one "Exception in ASGI application" of the issue."""

    __slots__ = ("_transport",)

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        if not self._transport.is_closing():
            self._transport.write(data)

    def close(self) -> None:
        self._transport.close()

    def is_closing(self) -> bool:
        return self._transport.is_closing()


class Outbox:
    """Answers written together, once the loop has run every I/O callback of this round.

    Writing each answer as soon as it is ready costs a ``send`` that, more often than not,
    wakes the client's side up for that one answer; written back to back, the answers of one
    round share the wake-ups. ``bench/`` measured +10-45 % fresh-token ``/counts`` req/s and
    +3-20 % repeated-token on one core. An answer waits at most for the rest of its round.

    Order on a connection is kept: an answer goes out before anything written later by the
    same loop (uvicorn's tasks run after the flush, scheduled before them with ``call_soon``),
    and the protocol flushes before every write or close of its own that bypasses the outbox.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: list[tuple[asyncio.Transport, bytes, bool]] = []

    def put(self, transport: asyncio.Transport, data: bytes, *, close: bool) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append((transport, data, close))

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        for transport, data, close in pending:
            if not transport.is_closing():
                transport.write(data)
                if close:
                    transport.close()


_OUTBOXES: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Outbox] = (
    weakref.WeakKeyDictionary()
)


def outbox(loop: asyncio.AbstractEventLoop) -> Outbox:
    outbox = _OUTBOXES.get(loop)
    if outbox is None:
        outbox = _OUTBOXES[loop] = Outbox(loop)
    return outbox


def head(status: int, headers: list[tuple[str, str]]) -> bytes:
    # Handlers answer from a few constant header lists: find those by identity (the entry
    # holds the list, so its id cannot be reused while the entry lives).
    entry = _HEADS.get(id(headers))
    if entry is not None and entry[0] is headers and entry[1] == status:
        return entry[2]
    head = _STATUS_LINES.get(status, b"HTTP/1.1 %d \r\n" % status) + b"".join(
        b"%b: %b\r\n" % (name.encode("latin-1"), value.encode("latin-1")) for name, value in headers
    )
    if len(_HEADS) >= _MAX_HEADS:
        del _HEADS[next(iter(_HEADS))]
    _HEADS[id(headers)] = (headers, status, head)
    return head
