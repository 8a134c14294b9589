"""The one application object: an ASGI app whose hot paths can also be answered synchronously.

The hot paths (``GET /counts``, ``POST /`` and ``POST /collect``, and their preflights) are
dispatched here without a framework: the benchmark in ``bench/`` shows Starlette alone would
cost about half the throughput of ``/counts``. Everything else (the System API, health,
metrics) is a Starlette app.

Two ways in, one set of handlers:

- **ASGI** (:meth:`HeadcountApp.__call__`): any ASGI server, and the tests' in-process client.
- **In the parser callback** (:meth:`HeadcountApp.hot_routes` and :meth:`HeadcountApp.reply_now`):
  ``headcount serve`` runs uvicorn with :class:`~headcount.http.protocol.HotPathProtocol`, which
  answers a hot-path request as soon as httptools has parsed it, without a task or the ASGI
  messages; whenever an answer needs I/O first (a key not yet in memory, an ``env_key`` not
  cached), ``reply_now`` says so and the request takes the ASGI way like any other.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from headcount.errors import HeadcountError, NotFound, PayloadTooLarge
from headcount.history.model import LiveReads
from headcount.http.cold import cold_app
from headcount.http.collector import CollectorEndpoint
from headcount.http.counts import CountsEndpoint
from headcount.http.reply import Reply, error_reply, preflight_reply
from headcount.http.stream import Opened, StreamHub
from headcount.http.stream_wire import STREAM_HEADERS
from headcount.runtime import Runtime

__all__ = ["HeadcountApp", "create_app", "create_served_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COLLECT_PATHS = frozenset({"/", "/collect"})
STREAM_PATH = "/counts/stream"

# Answers that depend only on the route, built once.
_FIXED: dict[str, Reply] = {
    "preflight-counts": preflight_reply("GET, OPTIONS"),
    "preflight-collect": preflight_reply("POST, OPTIONS"),
    "missing": error_reply(NotFound("This node does not serve that path (see its --role).")),
}


class ClientGone(Exception):
    """The client went away before sending the whole body."""


class HeadcountApp:
    def __init__(
        self,
        runtime: Runtime,
        *,
        clock: Callable[[], float] = time.time,
        freeze_after_start: bool = False,
    ) -> None:
        """``freeze_after_start``: ``gc.freeze()`` once the lifespan has started the runtime;
        for a server process (``headcount serve``), not for tests that start many apps."""
        self.freeze_after_start = freeze_after_start
        self.runtime = runtime
        self.clock = clock
        settings = runtime.settings
        self.max_body = settings.max_body_bytes
        self.counts: CountsEndpoint | None = (
            CountsEndpoint(runtime) if settings.serves("counts") else None
        )
        # GET /counts/stream: the streams of this process, wherever they are held.
        self.stream: StreamHub | None = (
            StreamHub(runtime, self.counts) if self.counts is not None else None
        )
        self.collector: CollectorEndpoint | None = (
            CollectorEndpoint(runtime) if settings.serves("collector") else None
        )
        self.cold: ASGIApp = cold_app(runtime)
        # Decided once: a live store that answers without I/O (memory) is read and written in
        # the parser callback; one on the network (Redis) is awaited for these two routes.
        self.awaited_routes: frozenset[str] = (
            frozenset()
            if runtime.live.immediate() is not None
            else frozenset({"counts", "collect"})
        )
        self._hot_routes: Mapping[tuple[bytes, bytes], str] | None = None

    @property
    def history(self) -> LiveReads:
        """The history reads (peaks, series, top ids): ``runtime.history``."""
        return self.runtime.history

    # -- shared dispatch -------------------------------------------------------------------

    def _route(self, method: str, path: str) -> str:
        """'counts', 'stream', 'collect', 'preflight-counts', 'preflight-collect', 'missing' or
        'cold'."""
        if path == STREAM_PATH:
            if self.stream is None:
                return "missing"
            if method == "GET":
                return "stream"
            return "preflight-counts" if method == "OPTIONS" else "cold"
        if path == "/counts":
            if self.counts is None:
                return "missing"
            if method in ("GET", "HEAD"):
                return "counts"
            return "preflight-counts" if method == "OPTIONS" else "cold"
        if path in COLLECT_PATHS:
            if method == "POST":
                return "collect" if self.collector is not None else "missing"
            if method == "OPTIONS":
                return "preflight-collect" if self.collector is not None else "missing"
        return "cold"

    def hot_routes(self) -> Mapping[tuple[bytes, bytes], str]:
        """``(method, path) -> route`` for every request the hot path answers: with
        :meth:`reply_now` when :attr:`awaited_routes` does not name the route, else with
        :meth:`reply_later`; ``stream`` opens a stream of :attr:`stream`. Built once and
        shared by every connection (a table per connection cost each idle stream 1.4 KiB)."""
        if self._hot_routes is None:
            self._hot_routes = self._build_hot_routes()
        return self._hot_routes

    def _build_hot_routes(self) -> dict[tuple[bytes, bytes], str]:
        routes: dict[tuple[bytes, bytes], str] = {}
        for path in ("/counts", STREAM_PATH, *COLLECT_PATHS):
            for method in ("GET", "HEAD", "POST", "OPTIONS"):
                route = self._route(method, path)
                if route != "cold":
                    routes[method.encode(), path.encode()] = route
        return routes

    async def reply_later(self, route: str, query_string: bytes, body: bytes) -> Reply:
        """The answer to a hot-path request whose route must await the live store (one of
        :attr:`awaited_routes`): the same handlers as the ASGI way, without its messages."""
        if route == "counts":
            return await self._counts(query_string)
        if len(body) > self.max_body:
            return self._too_large()
        return await self._collect(body)

    def reply_now(self, route: str, query_string: bytes, body: bytes) -> Reply | None:
        """The answer to a hot-path request, or ``None`` when it needs I/O first (the request
        must then be served through :meth:`__call__`)."""
        try:
            if route == "counts":
                assert self.counts is not None
                return self.counts.get_now(query_string, self.clock())
            if route == "collect":
                assert self.collector is not None
                if len(body) > self.max_body:
                    return self._too_large()
                return self.collector.post_now(body, self.clock())
        except HeadcountError as exc:
            return error_reply(exc)
        return _FIXED[route]

    async def _counts(self, query_string: bytes) -> Reply:
        assert self.counts is not None
        try:
            return await self.counts.get(query_string, self.clock())
        except HeadcountError as exc:
            return error_reply(exc)

    async def _collect(self, body: bytes) -> Reply:
        assert self.collector is not None
        try:
            return await self.collector.post(body, self.clock())
        except HeadcountError as exc:
            return error_reply(exc)

    def _too_large(self) -> Reply:
        return error_reply(
            PayloadTooLarge(f"The request body is larger than {self.max_body} bytes.")
        )

    # -- ASGI ----------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            await self.cold(scope, receive, send)
            return
        route = self._route(scope["method"], scope["path"])
        if route == "cold":
            await self.cold(scope, receive, send)
            return
        reply: Reply
        if route == "stream":
            await self._asgi_stream(scope, receive, send)
            return
        if route == "counts":
            reply = await self._counts(scope["query_string"])
        elif route == "collect":
            try:
                body = await self._asgi_body(scope, receive)
            except ClientGone:
                return  # nobody to answer
            reply = self._too_large() if body is None else await self._collect(body)
        else:
            reply = _FIXED[route]
        await _send_reply(scope, send, reply)

    async def open_stream(self, query_string: bytes, now: float) -> Opened | Reply:
        """A stream to attach (:meth:`StreamHub.attach`) once its head and first bytes are
        written, or the error answer ``/counts`` would give."""
        assert self.stream is not None
        try:
            return await self.stream.open(query_string, now)
        except HeadcountError as exc:
            return error_reply(exc)

    async def _asgi_stream(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A counts stream the ASGI way: a task per stream, its events through a queue."""
        hub = self.stream
        assert hub is not None
        now = self.clock()
        opened = await self.open_stream(scope["query_string"], now)
        if not isinstance(opened, Opened):
            await _send_reply(scope, send, opened)
            return
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in STREAM_HEADERS]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": opened.first, "more_body": True})
        sink = _QueueSink()
        hub.attach(opened, sink, now)
        watcher = asyncio.ensure_future(_close_on_disconnect(receive, sink))
        try:
            while (data := await sink.next()) is not None:
                await send({"type": "http.response.body", "body": data, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except OSError:  # uvicorn's ClientDisconnected: the client went away meanwhile
            pass
        finally:
            watcher.cancel()
            hub.detach(opened.stream)

    async def _asgi_body(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body, or None when it is larger than the limit."""
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_body:
                return None
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.runtime.start()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                if self.freeze_after_start:
                    # Everything built so far lives as long as the process: keep the cyclic
                    # garbage collector from walking it again and again under load (perf
                    # showed ~5 % of a fresh-token /counts request in gc_collect_main).
                    gc.freeze()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _send_reply(scope: Scope, send: Send, reply: Reply) -> None:
    status, headers, body_out = reply
    encoded = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    if status != 204:
        # Framed like the hot path's answers: a length, not chunks (and HEAD says the
        # length of the GET body it leaves out).
        encoded.append((b"content-length", b"%d" % len(body_out)))
    if scope["method"] == "HEAD":
        body_out = b""
    await send({"type": "http.response.start", "status": status, "headers": encoded})
    await send({"type": "http.response.body", "body": body_out})


class _QueueSink:
    """A stream's bytes on their way to the ASGI ``send`` of its task."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._size = 0

    def write(self, data: bytes) -> None:
        self._size += len(data)
        self._queue.put_nowait(data)

    def get_write_buffer_size(self) -> int:
        return self._size

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def next(self) -> bytes | None:
        data = await self._queue.get()
        if data is not None:
            self._size -= len(data)
        return data


async def _close_on_disconnect(receive: Receive, sink: _QueueSink) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    sink.close()


def create_app() -> HeadcountApp:
    """Factory for stock uvicorn: ``uvicorn --factory headcount.http.app:create_app``, the
    settings coming from ``HEADCOUNT_*`` variables (what ``headcount serve`` reads too). That
    serves every request the ASGI way; add ``--http headcount.http.protocol:HotPathProtocol
    --no-proxy-headers`` for the hot path as ``headcount serve`` has it (with uvicorn's default
    proxy-headers middleware around the app, the protocol finds no :class:`HeadcountApp` and
    leaves every request to ASGI). One process only: see :mod:`headcount.cli.serve`."""
    from headcount.bootstrap import build_runtime
    from headcount.settings import load_settings

    return HeadcountApp(build_runtime(load_settings()))


def create_served_app() -> HeadcountApp:
    """What each ``headcount serve --workers N`` process serves: :func:`create_app`, frozen
    for the garbage collector once started (see :class:`HeadcountApp`)."""
    from headcount.bootstrap import build_runtime
    from headcount.settings import load_settings

    return HeadcountApp(build_runtime(load_settings()), freeze_after_start=True)
