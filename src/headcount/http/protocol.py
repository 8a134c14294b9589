"""uvicorn's httptools protocol, answering Headcount's hot paths in the parser's callback.

``headcount serve`` runs uvicorn with ``http=HotPathProtocol``. For most requests it *is*
uvicorn's :class:`~uvicorn.protocols.http.httptools_impl.HttpToolsProtocol`: a task per
request, the ASGI messages, the Starlette app behind. A request for a hot path (``GET``/``HEAD
/counts``, ``POST /`` and ``/collect``, their ``OPTIONS`` preflights) is instead answered as
soon as httptools has parsed its last byte, by :meth:`HeadcountApp.reply_now
<headcount.http.app.HeadcountApp.reply_now>`, written to the transport in the same callback:
no task, no ASGI messages, no scope. ``bench/`` shows why: on one core this is what lets
``/counts`` and the collector reach the throughput the issue asks for (the ASGI way costs
about as much again as the handlers themselves).

With a live store on the network (Redis; :attr:`HeadcountApp.awaited_routes
<headcount.http.app.HeadcountApp.awaited_routes>`, decided once when the app is built),
``/counts`` and the collector are answered by
:meth:`HeadcountApp.reply_later <headcount.http.app.HeadcountApp.reply_later>` from a small
task instead, still without ASGI messages: answers are chained per connection and written in
request order, and a connection's requests are handled one after another.

``GET /counts/stream`` is opened from a task the same way (verify, read), and then the
connection's transport *is* the stream: :class:`~headcount.http.stream.StreamHub` writes its
events to it directly, with no task and nothing else per connection while the stream lasts
(what lets one process hold tens of thousands of them: ``python -m bench stream``). Bytes the
client sends meanwhile are ignored; its close, or the server's shutdown, ends the stream.

The request falls back to uvicorn's own way, unchanged, whenever anything is unusual:

- the answer needs I/O first (``reply_now`` returned ``None``: a signing key not yet in
  memory, an ``env_key`` not cached);
- an earlier request on the connection is still being answered (pipelining keeps its order);
- ``Expect: 100-continue``, an ``Upgrade``, a path spelled another way (``/%63ounts``, an
  absolute URL), a body over ``max_body_bytes`` (the ASGI way answers it 413);
- always, with a warning at the first connection, when uvicorn's ``limit_concurrency`` is set
  (``headcount serve`` leaves it unset: ``--max-connections`` is this protocol's own) or the
  app uvicorn loaded is not a :class:`HeadcountApp` itself (wrapped in middleware: uvicorn's
  proxy headers, or its message logger at log level ``trace``).

Both ways are held to the same limits on what one client may cost (head size, time to send a
request, connections, bodies in flight, answers left unread): :mod:`~headcount.http.
protocol_limits`, which this class extends; the parser callbacks here keep the phase it reads.

What it keeps of uvicorn's behaviour, so that a client cannot tell the two ways apart: the
``date`` (and, if configured, ``server``) header, keep-alive, ``Connection: close`` and
HTTP/1.0, graceful shutdown (a request whose body is arriving is answered, then the connection
closes), a 500 for a bug rather than the parser's 400, and uvicorn's request count (for
``limit_max_requests``). Different: an idle connection is closed after one to two
``timeout_keep_alive`` periods rather than exactly one (see :meth:`_close_if_idle`), these
requests are never in uvicorn's access log (they are in Headcount's when ``access_log`` is on:
:mod:`headcount.http.protocol_access`), a request the parser refuses gets uvicorn's 400 in
Mux's envelope (with CORS on a public path), and a request on uvicorn's way whose client reset
the connection ends quietly (:class:`~headcount.http.wire.WritesWhileOpen`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Mapping
from typing import Any, Final

from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from headcount.http.access_log import redact_target
from headcount.http.app import PUBLIC_PATHS, HeadcountApp
from headcount.http.protocol_chain import SHUTTING_DOWN, Waiting
from headcount.http.protocol_limits import BODY, HEAD, IDLE, LimitedProtocol
from headcount.http.reply import Reply
from headcount.http.stream import Opened, Stream
from headcount.http.stream_wire import STREAM_HEADERS
from headcount.http.wire import INTERNAL_ERROR, WritesWhileOpen, head, unparsable

__all__ = ["HotPathProtocol"]

log = logging.getLogger("headcount.http")

_NO_ROUTES: Final[Mapping[tuple[bytes, bytes], str]] = {}
_NO_HEADERS: Final[list[tuple[bytes, bytes]]] = []  # never appended to: nothing is parsed
_NO_PIPELINE: Final[collections.deque[Any]] = collections.deque(maxlen=0)  # stays empty
_PUBLIC_PATHS: Final = frozenset(path.encode() for path in PUBLIC_PATHS)


class HotPathProtocol(LimitedProtocol):
    """One connection. See the module's text for when a request takes which way."""

    _warned = False  # the "hot paths off" warning is given once per process

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)  # uvicorn's (config, server_state, app_state, loop)
        app = self.app
        self._routes: Mapping[tuple[bytes, bytes], str] = _NO_ROUTES
        self._awaited: frozenset[str] = frozenset()
        if isinstance(app, HeadcountApp) and self.limit_concurrency is None:
            self._hot_app = app
            self._routes = app.hot_routes()
            self._awaited = app.awaited_routes
            self._max_body = app.max_body
        elif not HotPathProtocol._warned:
            HotPathProtocol._warned = True
            log.warning(
                "Hot paths off: every request takes the ASGI way, because %s. Serve a "
                "HeadcountApp unwrapped (--no-proxy-headers, a log level above trace) and "
                "without --limit-concurrency to answer them in the parser callback.",
                "limit_concurrency is set"
                if self.limit_concurrency is not None
                else f"the app is a {type(app).__name__}, not a HeadcountApp",
            )
        # The request being answered here; None while it takes uvicorn's way.
        self._route: str | None = None
        self._body: list[bytes] = []
        # The timer that closes the connection once idle (requests begun: self._begun).
        self._idle_timer: asyncio.TimerHandle | None = None
        # The counts stream this connection carries, once its head is written.
        self._stream: Stream | None = None

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        # uvicorn's own begins the ASGI scope too; that waits for a request taking its way
        # (:meth:`_asgi_scope`): a hot-path answer never reads it.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._begun += 1
        self._phase = HEAD  # for the limits (protocol_limits.py), as are _head_size and _size
        self._head_size = 0

    def on_headers_complete(self) -> None:
        self._phase = BODY
        route = None
        cycle = self.cycle
        if (
            self._routes
            and (cycle is None or cycle.response_complete or isinstance(cycle, Waiting))
            and not self.expect_100_continue
            and not self.parser.should_upgrade()
        ):
            path, _, query = self.url.partition(b"?")
            method = self.parser.get_method()
            route = self._routes.get((method, path))
        if route is None:
            self._route = None
            self._asgi_scope()
            self._asgi_headers_complete()
            return
        self._route = route
        self._query = query
        self._head_only = method == b"HEAD"
        self._body = []
        self._size = 0

    def on_body(self, body: bytes) -> None:
        if self._route is None:
            super().on_body(body)
            return
        self._body.append(body)
        self._size += len(body)
        if self._size > self._max_body:
            self._take_asgi_way()  # it answers 413, and reads the rest of the body away

    def on_message_complete(self) -> None:
        self._phase = IDLE
        route = self._route
        if route is None:
            super().on_message_complete()
            return
        self._route = None
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        assert self._hot_app is not None
        if route == "stream":
            self._open_stream(body)
            return
        if route in self._awaited:
            self._reply_later(route, body)
            return
        try:
            reply = self._hot_app.reply_now(route, self._query, body)
        except Exception:
            log.exception("Failed to answer %s", redact_target(self.url))  # never a token
            self._outbox.flush()
            self.transport.write(INTERNAL_ERROR)
            self.transport.close()
            return
        if reply is None:
            self._take_asgi_way(body)
            super().on_message_complete()
            return
        if self._chain:  # behind an answer still awaiting the store
            waiting = self._new_waiting()
            waiting.reply = reply
            return
        self._write(reply)

    # -- the two ways out ------------------------------------------------------------------

    def _take_asgi_way(self, body: bytes | None = None) -> None:
        """Hand the request being parsed to uvicorn, as if it had never been looked at."""
        chunks = self._body if body is None else [body]
        self._route = None
        self._body = []
        self._asgi_scope()
        self._asgi_headers_complete()
        if self._closing:  # shutdown() came while this request was ours: uvicorn closes after it
            self.cycle.keep_alive = False
        for chunk in chunks:
            if chunk:
                super().on_body(chunk)

    def _asgi_headers_complete(self) -> None:
        """uvicorn's ``on_headers_complete``: the request's cycle, whose writes go through
        :class:`WritesWhileOpen`."""
        super().on_headers_complete()
        cycle = self.cycle
        if isinstance(cycle, RequestResponseCycle) and cycle.transport is self.transport:
            cycle.transport = WritesWhileOpen(self.transport)  # type: ignore[assignment]

    def _asgi_scope(self) -> None:
        """Begin the scope as uvicorn's ``on_message_begin`` does, keeping what was parsed."""
        url, headers, expect_100_continue = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect_100_continue
        self.headers = self.scope["headers"] = headers

    def _open_stream(self, body: bytes) -> None:
        """``GET /counts/stream``: verify and read in a task; then the head and the first
        events, and the stream is held by :class:`~headcount.http.stream.StreamHub` with this
        connection's transport as its sink (no task while it lasts). Until then the request
        holds the connection's chain like an awaited answer; an error is answered like one."""
        if self._chain:  # pipelined behind awaited answers: uvicorn's way keeps the order
            self._take_asgi_way(body)
            super().on_message_complete()
            return
        assert self._hot_app is not None
        waiting = self._new_waiting()
        waiting.running = True
        now = self._hot_app.clock()
        task = self.loop.create_task(self._hot_app.open_stream(self._query, now))
        task.add_done_callback(lambda done: self._stream_opened(done, waiting, now))

    def _stream_opened(
        self, task: asyncio.Task[Opened | Reply], waiting: Waiting, now: float
    ) -> None:
        result = self._result_of(task, waiting, "open a counts stream")
        if not isinstance(result, Opened):
            waiting.reply = result  # an error answer, or None when it failed
        elif self.transport.is_closing():
            waiting.failed = True  # nobody to write to: the chain is dropped
        elif self._closing:
            waiting.reply = SHUTTING_DOWN  # a 503: the browser reconnects to another node
        else:
            # Written at once, not through the outbox: the hub writes to the transport
            # directly from now on, and the head must go first.
            self._outbox.flush()
            self.transport.write(
                head(200, STREAM_HEADERS)
                + self._default_headers()
                + b"connection: close\r\n\r\n"
                + result.first
            )
            self.server_state.total_requests += 1
            self._stream = result.stream
            assert self._hot_app is not None and self._hot_app.stream is not None
            self._hot_app.stream.attach(result, self.transport, now)
            self._hold_only_the_stream()
            return
        self._write_chain()

    def _hold_only_the_stream(self) -> None:
        """Drop what this connection kept of its request: from now on it is a transport the
        hub writes to, and one process holds tens of thousands (``python -m bench stream``).
        The parser goes as uvicorn's own ``connection_lost`` lets it go: nothing more is
        parsed (:meth:`data_received`)."""
        self._chain.clear()
        self.cycle = None  # type: ignore[assignment]  # uvicorn's "no request in progress"
        self.headers = _NO_HEADERS
        self.url = self._query = b""
        self.parser = None  # type: ignore[assignment]
        # uvicorn's flow control and request queue serve its own responses, not this one;
        # its connection_lost skips a flow that is None (an Event and two deques: ~1.4 KiB).
        self.flow = None  # type: ignore[assignment]
        self.pipeline = _NO_PIPELINE

    def data_received(self, data: bytes) -> None:
        if self._stream is not None:
            return  # a stream's client has nothing more to say; its close still ends it
        super().data_received(data)

    def _write(self, reply: Reply) -> None:
        keep_alive = self._keeps_alive()
        self._put(reply, keep_alive, self._head_only)
        self.server_state.total_requests += 1
        if not keep_alive:
            return
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_later(
                self.timeout_keep_alive, self._close_if_idle, self._begun
            )

    # -- idle connections --------------------------------------------------------------------

    def _close_if_idle(self, begun: int) -> None:
        """Close the connection if no request began since the timer was set.

        uvicorn arms a timer after every answer and cancels it on every read; at the rates
        of the hot paths that is a measurable share of each request, so this way keeps one
        timer that looks back: an idle connection is closed after one to two
        ``timeout_keep_alive`` periods instead of exactly one.
        """
        self._idle_timer = None
        if self.transport.is_closing() or self._stream is not None:
            return  # a stream is never idle: the hub keeps it alive
        if self._begun != begun or self._route is not None:
            self._idle_timer = self.loop.call_later(
                self.timeout_keep_alive, self._close_if_idle, self._begun
            )
        elif self.cycle is None or self.cycle.response_complete:
            self.transport.close()
        # else: a request is on uvicorn's way, and uvicorn times the connection after it.

    def connection_lost(self, exc: Exception | None) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if self._stream is not None and self._hot_app is not None:
            assert self._hot_app.stream is not None
            self._hot_app.stream.detach(self._stream)
        super().connection_lost(exc)

    # -- shutdown --------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        cycle: object = self.cycle
        if self._chain and cycle is self._chain[-1]:
            # Good requests before the bad one are still awaiting the store: theirs first.
            self._chain[-1].then_400 = msg
            return
        self._outbox.flush()  # the answers to the good requests before the bad one go first
        if self._refusal is not None:
            # A limit's refusal (LimitedProtocol: a head too large ends here) answers instead.
            super().send_400_response(msg)
            return
        if self.transport.is_closing():
            return
        # uvicorn's own is text/plain: the envelope instead (see wire.unparsable).
        path = self.url.partition(b"?")[0]
        self.transport.write(unparsable(msg, self._default_headers(), cors=path in _PUBLIC_PATHS))
        self.transport.close()

    def shutdown(self) -> None:
        if self._hot_app is not None:
            self._hot_app.runtime.shutting_down = True  # /readyz: 503 while requests drain
        self._outbox.flush()  # uvicorn may close the connection now: answers first
        if self._stream is not None:
            self.transport.close()  # the browser reconnects, to another node
            return
        if self._route is not None:
            # A hot-path request is arriving: answer it, then close.
            self._closing = True
            return
        super().shutdown()
