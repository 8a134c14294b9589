"""The ``stream`` benchmark's subscriber process: thousands of idle SSE connections, cheaply.

One uvloop program, one minimal :class:`asyncio.Protocol` per connection, no HTTP library. Each
connection is bound to one of several loopback source addresses (``--sources``: each gives its
own ephemeral port range) before it connects to the server on 127.0.0.1, sends
``GET <path> HTTP/1.1``, checks that the answer is ``200 text/event-stream`` (chunked or not),
and from then on records every event's arrival time (:func:`time.monotonic`, one clock for every
process of the machine) and the ``views`` of its data. Keep-alive comments are counted and
otherwise ignored. Connections open at a bounded rate (``--rate`` per second, at most
``--concurrency`` waiting for their first event), and each is given ``--timeout`` seconds.

The parent (:mod:`bench.stream`) drives it over stdin/stdout, one JSON line per answer: the
process prints ``{"ready": ...}`` once every connection has been tried, then answers
``count V`` (how many open connections last read ``views == V``), ``dump PATH`` (every
connection's events written to ``PATH`` as JSON) and ``quit`` (reset every connection, exit).
End of input also quits, and so does ``--lifetime`` seconds: nothing outlives a lost parent.

Run by hand: ``python -m bench.stream_client --port 8000 --path '/counts/stream?token=...'
--count 100 --sources 127.0.0.2``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import resource
import socket
import struct
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import orjson
import uvloop

from bench.sse import (
    HEAD_LIMIT,
    Dechunker,
    EventReader,
    SseEvent,
    parse_head,
    quick_views,
    views_of,
)

__all__ = ["Hub", "Subscriber"]

_LINGER_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close sends RST, no TIME_WAIT


@dataclass
class Hub:
    """What every connection of this process reports to: who is open, what they last read."""

    latest: Counter[int] = field(default_factory=Counter)  # views -> open connections at it
    failures: Counter[str] = field(default_factory=Counter)
    subscribers: list[Subscriber] = field(default_factory=list)
    keepalives: list[float] = field(default_factory=list)  # arrival of every comment
    retries: Counter[int] = field(default_factory=Counter)

    def fail(self, why: str) -> None:
        self.failures[why[:120]] += 1


class Subscriber(asyncio.Protocol):
    """One SSE connection: checks the answer's head, then records ``(arrival, views)`` per event."""

    def __init__(self, hub: Hub, request: bytes) -> None:
        self.hub = hub
        self.request = request
        self.transport: asyncio.Transport | None = None
        self.head: bytes | None = b""  # None once the head was read
        self.dechunker: Dechunker | None = None
        self.reader = EventReader()
        self.events: list[tuple[float, int]] = []
        self.latest: int | None = None
        self.first: asyncio.Future[None] | None = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        if self.head is not None:
            data = self._read_head(data)
            if not data:
                return
        if self.dechunker is not None:
            data = self.dechunker.feed(data)
        if not self.reader.pending and data.find(b"\n\n") == len(data) - 2 >= 0:
            # The usual read: one whole event or comment. Its fast way keeps the clients'
            # cost per event well below the server's (the general parser costs ~4x more).
            if data[:1] == b":" and data.find(b"\n") == len(data) - 2:
                self.hub.keepalives.append(now)
                return
            views = quick_views(data)
            if views is not None:
                self._record(now, views)
                return
        for event in self.reader.feed(data):
            self._on_event(now, event)

    def _read_head(self, data: bytes) -> bytes:
        assert self.head is not None
        self.head += data
        end = self.head.find(b"\r\n\r\n")
        if end < 0:
            if len(self.head) > HEAD_LIMIT:
                self._refuse("response head too long")
            return b""
        head, rest = self.head[:end], self.head[end + 4 :]
        self.head = None
        try:
            status, headers = parse_head(head)
        except ValueError as exc:
            self._refuse(str(exc))
            return b""
        content_type = headers.get("content-type", "")
        if status != 200 or not content_type.startswith("text/event-stream"):
            self._refuse(f"HTTP {status} {content_type or '(no content-type)'}: {rest[:80]!r}")
            return b""
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self.dechunker = Dechunker()
        return rest

    def _on_event(self, now: float, event: SseEvent) -> None:
        if event.comment:
            self.hub.keepalives.append(now)
            return
        if event.retry is not None:
            self.hub.retries[event.retry] += 1
        if event.data is None:
            return
        if event.name != b"message":
            self.hub.fail(f"event {event.name.decode('latin-1')}: {event.data[:80]!r}")
            return
        self._record(now, views_of(event.data))

    def _record(self, now: float, views: int) -> None:
        self.events.append((now, views))
        if self.transport is not None:
            if self.latest is not None:
                self.hub.latest[self.latest] -= 1
            self.hub.latest[views] += 1
        self.latest = views
        if self.first is not None:
            if not self.first.done():
                self.first.set_result(None)
            self.first = None

    def _refuse(self, why: str) -> None:
        self.hub.fail(why)
        self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None and self.latest is not None:
            self.hub.latest[self.latest] -= 1
        self.transport = None
        if self.first is not None:
            if not self.first.done():
                self.first.set_exception(ConnectionError(f"closed before a first event: {exc!r}"))
            self.first = None

    def close(self, *, reset: bool = False) -> None:
        transport = self.transport
        if transport is None:
            return
        if reset:
            sock = transport.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)
        transport.close()


async def _open_all(args: argparse.Namespace, hub: Hub) -> float:
    loop = asyncio.get_running_loop()
    request = (
        f"GET {args.path} HTTP/1.1\r\nHost: {args.host}:{args.port}\r\n"
        "Accept: text/event-stream\r\nCache-Control: no-cache\r\n\r\n"
    ).encode("latin-1")
    sources: Sequence[str] = args.sources.split(",")
    waiting = asyncio.Semaphore(args.concurrency)
    started = time.monotonic()

    async def one(index: int) -> None:
        await asyncio.sleep(max(0.0, started + index / args.rate - time.monotonic()))
        async with waiting:
            subscriber = Subscriber(hub, request)
            hub.subscribers.append(subscriber)
            first = subscriber.first
            try:
                await asyncio.wait_for(
                    loop.create_connection(
                        lambda: subscriber,
                        args.host,
                        args.port,
                        local_addr=(sources[index % len(sources)], 0),
                    ),
                    args.timeout,
                )
                if first is not None:
                    await asyncio.wait_for(first, args.timeout)
            except (OSError, TimeoutError) as exc:
                hub.fail(f"{type(exc).__name__}: {exc}")
                subscriber.close(reset=True)

    await asyncio.gather(*(one(index) for index in range(args.count)))
    return time.monotonic() - started


def _say(message: dict[str, object]) -> None:
    sys.stdout.write(orjson.dumps(message).decode() + "\n")
    sys.stdout.flush()


async def _serve_commands(hub: Hub) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := (await reader.readline()).decode().split():
        command, rest = line[0], line[1:]
        if command == "count":
            _say({"count": hub.latest[int(rest[0])]})
        elif command == "dump":
            document = {
                "events": [s.events for s in hub.subscribers],
                "open": sum(s.transport is not None for s in hub.subscribers),
                "keepalives": hub.keepalives,
                "retries": dict(hub.retries),
                "failures": dict(hub.failures),
            }
            Path(rest[0]).write_bytes(orjson.dumps(document, option=orjson.OPT_NON_STR_KEYS))
            _say({"dumped": len(hub.subscribers)})
        elif command == "quit":
            break
        else:
            _say({"error": f"unknown command {command}"})


async def _main(args: argparse.Namespace) -> None:
    hub = Hub()
    seconds = await _open_all(args, hub)
    _say(
        {
            "ready": sum(s.transport is not None and s.first is None for s in hub.subscribers),
            "tried": args.count,
            "seconds": seconds,
            "failures": dict(hub.failures),
        }
    )
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(_serve_commands(hub), args.lifetime)
    for subscriber in hub.subscribers:
        subscriber.close(reset=True)
    await asyncio.sleep(0.1)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", required=True, help="the stream's path and query")
    parser.add_argument("--count", type=int, required=True, help="connections to open")
    parser.add_argument("--sources", default="127.0.0.2", help="source addresses, comma-separated")
    parser.add_argument("--rate", type=float, default=2000.0, help="connections opened per second")
    parser.add_argument("--concurrency", type=int, default=200, help="awaiting a first event")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per connection")
    parser.add_argument("--lifetime", type=float, default=600.0, help="seconds before giving up")
    args = parser.parse_args(argv)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    uvloop.run(_main(args))


if __name__ == "__main__":
    main()
