"""``headcount serve`` under a descriptor limit, held by connections that never send a request:
it keeps room for its own files (the live state's save) and answers what it cannot hold with
a 503 envelope, instead of failing requests and saves with "Too many open files"."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx

from headcount.http.limits import RESERVED_DESCRIPTORS
from tests.e2e.conftest import start_server

DESCRIPTORS = 200  # the server's `ulimit -n`
ROOM = DESCRIPTORS - RESERVED_DESCRIPTORS  # the connections it holds
ATTACKERS = DESCRIPTORS + 20  # more than it has descriptors for
KEEP_ALIVE = 0.5  # s


def test_held_connections_leave_room_for_requests_and_the_state_save(tmp_path: Path) -> None:
    server = start_server(
        tmp_path,
        descriptor_limit=DESCRIPTORS,
        header_timeout=60,
        keep_alive_timeout=KEEP_ALIVE,
        save_interval=0.3,
    )
    attackers: list[socket.socket] = []
    try:
        assert f"Holding at most {ROOM} connections" in server.log()
        for _ in range(ATTACKERS):
            attackers.append(socket.create_connection(("127.0.0.1", server.port), timeout=5))
        time.sleep(0.3)
        held = refused = 0
        for sock in attackers:
            sock.setblocking(False)
            try:
                answer = sock.recv(65536)
            except BlockingIOError:
                held += 1  # nothing said to it: held until its header timeout
                continue
            assert answer.startswith(b"HTTP/1.1 503 "), answer
            assert b'"type":"service_unavailable"' in answer
            refused += 1
        assert held <= ROOM and refused == ATTACKERS - held, (held, refused)

        # A request now gets a clean answer (no reset, no hang): 503 in the envelope.
        busy = httpx.get(f"{server.base_url}/healthz", timeout=5)
        assert busy.status_code == 503
        assert busy.json()["error"]["type"] == "service_unavailable"
        assert busy.headers["access-control-allow-origin"] == "*"

        # The periodic save still finds a descriptor.
        saved = server.state_file.stat().st_mtime if server.state_file.exists() else 0.0
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if server.state_file.exists() and server.state_file.stat().st_mtime > saved:
                break
            time.sleep(0.05)
        else:
            raise AssertionError(f"no save while the connections were held:\n{server.log()}")

        # Let some go: requests are served again.
        for sock in attackers[:10]:
            sock.close()
        deadline = time.monotonic() + 5
        while httpx.get(f"{server.base_url}/healthz", timeout=5).status_code != 200:
            assert time.monotonic() < deadline, "still refused after connections were let go"
            time.sleep(0.05)
        # An idle keep-alive connection is let go after --keep-alive-timeout.
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as idle:
            idle.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert idle.recv(65536).startswith(b"HTTP/1.1 200 ")
            started = time.monotonic()
            assert idle.recv(65536) == b""  # closed by the server
            assert time.monotonic() - started < 3 * KEEP_ALIVE + 1
        assert server.stop() == 0
        assert "Too many open files" not in server.log()
    finally:
        for sock in attackers:
            sock.close()
        server.kill()
