"""Answers written in request order: the part of :class:`~headcount.http.protocol.
HotPathProtocol` that holds a connection's answers still awaiting the live store (a chain of
:class:`Waiting`, one per request), writes each through the loop's outbox
(:mod:`~headcount.http.wire`) once the ones before it are out, and hands the connection back
to uvicorn after the last. See :mod:`headcount.http.protocol` for when a request takes which
way.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final, TypeVar

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from headcount.errors import StoreUnavailable
from headcount.http.app import HeadcountApp
from headcount.http.reply import CorsPolicy, Reply, error_reply
from headcount.http.wire import INTERNAL_ERROR, head, outbox

__all__ = ["SHUTTING_DOWN", "ChainedProtocol", "Waiting"]

log = logging.getLogger("headcount.http")

T = TypeVar("T")

SHUTTING_DOWN: Final = error_reply(
    StoreUnavailable("The server is shutting down; connect again to reach another node.")
)


class Waiting:
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
        "origin",
        "reply",
        "request",
        "response_complete",
        "running",
        "then_400",
    )

    def __init__(self, keep_alive: bool, head_only: bool, origin: bytes | None) -> None:
        self.keep_alive = keep_alive
        self.head_only = head_only
        self.origin = origin  # the request's Origin, for the CORS header (cors_origins)
        self.response_complete = False
        self.disconnected = False
        self.message_event = asyncio.Event()
        self.then_400: str | None = None  # a bad request came behind this one
        self.reply: Reply | None = None  # the answer, once ready
        self.failed = False  # the handler raised (a bug): a 500, then the connection closes
        self.request: tuple[str, bytes, bytes] | None = None  # (route, query, body) to start
        self.running = False  # its handler is awaiting the store


class ChainedProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, plus a chain of hot-path answers written in order."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._hot_app: HeadcountApp | None = None
        # Answers not yet written, in request order (only with a store that is awaited). A
        # list, not a deque: it is short, and an empty deque costs every connection 624 bytes.
        self._chain: list[Waiting] = []
        self._query = b""  # of the request being parsed
        self._head_only = False
        self._origin: bytes | None = None  # its Origin, read only when cors_origins lists some
        self._cors = CorsPolicy("*")  # the app's, once it is known to be a HeadcountApp
        self._closing = False
        self._outbox = outbox(self.loop)
        # The default headers' bytes, rebuilt when uvicorn replaces the list (every second).
        self._defaults_of: list[tuple[bytes, bytes]] | None = None
        self._defaults = b""

    def _new_waiting(self) -> Waiting:
        waiting = Waiting(self._keeps_alive(), self._head_only, self._origin)
        self._chain.append(waiting)
        self.cycle = waiting  # type: ignore[assignment]  # a stand-in, see Waiting
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

    def _start(self, waiting: Waiting) -> None:
        assert self._hot_app is not None and waiting.request is not None
        route, query, body = waiting.request
        waiting.request = None
        waiting.running = True
        task = self.loop.create_task(self._hot_app.reply_later(route, query, body))
        task.add_done_callback(lambda done: self._replied_later(done, waiting))

    def _result_of(self, task: asyncio.Task[T], waiting: Waiting, what: str) -> T | None:
        """What ``task`` returned for ``waiting``; None, with ``waiting`` marked failed (a
        500, then the connection closes), when it raised (a bug) or was cancelled."""
        waiting.running = False
        if task.cancelled():
            waiting.failed = True
            return None
        if task.exception() is not None:
            log.error("Failed to %s", what, exc_info=task.exception())
            waiting.failed = True
            return None
        return task.result()

    def _replied_later(self, task: asyncio.Task[Reply], waiting: Waiting) -> None:
        waiting.reply = self._result_of(task, waiting, "answer a hot-path request")
        following = next((w for w in self._chain if w.request is not None), None)
        if following is not None and not waiting.failed and not self.transport.is_closing():
            self._start(following)
        self._write_chain()

    def _write_chain(self) -> None:
        """Write the answers at the head of the chain that are ready, in order."""
        chain = self._chain
        last: Waiting | None = None
        while chain and (chain[0].reply is not None or chain[0].failed):
            last = chain.pop(0)
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
            self._put(last.reply, keep_alive, last.head_only, last.origin)
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

    def _put(self, reply: Reply, keep_alive: bool, head_only: bool, origin: bytes | None) -> None:
        status, headers, body = reply
        self._outbox.put(
            self.transport,
            b"%b%b%b%b\r\n%b"
            % (
                self._head(status, headers, origin),
                self._default_headers(),
                b"" if keep_alive else b"connection: close\r\n",
                # A 204 carries no body and must not say how long it is (RFC 9110, 8.6).
                b"" if status == 204 else b"content-length: %d\r\n" % len(body),
                b"" if head_only else body,
            ),
            close=not keep_alive,
        )

    def _head(self, status: int, headers: list[tuple[str, str]], origin: bytes | None) -> bytes:
        """The reply's head, its CORS header set for ``origin`` unless every origin may read."""
        if self._cors.any:
            return head(status, headers)
        return self._cors.head(head(status, headers), origin)

    def _default_headers(self) -> bytes:
        """uvicorn's default headers (``date``, maybe ``server``) as bytes, rebuilt when
        uvicorn replaces their list (every second)."""
        defaults = self.server_state.default_headers
        if defaults is not self._defaults_of:
            self._defaults_of = defaults
            self._defaults = b"".join(b"%b: %b\r\n" % pair for pair in defaults)
        return self._defaults
