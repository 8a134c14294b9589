"""HotPathProtocol over real sockets, framing: HEAD and OPTIONS answers (headers, no body),
and request bodies (chunked in several writes, the size limit, ``Expect: 100-continue``).
"""

from __future__ import annotations

import pytest

from tests.http.protocol_kit import chunked, request
from tests.http.protocol_site import (
    MAX_BODY,
    Site,
    assert_accepted,
    assert_envelope,
    collect_request,
    counts_request,
    new_video,
    views,
)

# -- HEAD, OPTIONS ----------------------------------------------------------------------------


def test_head_counts_answers_the_get_headers_without_the_body(site: Site) -> None:
    token = site.token(new_video())
    with site.connect() as conn:
        # One write: body bytes after the HEAD answer would be read as the next status line.
        conn.send(counts_request(token) + counts_request(token, "HEAD") + counts_request(token))
        get = conn.read_response()
        head = conn.read_response(head=True)
        again = conn.read_response()
    assert get.status == head.status == again.status == 200
    without_date = [(n, v) for n, v in get.headers if n != "date"]
    assert [(n, v) for n, v in head.headers if n != "date"] == without_date
    assert head.header("content-length") == str(len(get.body))
    assert head.header("date") is not None
    assert again.body == get.body


@pytest.mark.parametrize(
    ("path", "methods"),
    [("/counts", "GET, OPTIONS"), ("/collect", "POST, OPTIONS"), ("/", "POST, OPTIONS")],
)
def test_preflight_is_204_with_cors_headers_and_no_content_length(
    site: Site, path: str, methods: str
) -> None:
    with site.connect() as conn:
        preflight = conn.exchange(
            request(
                "OPTIONS",
                path,
                [
                    ("Origin", "https://player.example"),
                    ("Access-Control-Request-Method", methods.split(",")[0]),
                    ("Access-Control-Request-Headers", "content-type"),
                ],
            )
        )
        assert preflight.status == 204
        assert preflight.header("access-control-allow-origin") == "*"
        assert preflight.header("access-control-allow-methods") == methods
        assert preflight.header("access-control-allow-headers") == "Content-Type, Authorization"
        assert preflight.header("access-control-max-age") == "86400"
        assert preflight.header("content-length") is None  # RFC 9110, 8.6
        assert preflight.header("transfer-encoding") is None
        assert preflight.body == b""
        # Nothing followed the empty line: the next answer on the socket is whole.
        assert views(conn.exchange(counts_request(site.token(new_video())))) == (0, 0)


# -- bodies -----------------------------------------------------------------------------------


def test_chunked_beacon_sent_in_several_writes_is_accepted(site: Site) -> None:
    video = new_video()
    body = site.beacon(video)
    third = len(body) // 3
    parts = [body[:third], body[third : 2 * third], body[2 * third :]]
    with site.connect() as conn:
        conn.send(request("POST", "/collect", [("Transfer-Encoding", "chunked")]))
        for part in parts:
            conn.send(b"%x\r\n%b\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        assert_accepted(conn.read_response())
        assert views(conn.exchange(counts_request(site.token(video)))) == (1, 1)


def test_a_body_of_exactly_the_limit_is_accepted(site: Site) -> None:
    video = new_video()
    body = site.beacon(video)
    padded = body + b" " * (MAX_BODY - len(body))  # JSON allows trailing whitespace
    assert len(padded) == MAX_BODY
    with site.connect() as conn:
        assert_accepted(conn.exchange(collect_request(padded)))
        assert views(conn.exchange(counts_request(site.token(video)))) == (1, 1)


def test_content_length_over_the_limit_is_413_and_the_connection_goes_on(site: Site) -> None:
    video = new_video()
    body = site.beacon(video)
    too_large = body + b" " * (MAX_BODY + 1 - len(body))
    with site.connect() as conn:
        assert_envelope(conn.exchange(collect_request(too_large)), 413, "payload_too_large")
        # Nothing of the refused body was applied, and its bytes were read away.
        assert views(conn.exchange(counts_request(site.token(video)))) == (0, 0)
        assert_accepted(conn.exchange(collect_request(body)))


def test_chunked_body_growing_over_the_limit_is_413(site: Site) -> None:
    video = new_video()
    with site.connect() as conn:
        conn.send(request("POST", "/collect", [("Transfer-Encoding", "chunked")]))
        conn.send(b"%x\r\n%b\r\n" % (MAX_BODY // 2, b" " * (MAX_BODY // 2)))
        conn.send(b"%x\r\n%b\r\n" % (MAX_BODY // 2, b" " * (MAX_BODY // 2)))
        conn.send(chunked(b"{}"))
        assert_envelope(conn.read_response(), 413, "payload_too_large")
        assert views(conn.exchange(counts_request(site.token(video)))) == (0, 0)
        assert_accepted(conn.exchange(collect_request(site.beacon(video))))
        assert views(conn.exchange(counts_request(site.token(video)))) == (1, 1)


def test_expect_100_continue_gets_100_then_the_answer(site: Site) -> None:
    video = new_video()
    body = site.beacon(video)
    with site.connect() as conn:
        conn.send(
            request(
                "POST",
                "/collect",
                [("Expect", "100-continue"), ("Content-Length", str(len(body)))],
                content_length=False,
            )
        )
        interim = conn.read_response()
        assert (interim.status, interim.headers, interim.body) == (100, [], b"")
        conn.send(body)
        assert_accepted(conn.read_response())
        assert views(conn.exchange(counts_request(site.token(video)))) == (1, 1)
