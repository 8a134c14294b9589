"""Every answer in the envelope, no surprises, over real sockets: the parser's 400s, no
redirect built from the ``Host`` header, 405s with ``Allow``, a repeated token, and a client
that resets the connection while its pipelined requests are answered."""

from __future__ import annotations

import logging
import socket
import struct
import time

import pytest

from tests.http.protocol_kit import Response, request
from tests.http.protocol_site import Site, assert_envelope, counts_request, new_video, views

PUBLIC_HEADERS = ["content-type", "access-control-allow-origin", "cache-control"]


def _assert_parser_400(answer: Response, *, cors: bool) -> None:
    assert answer.status == 400, answer
    assert answer.header("content-type") == "application/json"
    assert answer.header("connection") == "close"
    assert answer.header("date") is not None
    assert answer.json()["error"]["type"] == "invalid_parameters"
    assert answer.json()["error"]["messages"] == ["Invalid HTTP request received."]
    assert answer.header("cache-control") == "no-store"
    assert (answer.header("access-control-allow-origin") == "*") is cors


@pytest.mark.parametrize(
    ("raw", "cors"),
    [
        (b"GET /counts?token=x HTTP/1.1 extra\r\nHost: a\r\n\r\n", True),
        (b"POST /collect HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", True),
        (b"GET /counts/stream?token=x HTTP/1.1\r\nHost: a\r\nno-colon\r\n\r\n", True),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", True),
        (b"GET /system/v1/signing-keys HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n", False),
        (b"GET /healthz HTTP/9.9\r\nHost: a\r\n\r\n", False),
    ],
)
def test_a_request_the_parser_refuses_gets_the_envelope(site: Site, raw: bytes, cors: bool) -> None:
    with site.connect() as conn:
        _assert_parser_400(conn.exchange(raw), cors=cors)
        assert conn.closed_by_server()


def test_a_bad_request_behind_good_ones_still_answers_them_first(site: Site) -> None:
    token = site.token(new_video())
    with site.connect() as conn:
        conn.send(counts_request(token) + b"GET /counts HTTP/1.1 x\r\nHost: a\r\n\r\n")
        assert views(conn.read_response()) == (0, 0)
        _assert_parser_400(conn.read_response(), cors=True)
        assert conn.closed_by_server()


@pytest.mark.parametrize("authorized", [True, False])
def test_a_trailing_slash_is_answered_never_redirected_to_the_host_header(
    site: Site, authorized: bool
) -> None:
    auth = [site.basic_auth()] if authorized else []
    with site.connect() as conn:
        for target in ("/system/v1/signing-keys/", "/system/v1/signing-keys"):
            raw = request("GET", target, auth).replace(b"127.0.0.1", b"evil.example.com", 1)
            assert b"Host: evil.example.com\r\n" in raw
            answer = conn.exchange(raw)
            assert answer.header("location") is None, answer
            if authorized:
                assert answer.status == 200, answer
                assert site.key_id in [key["id"] for key in answer.json()["data"]]
            else:
                assert answer.status == 401, answer
        # A path with no route either way is still a plain 404.
        answer = conn.exchange(request("GET", "/no-such-path/"))
        assert answer.status == 404 and answer.header("location") is None


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("POST", "/counts", "GET, HEAD, OPTIONS"),
        ("PUT", "/counts", "GET, HEAD, OPTIONS"),
        ("DELETE", "/counts/stream", "GET, OPTIONS"),
        ("GET", "/collect", "POST, OPTIONS"),
        ("PUT", "/", "POST, OPTIONS"),
    ],
)
def test_another_method_on_a_public_path_is_405_with_allow(
    site: Site, method: str, path: str, allow: str
) -> None:
    with site.connect() as conn:
        answer = conn.exchange(request(method, path, body=b"{}"))
        assert_envelope(answer, 405, "method_not_allowed")
        assert answer.header("allow") == allow
        # and the connection is still good
        assert views(conn.exchange(counts_request(site.token(new_video())))) == (0, 0)


@pytest.mark.parametrize(
    "query",
    ["token=&token={good}", "token={good}&token={good}", "TOKEN={good}&token={good}"],
)
def test_a_repeated_token_parameter_is_400(site: Site, query: str) -> None:
    good = site.token(new_video())
    with site.connect() as conn:
        answer = conn.exchange(request("GET", "/counts?" + query.format(good=good)))
        assert_envelope(answer, 400, "invalid_parameters")
        assert answer.json()["error"]["messages"][0].startswith("Give the token parameter once")
        assert views(conn.exchange(counts_request(good))) == (0, 0)


def test_a_client_gone_while_its_pipelined_requests_are_answered_is_a_quiet_close(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    # The client closes (or resets) while the first of five pipelined requests is in the
    # thread pool. Reading is paused (pipelining), so the server learns it from a failed
    # write, which closes the transport; the cycle's next write then raised in uvloop
    # ("unable to perform operation on <TCPTransport closed=True>"), logged as "Exception in
    # ASGI application", about one time in three.
    pipelined = request("GET", "/system/v1/signing-keys", [site.basic_auth()]) * 5
    caplog.set_level(logging.WARNING)
    connections = site.server.server.server_state.connections
    for reset in [False, True] * 10:
        sock = socket.create_connection(("127.0.0.1", site.server.port))
        sock.sendall(pipelined)
        time.sleep(0.005)  # read by the server, the first request in the thread pool
        if reset:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
    deadline = time.monotonic() + 10
    while connections:  # every one of them lost, so every write was tried
        assert time.monotonic() < deadline, f"{len(connections)} connections still open"
        time.sleep(0.01)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []
    with site.connect() as conn:
        answer = conn.exchange(request("GET", "/system/v1/whoami", [site.basic_auth()]))
        assert answer.status == 200
