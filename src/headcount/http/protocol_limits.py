"""The limits of :mod:`headcount.http.limits`, applied to every connection of the hot-path
protocol (:class:`~headcount.http.protocol.HotPathProtocol` extends this class), on the hot
path and on uvicorn's way alike. Each refusal is an error envelope written after the answers
before it, then the connection closes; nothing more is read from it.

What a request that keeps within them pays: an add and a compare per header field and per
piece of URL, and three stores of its phase (:data:`HEAD`, :data:`BODY`, :data:`IDLE`, kept by
the protocol's parser callbacks). A read that ends between requests, as most do, arms nothing.

- **Head size** (``--max-url-bytes``, ``--max-header-bytes``, ``--max-headers``): counted as
  httptools hands over the URL and each completed field; a field still arriving (one
  endless header line, which httptools holds until its end) is measured by the bytes read
  while the same head stays open. Past it: 414 or 431, and the parser stops there.
- **Time** (``--header-timeout``, ``--body-timeout``): one timer per connection, armed when
  it opens and when a read ends inside a request, that looks back when it fires: is the same
  request still in the same phase? Then 408 (or a silent close when nothing was ever sent);
  else it looks again one period later. So a slow request is cut after one to two periods.
  Time the server spends not reading (an answer before it is still awaited, uvicorn's body
  buffer is full, or flow control) does not count against the client.
- **Connections** (``--max-connections``): a connection past it is answered 503 as soon as it
  is accepted, and closed.
- **Bodies in flight** (``--max-body-memory``): the bytes of every body still arriving when a
  read ends, summed over the process; the request that passes the total gets 503.
- **A client that does not read** (``--max-unsent-bytes``, ``--send-timeout``): the
  transport's write buffer is bounded at ``--max-unsent-bytes``; past it the transport calls
  :meth:`pause_writing`, reading stops (answers are made only from what is read), and a timer
  starts that cuts the connection when the client has not taken enough by then. A large read
  is parsed in slices of :data:`SLICE` bytes with the answers written between them, so one
  read of pipelined requests cannot queue much more than the limit either; what is left of
  it waits in :attr:`_held_back` until the client reads.

Streams (``/counts/stream``) are answers being written, not requests arriving: none of these
timers applies to them, and a stream whose client does not read is cut by the hub
(:data:`~headcount.http.stream.MAX_UNSENT`).
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar, Final

from headcount.http.app import HeadcountApp
from headcount.http.limits import ConnectionLimits, Refusal
from headcount.http.protocol_chain import ChainedProtocol
from headcount.http.reply import Reply
from headcount.http.stream import Stream
from headcount.metrics import Metrics
from headcount.settings import load_settings

__all__ = ["ASGI_BODY", "BODY", "HEAD", "IDLE", "SLICE", "LimitedProtocol"]

IDLE: Final = 0  # no request being read: between two, or before the first byte
HEAD: Final = 1  # its request line and headers are arriving
BODY: Final = 2  # its body is arriving, to be answered on the hot path
ASGI_BODY: Final = 3  # its body is arriving, read by an ASGI task (uvicorn's way)

SLICE: Final = 16 * 1024  # bytes of a large read parsed before its answers are written
_SILENT: Final[Reply] = (0, [], b"")  # a refusal with nothing to say: the connection is cut


class _Refused(Exception):
    """Raised in a parser callback to stop httptools at a limit. uvicorn answers the parser
    error with :meth:`send_400_response`, which writes the refusal instead."""


class LimitedProtocol(ChainedProtocol):
    """uvicorn's httptools protocol with a chain of hot-path answers, held to the limits."""

    _default: ClassVar[ConnectionLimits | None] = None  # for an app that is not ours
    # Class defaults, set on the instance only when used: an idle stream's dict stays small.
    _refusal: Reply | None = None  # answered with it and closing: nothing more is read
    _stall: asyncio.TimerHandle | None = None  # cuts a client that does not read
    _held_back = b""  # what was read and not yet parsed while the client does not read
    _held = 0  # bytes of the body being read counted in ConnectionLimits.bodies_held
    _head_bytes = 0  # bytes read while one head stayed open (after the read it began in)
    _stream: Stream | None = None  # set by HotPathProtocol once it carries a stream

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._limits = _limits_of(self.app) or LimitedProtocol._fallback_limits()
        self._phase = IDLE
        self._begun = 0  # requests begun on this connection (HotPathProtocol counts them)
        self._head_size = 0  # bytes of the header fields of the head being read
        self._size = 0  # bytes of the body being read
        self._deadline: asyncio.TimerHandle | None = None

    @classmethod
    def _fallback_limits(cls) -> ConnectionLimits:
        if cls._default is None:
            cls._default = ConnectionLimits(load_settings(environ={}), Metrics())
        return cls._default

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        limits = self._limits
        if len(self.connections) > limits.max_connections:
            self._refuse(limits.too_many_connections)
            return
        transport.set_write_buffer_limits(high=limits.max_unsent_bytes)
        # The first request's head is due from now (a connection that sends nothing, too).
        self._deadline = self.loop.call_later(limits.header_timeout, self._deadline_passed, 1, HEAD)

    def connection_lost(self, exc: Exception | None) -> None:
        for timer in (self._deadline, self._stall):
            if timer is not None:
                timer.cancel()
        self._deadline = self._stall = None
        if self._held:
            self._release()
        super().connection_lost(exc)

    # -- reading ---------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refusal is not None:
            return
        if self._stall is not None:  # the client does not read: neither does the server
            self._held_back += data
            self.flow.pause_reading()
            return
        if len(data) > SLICE or self._phase == HEAD:
            self._read_carefully(data)
            return
        super().data_received(data)
        if self._phase != IDLE:
            self._head_bytes = 0  # a head begun in this read: its fields are counted
            self._mid_request()
        elif self._held:
            self._release()

    def _read_carefully(self, data: bytes) -> None:
        """A large read, or one that continues a head: parsed a slice at a time."""
        view = memoryview(data)
        end = len(data)
        limits = self._limits
        for start in range(0, end, SLICE):
            chunk = view[start : start + SLICE]
            begun, continuing = self._begun, self._phase == HEAD
            super().data_received(chunk)  # type: ignore[arg-type]  # httptools takes a view
            if self._refusal is not None or self.transport.is_closing():
                return
            if self._phase == HEAD:
                if not (continuing and self._begun == begun):
                    self._head_bytes = 0
                else:
                    self._head_bytes += len(chunk)
                    if self._head_bytes > limits.max_head_bytes:
                        self._refuse(limits.headers_too_large)
                        return
            if start + SLICE < end:
                self._outbox.flush()  # this slice's answers go out: does the client take them?
                if self._stall is not None:
                    self._held_back = bytes(view[start + SLICE :])
                    self.flow.pause_reading()
                    break
        if self._phase != IDLE:
            self._mid_request()
        elif self._held:
            self._release()

    def _mid_request(self) -> None:
        """A read ended inside a request: time it, and count the body it holds."""
        if self._deadline is None:
            self._arm(self._begun, self._phase)
        if self._phase == HEAD:
            if self._held:
                self._release()
            return
        limits = self._limits
        limits.bodies_held += self._size - self._held
        self._held = self._size
        if limits.bodies_held > limits.max_body_memory:
            self._refuse(limits.too_many_bodies)

    def _release(self) -> None:
        self._limits.bodies_held -= self._held
        self._held = 0

    # -- parser callbacks (the ASGI way's on_headers_complete, on_body, on_message_complete)

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self._limits.max_url_bytes:
            self._refuse(self._limits.url_too_long, in_parser=True)

    def on_header(self, name: bytes, value: bytes) -> None:
        size = self._head_size + len(name) + len(value)
        self._head_size = size
        limits = self._limits
        if size > limits.max_header_bytes or len(self.headers) >= limits.max_headers:
            self._refuse(limits.headers_too_large, in_parser=True)
        # uvicorn's on_header, copied rather than called (a call per field on the hot path;
        # tests/http/test_uvicorn_seam.py checks it still does only this).
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._phase = ASGI_BODY
        self._size = 0
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self.cycle.response_complete:  # uvicorn drops a body answered before its end
            self._size += len(body)
        super().on_body(body)

    def on_message_complete(self) -> None:
        self._phase = IDLE
        super().on_message_complete()

    # -- timers ----------------------------------------------------------------------------

    def _arm(self, begun: int, phase: int) -> None:
        limits = self._limits
        timeout = limits.header_timeout if phase == HEAD else limits.body_timeout
        self._deadline = self.loop.call_later(timeout, self._deadline_passed, begun, phase)

    def _deadline_passed(self, begun: int, phase: int) -> None:
        self._deadline = None
        if self._refusal is not None or self._stream is not None or self.transport.is_closing():
            return
        if self._begun == 0:  # connected, and not one byte of a request since
            self._limits.silent.value += 1
            self._refusal = _SILENT
            self.transport.close()
            return
        now = self._phase
        if now == IDLE:
            return  # between requests: the keep-alive timers' business
        if self._begun != begun or now != phase or self._server_busy(now):
            self._arm(self._begun, now)
        elif now == ASGI_BODY and self.cycle.response_started:
            self._refusal = _SILENT  # answered already (a 413): nothing more to say
            self._limits.body_too_slow.counter.value += 1
            self.transport.close()
        else:
            limits = self._limits
            self._refuse(limits.headers_too_slow if now == HEAD else limits.body_too_slow)

    def _server_busy(self, phase: int) -> bool:
        """Whether the request is waiting on the server rather than on the client."""
        if self.flow.read_paused:
            return True
        if phase != HEAD:
            return False
        cycle = self.cycle
        return bool(self._chain) or (cycle is not None and not cycle.response_complete)

    # -- a client that does not read -------------------------------------------------------

    def pause_writing(self) -> None:
        if self._stream is not None:
            return  # the hub cuts a stream that is not read (stream.MAX_UNSENT)
        super().pause_writing()
        self.flow.pause_reading()
        if self._stall is None:
            self._stall = self.loop.call_later(self._limits.send_timeout, self._stalled)

    def resume_writing(self) -> None:
        if self._stream is not None:
            return
        super().resume_writing()
        if self._stall is not None:
            self._stall.cancel()
            self._stall = None
        self.flow.resume_reading()
        held, self._held_back = self._held_back, b""
        if held:
            self.data_received(held)

    def _stalled(self) -> None:
        self._stall = None
        self._limits.stalled.value += 1
        self._refusal = _SILENT  # nothing more is read
        self.transport.abort()  # close() would wait for the client to take what it left

    # -- refusing --------------------------------------------------------------------------

    def _refuse(self, refusal: Refusal, *, in_parser: bool = False) -> None:
        """Answer ``refusal`` after the answers before it, then close; read nothing more."""
        self._refusal = refusal.reply
        refusal.counter.value += 1
        if self._held:
            self._release()
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if in_parser:
            raise _Refused  # uvicorn calls send_400_response, in order behind the chain
        if self._chain:
            waiting = self._new_waiting()
            waiting.reply, waiting.keep_alive, waiting.head_only = refusal.reply, False, False
            self._write_chain()
        else:
            self._put(refusal.reply, False, False)

    def send_400_response(self, msg: str) -> None:
        if self._refusal is None:
            super().send_400_response(msg)
        else:
            self._put(self._refusal, False, False)


def _limits_of(app: Any) -> ConnectionLimits | None:
    """The limits of the :class:`HeadcountApp` uvicorn serves, inside any middleware."""
    for _ in range(8):
        if isinstance(app, HeadcountApp):
            return app.limits
        app = getattr(app, "app", None)
    return None
