"""The pure-Python ceiling: a bare uvloop + httptools ``asyncio.Protocol`` server.

No framework, no routing, no ASGI layer: ``GET`` (any path) answers a constant counts body
with the same headers Headcount's ``/counts`` sends, ``POST`` (any path) reads the whole body,
``orjson.loads`` it and answers 200 with a small JSON. With ``--verify-key PEM``, ``GET`` first
verifies the query's token the raw way (:func:`bench.tokens.raw_verify`), without a cache: the
ceiling of the fresh-token case. Whatever Headcount reaches is compared with what this server
reaches on the same core in the same run.

Run: ``python -m bench.bare --port 41080``.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path
from typing import cast

import httptools
import orjson
import uvloop
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.tokens import raw_verify

__all__ = ["COUNTS_BODY", "BareProtocol", "BareVerifyProtocol", "response", "serve"]

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


class BareVerifyProtocol(BareProtocol):
    """The ceiling of (b): ``GET`` runs :func:`bench.tokens.raw_verify` on the ``token`` of
    the query (no cache: every request pays the whole verify), then answers as above."""

    public_key: rsa.RSAPublicKey

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.url = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

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


async def serve(host: str, port: int, verify_key: Path | None = None) -> None:
    protocol: type[BareProtocol] = BareProtocol
    if verify_key is not None:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--verify-key",
        type=Path,
        help="a PEM public key: GET verifies the query's token with it (the ceiling of (b))",
    )
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port, args.verify_key))


if __name__ == "__main__":
    main()
