"""The simulator's keep-alive HTTP/1.1 sender against small real servers on 127.0.0.1: the framings
a server may answer with, connection reuse, and the errors the runner counts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import pytest

from headcount.sim import KeepAliveSender, ProtocolError
from tests.e2e.conftest import free_port

pytestmark = pytest.mark.anyio

Answer = Callable[[bytes], bytes]  # request body -> the raw response


@asynccontextmanager
async def server(answer: Answer) -> AsyncIterator[tuple[str, list[bytes], list[int]]]:
    """A server that reads each POST and writes ``answer(body)``; it records the bodies and
    counts connections. Closes the connection when the response says ``Connection: close``."""
    bodies: list[bytes] = []
    connections = [0]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections[0] += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                bodies.append(body)
                response = answer(body)
                writer.write(response)
                await writer.drain()
                if b"connection: close" in response.lower() or response.startswith(b"HTTP/1.0"):
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/", bodies, connections
    finally:
        listener.close()
        await listener.wait_closed()


def fixed(status: int, body: bytes, extra: bytes = b"") -> Answer:
    return lambda _: (
        f"HTTP/1.1 {status} X\r\nContent-Length: {len(body)}\r\n".encode() + extra + b"\r\n" + body
    )


async def post_many(sender: KeepAliveSender, count: int) -> list[tuple[int, bytes]]:
    return [await sender.post(f"body {i}".encode(), "text/plain") for i in range(count)]


async def test_a_content_length_answer_and_one_reused_connection() -> None:
    async with server(fixed(200, b'{"accepted":1,"rejected":[]}')) as (url, bodies, connections):
        sender = KeepAliveSender(url, connections=4)
        answers = await post_many(sender, 5)
        await sender.aclose()
    assert answers == [(200, b'{"accepted":1,"rejected":[]}')] * 5
    assert bodies == [f"body {i}".encode() for i in range(5)]
    assert connections == [1], "sequential POSTs share one keep-alive connection"


async def test_parallel_posts_use_at_most_the_connections_allowed() -> None:
    async with server(fixed(200, b"ok")) as (url, bodies, connections):
        sender = KeepAliveSender(url, connections=3)
        answers = await asyncio.gather(*(sender.post(b"x", "text/plain") for _ in range(30)))
        await sender.aclose()
    assert answers == [(200, b"ok")] * 30 and len(bodies) == 30
    assert 1 <= connections[0] <= 3


async def test_a_chunked_answer() -> None:
    chunked = (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    )
    async with server(lambda _: chunked) as (url, _, connections):
        sender = KeepAliveSender(url)
        assert await post_many(sender, 2) == [(200, b"hello world")] * 2
        await sender.aclose()
    assert connections == [1]


async def test_connection_close_and_http10_answers_open_a_new_connection() -> None:
    closing = fixed(500, b"nope", b"Connection: close\r\n")
    async with server(closing) as (url, _, connections):
        sender = KeepAliveSender(url)
        assert await post_many(sender, 2) == [(500, b"nope")] * 2
    assert connections == [2]
    http10 = b"HTTP/1.0 200 OK\r\n\r\nuntil close"
    async with server(lambda _: http10) as (url, _, connections):
        sender = KeepAliveSender(url)
        assert await post_many(sender, 2) == [(200, b"until close")] * 2
    assert connections == [2]


async def test_garbage_is_a_protocol_error_and_a_closed_port_an_os_error() -> None:
    async with server(lambda _: b"SSH-2.0-OpenSSH\r\n\r\n") as (url, _, _connections):
        with pytest.raises(ProtocolError, match="status line"):
            await KeepAliveSender(url).post(b"x", "text/plain")
    with pytest.raises(OSError):
        await KeepAliveSender(f"http://127.0.0.1:{free_port()}/").post(b"x", "text/plain")


async def test_a_silent_server_times_out() -> None:
    stalled = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await stalled.wait()
        writer.close()

    listener = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TimeoutError):
            await KeepAliveSender(f"http://127.0.0.1:{port}/", timeout=0.2).post(b"x", "text/plain")
    finally:
        stalled.set()
        listener.close()
        await listener.wait_closed()


def test_only_http_urls_are_accepted() -> None:
    with pytest.raises(ValueError, match="http"):
        KeepAliveSender("ftp://127.0.0.1/")
