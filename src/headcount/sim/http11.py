"""POSTs over a few keep-alive HTTP/1.1 connections on asyncio streams: the simulator's sender.

Why not httpx here: measured against a local ``headcount serve``, httpx's connection pool cost
about 2 ms of CPU per POST (a pool scan per request, and httpcore's per-request async-library
sniffing), so one simulator process topped out near 500 POSTs/s while the server's single worker
still had most of its core free. This client does only what a beacon sender needs — a POST with
a body, a status and a body back, ``Content-Length`` or chunked — at a small fraction of that.
httpx still drives the runner in the in-process tests (:func:`headcount.sim.runner.httpx_sender`).
"""

from __future__ import annotations

import asyncio
import ssl
from urllib.parse import urlsplit

__all__ = ["KeepAliveSender", "ProtocolError"]

MAX_RESPONSE_BYTES = 1 << 20  # the collector answers with a small JSON object


class ProtocolError(ConnectionError):
    """The server's answer was not HTTP/1.1 this client can read."""


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        self.writer.close()


class KeepAliveSender:
    """``await sender.post(body, content_type)`` -> ``(status, body)``; at most ``connections``
    requests in flight, each on a connection of its own that is reused afterwards."""

    def __init__(self, url: str, *, connections: int = 16, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {url!r}")
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl = ssl.create_default_context() if parts.scheme == "https" else None
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.authority = parts.netloc
        self.timeout = timeout
        self._slots = asyncio.Semaphore(connections)
        self._idle: list[_Connection] = []

    async def post(self, body: bytes, content_type: str) -> tuple[int, bytes]:
        async with self._slots:
            connection = self._idle.pop() if self._idle else None
            if connection is None:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.host, self.port, ssl=self.ssl), self.timeout
                )
                connection = _Connection(reader, writer)
            try:
                status, answer, keep = await asyncio.wait_for(
                    self._exchange(connection, body, content_type), self.timeout
                )
            except BaseException:
                connection.close()
                raise
            if keep:
                self._idle.append(connection)
            else:
                connection.close()
            return status, answer

    async def _exchange(
        self, connection: _Connection, body: bytes, content_type: str
    ) -> tuple[int, bytes, bool]:
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: {self.authority}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        connection.writer.write(head.encode("latin-1") + body)
        await connection.writer.drain()
        reader = connection.reader
        status_line = await reader.readline()
        fields = status_line.split(b" ", 2)
        if len(fields) < 2 or not fields[0].startswith(b"HTTP/1.") or not fields[1].isdigit():
            raise ProtocolError(f"not an HTTP/1.1 status line: {status_line[:80]!r}")
        status = int(fields[1])
        length: int | None = None
        chunked = False
        keep = fields[0] == b"HTTP/1.1"
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b"\n", b""):
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            value = value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value
            elif name == b"connection":
                keep = value == b"keep-alive" or (keep and value != b"close")
        if chunked:
            return status, await _read_chunked(reader), keep
        if length is not None:
            if length > MAX_RESPONSE_BYTES:
                raise ProtocolError(f"answer of {length} bytes")
            return status, await reader.readexactly(length), keep
        return status, await reader.read(MAX_RESPONSE_BYTES), False  # delimited by close

    async def aclose(self) -> None:
        while self._idle:
            self._idle.pop().close()


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    size = 0
    while True:
        line = await reader.readline()
        try:
            chunk = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise ProtocolError(f"bad chunk size line: {line[:40]!r}") from None
        if chunk == 0:
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        size += chunk
        if size > MAX_RESPONSE_BYTES:
            raise ProtocolError("chunked answer too large")
        parts.append(await reader.readexactly(chunk))
        await reader.readexactly(2)  # CRLF after the chunk
