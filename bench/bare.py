"""The pure-Python ceiling: a bare uvloop + httptools ``asyncio.Protocol`` server.

No framework, no routing, no ASGI layer: ``GET`` (any path) answers a constant counts body
with the same headers Headcount's ``/counts`` sends, ``POST`` (any path) reads the whole body,
``orjson.loads`` it and answers 200 with a small JSON. With ``--verify-key PEM``, ``GET`` first
verifies the query's token the raw way (:func:`bench.tokens.raw_verify`), without a cache: the
ceiling of the fresh-token case. With ``--stream``, ``GET /counts/stream`` is an SSE stream held
open (``retry:``, then a counts event at once, keep-alive comments every 15 s) and every
``POST`` that changes its one counter (``views`` 0 after a body naming ``viewend``, else 1) writes
the new event to every stream before the next read: the floor of the ``stream`` benchmark.
Whatever Headcount reaches is compared with what this server reaches on the same core in the
same run.

Run: ``python -m bench.bare --port 41080`` (``--stream`` for the SSE floor).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import time
from pathlib import Path
from typing import ClassVar, cast

import httptools
import orjson
import uvloop
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.tokens import raw_verify

__all__ = [
    "COUNTS_BODY",
    "BareProtocol",
    "BareStreamProtocol",
    "BareVerifyProtocol",
    "StreamHub",
    "response",
    "serve",
]

COUNTS_BODY = b'{"data":[{"views":95,"viewers":94,"updated_at":"2021-09-28T18:21:19Z"}]}'
COLLECT_BODY = b'{"accepted":5,"rejected":[]}'


def response(status: bytes, body: bytes, extra: bytes = b"") -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\n"
        b"content-type: application/json\r\n"
        b"access-control-allow-origin: *\r\n"
        + extra
        + b"content-length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


GET_REPLY = response(b"200 OK", COUNTS_BODY, b"cache-control: public, max-age=1\r\n")
POST_REPLY = response(b"200 OK", COLLECT_BODY)
BAD_REPLY = response(b"400 Bad Request", b'{"error":{"type":"invalid_parameters"}}')


class BareProtocol(asyncio.Protocol):
    """One connection: httptools calls the ``on_*`` methods while ``data_received`` feeds it."""

    def __init__(self) -> None:
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.body: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            self._send(BAD_REPLY)
            self._close()

    def on_message_begin(self) -> None:
        self.body = []

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if self.parser.get_method() == b"POST":
            try:
                orjson.loads(b"".join(self.body))
            except orjson.JSONDecodeError:
                self._send(BAD_REPLY)
            else:
                self._send(POST_REPLY)
        else:
            self._send(GET_REPLY)
        if not self.parser.should_keep_alive():
            self._close()

    def _send(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()
            self.transport = None


class _UrlProtocol(BareProtocol):
    """:class:`BareProtocol` that also keeps each request's URL (the plain ceiling does not
    ask httptools for it)."""

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url


class BareVerifyProtocol(_UrlProtocol):
    """The ceiling of (b): ``GET`` runs :func:`bench.tokens.raw_verify` on the ``token`` of
    the query (no cache: every request pays the whole verify), then answers as above."""

    public_key: rsa.RSAPublicKey

    def on_message_complete(self) -> None:
        if self.parser.get_method() == b"GET":
            token = self.url.partition(b"token=")[2].decode("ascii")
            try:
                raw_verify(token, self.public_key)
            except (ValueError, InvalidSignature):
                self._send(BAD_REPLY)
                self._close()
                return
        super().on_message_complete()


# Framed as ``headcount serve`` frames its streams: no chunking, the connection ends the body.
STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream\r\n"
    b"cache-control: no-store\r\n"
    b"access-control-allow-origin: *\r\n"
    b"connection: close\r\n\r\n"
)
KEEP_ALIVE_SECONDS = 15.0


class StreamHub:
    """The one counter of the SSE floor and the transports of its open streams."""

    def __init__(self) -> None:
        self.views = 0
        self.streams: set[asyncio.Transport] = set()

    def event(self) -> bytes:
        body = orjson.dumps(
            {"data": [{"views": self.views, "viewers": self.views, "updated_at": "2021-09-28"}]}
        )
        return b"id: %d\ndata: %s\n\n" % (time.time_ns() // 1_000_000, body)

    def change(self, views: int) -> None:
        if views == self.views:
            return
        self.views = views
        frame = self.event()
        for transport in self.streams:
            transport.write(frame)

    def keep_alive(self) -> None:
        frame = b": keep-alive\n\n"
        for transport in self.streams:
            transport.write(frame)


class BareStreamProtocol(_UrlProtocol):
    """The SSE floor: ``GET /counts/stream`` joins :attr:`hub`, a ``POST`` changes its counter
    (after answering), anything else is answered as by :class:`BareProtocol`."""

    hub: ClassVar[StreamHub]

    def on_message_complete(self) -> None:
        method = self.parser.get_method()
        if method == b"GET" and self.url.startswith(b"/counts/stream") and self.transport:
            self._send(STREAM_HEAD + b"retry: 3000\n\n" + self.hub.event())
            self.hub.streams.add(self.transport)
            return
        super().on_message_complete()
        if method == b"POST":
            self.hub.change(0 if b"viewend" in b"".join(self.body) else 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.hub.streams.discard(self.transport)
            self.transport = None


async def _keep_alive(hub: StreamHub) -> None:
    while True:
        await asyncio.sleep(KEEP_ALIVE_SECONDS)
        hub.keep_alive()


async def serve(
    host: str, port: int, verify_key: Path | None = None, *, stream: bool = False
) -> None:
    protocol: type[BareProtocol] = BareProtocol
    background: asyncio.Task[None] | None = None
    if stream:
        BareStreamProtocol.hub = StreamHub()
        protocol = BareStreamProtocol
        background = asyncio.create_task(_keep_alive(BareStreamProtocol.hub))
    elif verify_key is not None:
        public_key = serialization.load_pem_public_key(verify_key.read_bytes())
        assert isinstance(public_key, rsa.RSAPublicKey)
        BareVerifyProtocol.public_key = public_key
        protocol = BareVerifyProtocol
    loop = asyncio.get_running_loop()
    server = await loop.create_server(protocol, host, port, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    if background is not None:
        background.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--verify-key",
        type=Path,
        help="a PEM public key: GET verifies the query's token with it (the ceiling of (b))",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="GET /counts/stream holds an SSE stream; a POST changes the counter (the SSE floor)",
    )
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.verify_key, stream=args.stream))


if __name__ == "__main__":
    main()
