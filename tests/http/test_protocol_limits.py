"""The limits on what one client may cost (``protocol_limits.py``), each tried as an attacker
would, over real sockets against uvicorn with the hot-path protocol: slowloris heads and
bodies, silent connections, more connections than allowed, huge URLs and headers, bodies
held half-sent, and clients that pipeline requests and never read the answers. Small limits
and short timeouts keep every attack short; ``/counts/stream`` outlives them all."""

from __future__ import annotations

import asyncio
import select
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from headcount.http.protocol import HotPathProtocol
from headcount.http.protocol_limits import SLICE
from tests.http.protocol_kit import Connection, ServerClosed, request
from tests.http.protocol_site import (
    Site,
    assert_accepted,
    assert_envelope,
    collect_request,
    counts_request,
    new_video,
    start_site,
    views,
)

T = TypeVar("T")

TIMEOUT = 0.3  # s: the header, body and keep-alive timeouts of this module's server
SEND_TIMEOUT = 1.0  # s: how long a client may leave more than UNSENT unread
MAX_CONNECTIONS = 20
UNSENT = 16 * 1024
BODY_MEMORY = 64 * 1024  # the smallest --max-body-memory: nine 7 KB bodies, not ten
LIMITS = {
    "max_url_bytes": 2048,
    "max_header_bytes": 4096,
    "max_headers": 20,
    "header_timeout": TIMEOUT,
    "body_timeout": TIMEOUT,
    "max_connections": MAX_CONNECTIONS,
    "max_body_memory": BODY_MEMORY,
    "max_unsent_bytes": UNSENT,
    "send_timeout": SEND_TIMEOUT,
    "stream_keepalive": 0.25,
}
# A timer looks back when it fires: a request is cut after one to two periods (and a loaded
# machine adds its own delay).
CUT = 2 * TIMEOUT + 1.0
COLLECT_HEAD = (
    b"POST %b HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    running = start_site(
        tmp_path_factory.mktemp("limits"), settings=LIMITS, timeout_keep_alive=TIMEOUT
    )
    try:
        yield running
    finally:
        running.server.stop()


@pytest.fixture(autouse=True)
def no_connection_left(site: Site) -> Iterator[None]:
    """Each attack starts on a server holding no connection, and leaves none behind."""
    _wait_for(lambda: not _connections(site), what="the server to drop every connection")
    yield
    _wait_for(lambda: not _connections(site), what="the server to drop every connection")


def _connections(site: Site) -> list[HotPathProtocol]:
    return list(site.server.server.server_state.connections)  # type: ignore[arg-type]


def _wait_for(done: Callable[[], bool], *, within: float = 5.0, what: str) -> float:
    """Seconds until ``done()``; fails after ``within``."""
    start = time.monotonic()
    while not done():
        if time.monotonic() - start > within:
            raise AssertionError(f"waited {within} s for {what}")
        time.sleep(0.01)
    return time.monotonic() - start


def _on_loop(protocol: HotPathProtocol, read: Callable[[], T]) -> T:
    """``read()`` run on the server's event loop (its objects are not thread-safe)."""

    async def call() -> T:
        return read()

    return asyncio.run_coroutine_threadsafe(call(), protocol.loop).result(5)


def _server_side(site: Site, client: socket.socket) -> HotPathProtocol:
    """The server's end of ``client``'s connection, once the server has accepted it."""
    name = client.getsockname()

    def find() -> list[HotPathProtocol]:
        return [p for p in _connections(site) if p.transport.get_extra_info("peername") == name]

    _wait_for(lambda: len(find()) == 1, what="the server to accept the connection")
    return find()[0]


def _still_open(conn: Connection, wait: float) -> bool:
    return not conn.closed_by_server(wait)


# -- slow and silent clients ------------------------------------------------------------------


def test_slowloris_heads_get_408_and_connections_past_the_limit_get_503(site: Site) -> None:
    # 50 connections that each send the start of a head and then nothing, against a
    # max-connections of 20: 20 are held until the header timeout, 30 are refused at once.
    partial = b"GET /counts?token=x HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "
    conns = [Connection(site.server.port) for _ in range(50)]
    try:
        for conn in conns:
            conn.send(partial)
        started = time.monotonic()
        statuses = []
        for conn in conns:
            answer = conn.read_response()
            assert_envelope(answer, answer.status, answer.json()["error"]["type"])
            assert answer.header("connection") == "close"
            statuses.append(answer.status)
            assert conn.closed_by_server()
        assert statuses.count(503) == 30 and statuses.count(408) == 20, statuses
        assert time.monotonic() - started < CUT
    finally:
        for conn in conns:
            conn.close()
    with Connection(site.server.port) as fresh:
        assert views(fresh.exchange(counts_request(site.token(new_video())))) == (0, 0)


def test_the_503_past_max_connections_is_the_error_envelope(site: Site) -> None:
    held = [Connection(site.server.port) for _ in range(MAX_CONNECTIONS)]
    try:
        _wait_for(lambda: len(_connections(site)) == MAX_CONNECTIONS, what="20 connections")
        with Connection(site.server.port) as refused:
            refused.send(counts_request(site.token(new_video())))
            answer = refused.read_response()
            assert_envelope(answer, 503, "service_unavailable")
            assert answer.header("retry-after") == "1"
            assert refused.closed_by_server()
    finally:
        for conn in held:
            conn.close()


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(site: Site) -> None:
    with Connection(site.server.port) as silent:
        started = time.monotonic()
        assert silent.closed_by_server(CUT + 1)  # closed, and nothing was written
        assert TIMEOUT * 0.9 <= time.monotonic() - started < CUT


def test_a_head_sent_a_byte_at_a_time_gets_408_however_steady(site: Site) -> None:
    head = counts_request(site.token(new_video()))  # ~600 bytes: 12 s at this pace
    with Connection(site.server.port) as slow:
        started = time.monotonic()
        for byte in head[:-2]:
            try:
                slow.send(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            if select.select([slow.sock], [], [], 0.02)[0]:
                break  # the server answered
        assert_envelope(slow.read_response(), 408, "request_timeout")
        assert time.monotonic() - started < CUT


@pytest.mark.parametrize("path", [b"/collect", b"/%63ollect"], ids=["hot", "asgi-way"])
def test_a_body_that_stops_arriving_gets_408(site: Site, path: bytes) -> None:
    with Connection(site.server.port) as conn:
        conn.send(COLLECT_HEAD % (path, 1000) + b'{"events":[')
        started = time.monotonic()
        assert_envelope(conn.read_response(), 408, "request_timeout")
        assert conn.closed_by_server()
        assert TIMEOUT * 0.9 <= time.monotonic() - started < CUT


def test_an_idle_keep_alive_connection_is_closed(site: Site) -> None:
    with Connection(site.server.port) as conn:
        assert_accepted(conn.exchange(collect_request(site.beacon(new_video()))))
        assert conn.closed_by_server(CUT + 1)
    with Connection(site.server.port) as conn:  # the ASGI way: uvicorn's own timer
        assert conn.exchange(request("GET", "/healthz")).status == 200
        started = time.monotonic()
        assert conn.closed_by_server(CUT + 1)
        assert time.monotonic() - started < CUT


def test_a_request_that_keeps_within_the_limits_is_answered_however_it_arrives(
    site: Site,
) -> None:
    # Pieces well inside the timeouts, and a head just under the limits: no refusal.
    video = new_video()
    beacon = collect_request(site.beacon(video))
    with Connection(site.server.port) as conn:
        for start in range(0, len(beacon), 700):
            conn.send(beacon[start : start + 700])
            time.sleep(0.05)
        assert_accepted(conn.read_response())
        headers = [(f"X-Field-{i}", "v" * 150) for i in range(18)]  # 18 fields, ~2.9 KB
        token = site.token(video)
        assert views(conn.exchange(request("GET", f"/counts?token={token}", headers))) == (1, 1)


# -- heads too large ---------------------------------------------------------------------------


def test_a_url_past_the_limit_gets_414_before_the_rest_is_read(site: Site) -> None:
    with Connection(site.server.port) as conn:
        conn.send(b"GET /counts?token=" + b"a" * 2100)
        assert_envelope(conn.read_response(), 414, "uri_too_long")
        assert conn.closed_by_server()


def test_a_200_mib_url_is_refused_at_the_limit(site: Site) -> None:
    # The server stops at the limit: the client cannot push its URL through.
    with Connection(site.server.port) as conn:
        sent = 0
        with pytest.raises((BrokenPipeError, ConnectionResetError)):
            conn.send(b"GET /counts?token=")
            piece = b"a" * 65536
            while sent < 200 * 1024 * 1024:
                conn.send(piece)
                sent += len(piece)
        assert sent < 32 * 1024 * 1024  # what the kernel's buffers took, not 200 MiB
        assert_envelope(conn.read_response(), 414, "uri_too_long")


@pytest.mark.parametrize(
    "headers",
    [
        [(f"X-Field-{i}", "v" * 300) for i in range(15)],  # 15 fields, 4.6 KB
        [(f"X-{i}", "v") for i in range(21)],  # 21 fields
    ],
    ids=["bytes", "count"],
)
def test_headers_past_the_limits_get_431(site: Site, headers: list[tuple[str, str]]) -> None:
    with Connection(site.server.port) as conn:
        answer = conn.exchange(request("GET", "/counts", headers))
        assert_envelope(answer, 431, "headers_too_large")
        assert conn.closed_by_server()


def test_one_endless_header_line_gets_431(site: Site) -> None:
    # httptools holds a field until its end: the bytes read while the head lasts count.
    with Connection(site.server.port) as conn:
        conn.send(b"POST /collect HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Endless: ")
        with pytest.raises((BrokenPipeError, ConnectionResetError, ServerClosed)):
            for _ in range(64):
                conn.send(b"v" * 1024)
                time.sleep(0.005)  # separate reads
        assert_envelope(conn.read_response(), 431, "headers_too_large")


# -- bodies in flight --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [b"/collect", b"/%63ollect"], ids=["hot", "asgi-way"])
def test_bodies_held_half_sent_past_the_memory_limit_get_503(site: Site, path: bytes) -> None:
    # Ten bodies of 7,000 bytes, each sent but its last byte: the tenth passes 64 KiB.
    conns = [Connection(site.server.port) for _ in range(10)]
    try:
        for conn in conns[:9]:
            conn.send(COLLECT_HEAD % (path, 7001) + b"x" * 7000)
        _wait_for(lambda: site.app.limits.bodies_held == 63_000, what="nine bodies held")
        conns[9].send(COLLECT_HEAD % (path, 7001) + b"x" * 7000)
        assert_envelope(conns[9].read_response(), 503, "service_unavailable")
        for conn in conns[:9]:  # the others are still held, until the body timeout
            assert_envelope(conn.read_response(), 408, "request_timeout")
    finally:
        for conn in conns:
            conn.close()
    _wait_for(lambda: site.app.limits.bodies_held == 0, what="every body to be let go")
    with Connection(site.server.port) as conn:  # released: a body is taken again
        assert_accepted(conn.exchange(collect_request(site.beacon(new_video()))))


# -- clients that do not read ------------------------------------------------------------------


def _pipeline_without_reading(site: Site, one: bytes, times: int) -> socket.socket:
    """A client that sends ``one`` request ``times`` times in a row and reads nothing."""
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: it sticks
    client.connect(("127.0.0.1", site.server.port))
    client.sendall(one * times)  # the kernel's buffers take it all, read or not
    return client


def _held_for(protocol: HotPathProtocol) -> tuple[int, int, bool]:
    """What the server holds for the connection: answers unsent, bytes read and not parsed,
    and whether it still reads."""
    transport: Any = protocol.transport
    return _on_loop(
        protocol,
        lambda: (
            transport.get_write_buffer_size(),
            len(protocol._held_back),
            transport.is_reading(),
        ),
    )


def test_pipelined_hot_requests_never_read_stop_being_read_then_are_cut(site: Site) -> None:
    # Preflights are answered in the parser callback: ~250 bytes of answer per 40 of request.
    # 45,000 of them (2 MB) ask for 11 MB of answers, well past what the kernel's buffers take.
    preflight = request("OPTIONS", "/collect")
    client = _pipeline_without_reading(site, preflight, 45_000)
    try:
        protocol = _server_side(site, client)
        _wait_for(lambda: not _held_for(protocol)[2], what="the server to stop reading")
        unsent, held_back, _ = _held_for(protocol)
        # The limit, plus the answers to one slice of requests (written before the pause).
        assert unsent <= UNSENT + SLICE // len(preflight) * 300, unsent
        assert held_back <= 512 * 1024, held_back
        # Cut after the send timeout, though nothing more is asked of it.
        waited = _wait_for(lambda: protocol not in _connections(site), what="the cut")
        assert waited < SEND_TIMEOUT + 1.0
    finally:
        client.close()


def test_pipelined_asgi_requests_never_read_are_cut(site: Site) -> None:
    # The ASGI way: uvicorn waits for the transport to drain, which it never does.
    asset = request("GET", "/demo/vendor/mux-embed.js")  # ~120 KB each, from a task
    client = _pipeline_without_reading(site, asset, 100)
    try:
        protocol = _server_side(site, client)
        waited = _wait_for(lambda: protocol not in _connections(site), what="the cut")
        assert waited < SEND_TIMEOUT + 1.0
    finally:
        client.close()


def test_a_counts_stream_outlives_every_timeout(site: Site) -> None:
    token = site.token(new_video())
    with Connection(site.server.port) as conn:
        conn.send(request("GET", f"/counts/stream?token={token}"))
        head = conn.read_head()
        assert head.status == 200
        started, comments = time.monotonic(), 0
        while time.monotonic() - started < 3 * TIMEOUT + 0.1:  # past every timer's second look
            event = conn.read_event(timeout=2.0)
            comments += "" in event
        assert comments >= 2
        assert _still_open(conn, 0.05)
