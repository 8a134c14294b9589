"""The one application object, served over ASGI (tests, any server) or RSGI (granian).

The hot paths (``GET /counts``, ``POST /`` and ``POST /collect``) are dispatched here without a
framework: the benchmark in ``bench/`` shows Starlette alone would cost about half the
throughput of ``/counts``. Everything else (the System API, health) is a Starlette app; under
RSGI it is reached through the small bridge :func:`_rsgi_to_asgi`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from headcount.errors import BadRequest, HeadcountError, NotFound, PayloadTooLarge
from headcount.http.cold import cold_app
from headcount.http.collector import CollectorEndpoint
from headcount.http.counts import CountsEndpoint
from headcount.http.reply import Reply, error_reply, preflight_reply
from headcount.runtime import Runtime

__all__ = ["HeadcountApp", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

COLLECT_PATHS = frozenset({"/", "/collect"})

# Answers that depend only on the route, built once.
_FIXED: dict[str, Reply] = {
    "preflight-counts": preflight_reply("GET, OPTIONS"),
    "preflight-collect": preflight_reply("POST, OPTIONS"),
    "missing": error_reply(NotFound("This node does not serve that path (see its --role).")),
}


class HeadcountApp:
    def __init__(self, runtime: Runtime, *, clock: Callable[[], float] = time.time) -> None:
        self.runtime = runtime
        self.clock = clock
        settings = runtime.settings
        self.max_body = settings.max_body_bytes
        self.counts: CountsEndpoint | None = (
            CountsEndpoint(runtime) if settings.serves("counts") else None
        )
        self.collector: CollectorEndpoint | None = (
            CollectorEndpoint(runtime) if settings.serves("collector") else None
        )
        self.cold: ASGIApp = cold_app(runtime)

    # -- shared dispatch -------------------------------------------------------------------

    def _route(self, method: str, path: str) -> str:
        """'counts', 'collect', 'preflight-counts', 'preflight-collect', 'missing' or 'cold'."""
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
        if route == "counts":
            reply = await self._counts(scope["query_string"])
        elif route == "collect":
            body = await self._asgi_body(scope, receive)
            reply = self._too_large() if body is None else await self._collect(body)
        else:
            reply = _FIXED[route]
        status, headers, body_out = reply
        if scope["method"] == "HEAD":
            body_out = b""
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers],
            }
        )
        await send({"type": "http.response.body", "body": body_out})

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
                raise BadRequest("The client went away before sending the whole body.")
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
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.runtime.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- RSGI (granian) ------------------------------------------------------------------

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.runtime.start())

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        loop.run_until_complete(self.runtime.stop())

    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        route = self._route(scope.method, scope.path)
        if route == "counts":
            reply = await self._counts(scope.query_string.encode("latin-1"))
        elif route == "collect":
            body = await self._rsgi_body(scope, proto)
            reply = self._too_large() if body is None else await self._collect(body)
        elif route == "cold":
            await _rsgi_to_asgi(self.cold, scope, proto)
            return
        else:
            reply = _FIXED[route]
        status, headers, body_out = reply
        proto.response_bytes(status, headers, b"" if scope.method == "HEAD" else body_out)

    async def _rsgi_body(self, scope: Any, proto: Any) -> bytes | None:
        length = scope.headers.get("content-length")
        if length is not None and length.isdigit():
            if int(length) > self.max_body:
                return None
            body: bytes = await proto()
            return body
        chunks: list[bytes] = []
        size = 0
        async for chunk in proto:
            size += len(chunk)
            if size > self.max_body:
                return None
            chunks.append(chunk)
        return b"".join(chunks)


async def _rsgi_to_asgi(app: ASGIApp, scope: Any, proto: Any) -> None:
    """Serve one RSGI request with an ASGI app (the cold paths only)."""
    host, _, port = scope.client.rpartition(":")
    server_host, _, server_port = scope.server.rpartition(":")
    asgi_scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": scope.http_version,
        "method": scope.method,
        "scheme": scope.scheme,
        "path": scope.path,
        "raw_path": scope.path.encode("utf-8"),
        "query_string": scope.query_string.encode("latin-1"),
        "root_path": "",
        "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in scope.headers.items()],
        "client": (host, int(port) if port.isdigit() else 0),
        "server": (server_host, int(server_port) if server_port.isdigit() else 0),
        "state": {},
    }
    body_sent = False

    async def receive() -> Message:
        nonlocal body_sent
        if not body_sent:
            body_sent = True
            return {"type": "http.request", "body": await proto(), "more_body": False}
        await proto.client_disconnect()
        return {"type": "http.disconnect"}

    status = 500
    headers: list[tuple[str, str]] = []
    stream: Any = None

    async def send(message: Message) -> None:
        nonlocal status, headers, stream
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
            ]
        elif message["type"] == "http.response.body":
            chunk = message.get("body", b"")
            more = message.get("more_body", False)
            if stream is None and not more:
                proto.response_bytes(status, headers, chunk)
                return
            if stream is None:
                stream = proto.response_stream(status, headers)
            if chunk:
                await stream.send_bytes(chunk)

    await app(asgi_scope, receive, send)


def create_app() -> HeadcountApp:
    """Factory for servers (``granian --factory headcount.http:create_app``): settings come
    from ``HEADCOUNT_*`` variables, exactly as ``headcount serve`` sets them."""
    from headcount.bootstrap import build_runtime
    from headcount.settings import load_settings

    return HeadcountApp(build_runtime(load_settings()))
