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

The request falls back to uvicorn's own way, unchanged, whenever anything is unusual:

- the answer needs I/O first (``reply_now`` returned ``None``: a signing key not yet in
  memory, an ``env_key`` not cached);
- an earlier request on the connection is still being answered (pipelining keeps its order);
- ``Expect: 100-continue``, an ``Upgrade``, a path spelled another way (``/%63ounts``, an
  absolute URL), a body over ``max_body_bytes`` (the ASGI way answers it 413);
- always, with a warning at the first connection, when uvicorn's ``limit_concurrency`` is set
  or the app uvicorn loaded is not a :class:`HeadcountApp` itself (wrapped in middleware:
  uvicorn's proxy headers, or its message logger at log level ``trace``).

What it keeps of uvicorn's behaviour, so that a client cannot tell the two ways apart: the
``date`` (and, if configured, ``server``) header, keep-alive, ``Connection: close`` and
HTTP/1.0, graceful shutdown (a request whose body is arriving is answered, then the connection
closes), a 500 for a bug rather than the parser's 400, and uvicorn's request count (for
``limit_max_requests``). Different: an idle connection is closed after one to two
``timeout_keep_alive`` periods rather than exactly one (see :meth:`_close_if_idle`), and these
requests are not in the access log (``headcount serve`` runs without one).
"""

from __future__ import annotations

import asyncio
import collections
import logging
from typing import Any

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from headcount.http.app import HeadcountApp
from headcount.http.reply import Reply
from headcount.http.wire import INTERNAL_ERROR, head, outbox

__all__ = ["HotPathProtocol"]

log = logging.getLogger("headcount.http")


class _Waiting:
    """One hot-path answer in a connection's chain of answers not yet written (a request that
    awaits the live store, or one pipelined behind it). The last one stands in for uvicorn's
    ``RequestResponseCycle``: uvicorn reads ``response_complete`` (queue a pipelined request or
    start it), sets ``keep_alive`` on shutdown, and ``disconnected`` and ``message_event``
    when the client goes away (:data:`~headcount.http.uvicorn_seam.UVICORN_INTERNALS`)."""

    __slots__ = (
        "disconnected",
        "failed",
        "head_only",
        "keep_alive",
        "message_event",
        "reply",
        "request",
        "response_complete",
        "running",
        "then_400",
    )

    def __init__(self, keep_alive: bool, head_only: bool) -> None:
        self.keep_alive = keep_alive
        self.head_only = head_only
        self.response_complete = False
        self.disconnected = False
        self.message_event = asyncio.Event()
        self.then_400: str | None = None  # a bad request came behind this one
        self.reply: Reply | None = None  # the answer, once ready
        self.failed = False  # the handler raised (a bug): a 500, then the connection closes
        self.request: tuple[str, bytes, bytes] | None = None  # (route, query, body) to start
        self.running = False  # its handler is awaiting the store


class HotPathProtocol(HttpToolsProtocol):
    """One connection. See the module's text for when a request takes which way."""

    _warned = False  # the "hot paths off" warning is given once per process

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        app = self.app
        self._hot_app: HeadcountApp | None = None
        self._routes: dict[tuple[bytes, bytes], str] = {}
        self._awaited: frozenset[str] = frozenset()
        # Answers not yet written, in request order (only with a store that is awaited).
        self._chain: collections.deque[_Waiting] = collections.deque()
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
        self._query = b""
        self._body: list[bytes] = []
        self._size = 0
        self._head_only = False
        self._closing = False
        self._outbox = outbox(self.loop)
        # Requests begun on this connection, and the timer that closes it once idle.
        self._begun = 0
        self._idle_timer: asyncio.TimerHandle | None = None
        # The default headers' bytes, rebuilt when uvicorn replaces the list (every second).
        self._defaults_of: list[tuple[bytes, bytes]] | None = None
        self._defaults = b""

    # -- parser callbacks ------------------------------------------------------------------

    def on_message_begin(self) -> None:
        # uvicorn's own begins the ASGI scope too; that waits for a request taking its way
        # (:meth:`_asgi_scope`): a hot-path answer never reads it.
        self.url = b""
        self.expect_100_continue = False
        self.headers = []
        self._begun += 1

    def on_headers_complete(self) -> None:
        route = None
        cycle = self.cycle
        if (
            self._routes
            and (cycle is None or cycle.response_complete or isinstance(cycle, _Waiting))
            and not self.expect_100_continue
            and not self.parser.should_upgrade()
        ):
            path, _, query = self.url.partition(b"?")
            method = self.parser.get_method()
            route = self._routes.get((method, path))
        if route is None:
            self._route = None
            self._asgi_scope()
            super().on_headers_complete()
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
        route = self._route
        if route is None:
            super().on_message_complete()
            return
        self._route = None
        body = self._body[0] if len(self._body) == 1 else b"".join(self._body)
        self._body = []
        assert self._hot_app is not None
        if route in self._awaited:
            self._reply_later(route, body)
            return
        try:
            reply = self._hot_app.reply_now(route, self._query, body)
        except Exception:
            log.exception("Failed to answer %s", self.url.decode("latin-1", "replace"))
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
        super().on_headers_complete()
        if self._closing:  # shutdown() came while this request was ours: uvicorn closes after it
            self.cycle.keep_alive = False
        for chunk in chunks:
            if chunk:
                super().on_body(chunk)

    def _asgi_scope(self) -> None:
        """Begin the scope as uvicorn's ``on_message_begin`` does, keeping what was parsed."""
        url, headers, expect_100_continue = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.expect_100_continue = url, expect_100_continue
        self.headers = self.scope["headers"] = headers

    def _new_waiting(self) -> _Waiting:
        waiting = _Waiting(self._keeps_alive(), self._head_only)
        self._chain.append(waiting)
        self.cycle = waiting  # type: ignore[assignment]  # a stand-in, see _Waiting
        return waiting

    def _reply_later(self, route: str, body: bytes) -> None:
        """Answer a request whose route awaits the live store, from a task: no ASGI messages,
        no scope. Until its answer is written it holds the connection's chain (a hot request
        pipelined behind it joins the chain; any other one is queued by uvicorn behind it).
        Requests of one connection are handled one after the other, as uvicorn does (a
        pipelined GET must see the POST before it: RFC 9112, 9.3.2)."""
        busy = any(w.request is not None or w.running for w in self._chain)
        waiting = self._new_waiting()
        waiting.request = (route, self._query, body)
        if not busy:
            self._start(waiting)

    def _start(self, waiting: _Waiting) -> None:
        assert self._hot_app is not None and waiting.request is not None
        route, query, body = waiting.request
        waiting.request = None
        waiting.running = True
        task = self.loop.create_task(self._hot_app.reply_later(route, query, body))
        task.add_done_callback(lambda done: self._replied_later(done, waiting))

    def _replied_later(self, task: asyncio.Task[Reply], waiting: _Waiting) -> None:
        waiting.running = False
        if task.cancelled():
            waiting.failed = True
        elif task.exception() is not None:
            log.error("Failed to answer a hot-path request", exc_info=task.exception())
            waiting.failed = True
        else:
            waiting.reply = task.result()
        following = next((w for w in self._chain if w.request is not None), None)
        if following is not None and not waiting.failed and not self.transport.is_closing():
            self._start(following)
        self._write_chain()

    def _write_chain(self) -> None:
        """Write the answers at the head of the chain that are ready, in order."""
        chain = self._chain
        last: _Waiting | None = None
        while chain and (chain[0].reply is not None or chain[0].failed):
            last = chain.popleft()
            last.response_complete = True
            if self.transport.is_closing():
                chain.clear()
                return
            if last.failed:
                self._outbox.flush()
                self.transport.write(INTERNAL_ERROR)
                self.transport.close()
                chain.clear()
                return
            assert last.reply is not None
            keep_alive = last.keep_alive and not self._closing
            self._put(last.reply, keep_alive, last.head_only)
            if not keep_alive:
                self.server_state.total_requests += 1
                chain.clear()
                return
            if chain:
                self.server_state.total_requests += 1
        if last is None or chain:
            return
        if last.then_400 is not None:
            self.server_state.total_requests += 1
            self.send_400_response(last.then_400)
            return
        # uvicorn's own end of a response for the last one: counts it, resumes reading,
        # starts a request it queued behind the chain, or arms its keep-alive timer.
        self.on_response_complete()

    def _keeps_alive(self) -> bool:
        return (
            not self._closing
            and self.parser.get_http_version() != "1.0"
            and self.parser.should_keep_alive()
        )

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

    def _put(self, reply: Reply, keep_alive: bool, head_only: bool) -> None:
        status, headers, body = reply
        defaults = self.server_state.default_headers
        if defaults is not self._defaults_of:
            self._defaults_of = defaults
            self._defaults = b"".join(b"%b: %b\r\n" % pair for pair in defaults)
        self._outbox.put(
            self.transport,
            b"%b%b%b%b\r\n%b"
            % (
                head(status, headers),
                self._defaults,
                b"" if keep_alive else b"connection: close\r\n",
                # A 204 carries no body and must not say how long it is (RFC 9110, 8.6).
                b"" if status == 204 else b"content-length: %d\r\n" % len(body),
                b"" if head_only else body,
            ),
            close=not keep_alive,
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
        if self.transport.is_closing():
            return
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
        super().connection_lost(exc)

    # -- shutdown --------------------------------------------------------------------------

    def send_400_response(self, msg: str) -> None:
        cycle: object = self.cycle
        if self._chain and cycle is self._chain[-1]:
            # Good requests before the bad one are still awaiting the store: theirs first.
            self._chain[-1].then_400 = msg
            return
        self._outbox.flush()  # the answers to the good requests before the bad one go first
        super().send_400_response(msg)

    def shutdown(self) -> None:
        self._outbox.flush()  # uvicorn may close the connection now: answers first
        if self._route is not None:
            # A hot-path request is arriving: answer it, then close.
            self._closing = True
            return
        super().shutdown()
