"""HotPathProtocol over real sockets, errors and the connection's life: refused and malformed
requests, the headers every answer shares, percent-encoded paths, the idle timer, shutdown
with a body arriving, and a failing hot handler.
"""

from __future__ import annotations

import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from headcount.bootstrap import build_runtime
from headcount.http.app import HeadcountApp
from headcount.http.reply import Reply
from headcount.sdk.signing import load_private_key
from headcount.settings import load_settings
from tests.http.protocol_kit import TIMEOUT, ThreadedServer, request
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
from tests.token_kit import forge

PREFLIGHT_HEADERS = [
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
]


# -- errors and the shared headers ------------------------------------------------------------


def test_refused_tokens_are_403_with_cors_and_no_store(site: Site) -> None:
    signing = load_private_key(site.private_key)
    expired = forge(
        {"alg": "RS256", "typ": "JWT"},
        {"kid": site.key_id, "sub": "v", "aud": "video_id", "exp": int(time.time()) - 3600},
        signing,
    )
    unknown_kid = forge(
        {"alg": "RS256", "typ": "JWT"},
        {"kid": "no-such-key", "sub": "v", "aud": "video_id", "exp": int(time.time()) + 60},
        signing,
    )
    with site.connect() as conn:
        assert_envelope(conn.exchange(counts_request(expired)), 403, "expired_token")
        assert_envelope(conn.exchange(counts_request("abc")), 403, "invalid_token")
        assert_envelope(conn.exchange(counts_request(unknown_kid)), 403, "unknown_key")
        assert_envelope(conn.exchange(counts_request(unknown_kid)), 403, "unknown_key")


def test_missing_token_is_400_invalid_parameters(site: Site) -> None:
    with site.connect() as conn:
        assert_envelope(conn.exchange(request("GET", "/counts")), 400, "invalid_parameters")
        assert_envelope(conn.exchange(request("GET", "/counts?other=1")), 400, "invalid_parameters")
        assert_envelope(conn.exchange(counts_request("")), 400, "invalid_parameters")


def test_hot_answers_carry_a_date_and_no_server_header(site: Site) -> None:
    token = site.token(new_video())
    with site.connect() as conn:
        answers = [
            conn.exchange(counts_request(token)),
            conn.exchange(counts_request(token, "HEAD"), head=True),
            conn.exchange(collect_request(site.beacon(new_video()))),
            conn.exchange(request("OPTIONS", "/counts")),
            conn.exchange(request("GET", "/counts")),
            conn.exchange(counts_request("abc")),
        ]
    for answer in answers:
        assert "server" not in answer.names(), answer
        date = answer.header("date")
        assert date is not None and date.endswith(" GMT"), answer
        assert abs(parsedate_to_datetime(date).timestamp() - time.time()) < 5


def test_malformed_request_line_is_400_and_closes_only_that_connection(site: Site) -> None:
    token = site.token(new_video())
    with site.connect() as bystander, site.connect() as bad:
        assert views(bystander.exchange(counts_request(token))) == (0, 0)
        answer = bad.exchange(b"GET /counts?token=x HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n")
        assert answer.status == 400
        assert answer.header("connection") == "close"
        assert bad.closed_by_server()
        assert views(bystander.exchange(counts_request(token))) == (0, 0)
        assert_accepted(bystander.exchange(collect_request(site.beacon(new_video()))))


def test_answers_to_good_requests_go_out_before_the_400_of_a_bad_one_behind_them(
    site: Site,
) -> None:
    # Hot answers wait in the loop's outbox until the round of I/O ends; the 400 uvicorn
    # writes at once for the bad request must not overtake (or drop) them.
    token = site.token(new_video())
    with site.connect() as conn:
        conn.send(
            counts_request(token)
            + request("OPTIONS", "/counts")
            + b"GET /counts?token=x HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n"
        )
        assert views(conn.read_response()) == (0, 0)
        assert conn.read_response().status == 204
        assert conn.read_response().status == 400
        assert conn.closed_by_server()


def test_percent_encoded_paths_answer_like_the_canonical_ones(site: Site) -> None:
    video = new_video()
    token = site.token(video)
    with site.connect() as conn:
        assert_accepted(conn.exchange(collect_request(site.beacon(video), "/%63ollect")))
        spelled = conn.exchange(counts_request(token, path="/%63ounts"))
        canonical = conn.exchange(counts_request(token))
        assert views(spelled) == views(canonical) == (1, 1)
        assert spelled.body == canonical.body
        # Both ways frame an answer alike: a length, never chunks.
        assert spelled.header("content-length") == str(len(spelled.body))
        assert spelled.header("transfer-encoding") is None
        head = conn.exchange(counts_request(token, method="HEAD", path="/%63ounts"), head=True)
        assert head.body == b"" and head.header("content-length") == str(len(canonical.body))
        preflight = conn.exchange(request("OPTIONS", "/%63ounts"))
        assert preflight.status == 204
        assert [n for n in preflight.names() if n.startswith("access-control-")] == (
            PREFLIGHT_HEADERS
        )
        assert preflight.header("content-length") is None
        assert preflight.header("transfer-encoding") is None
        assert_envelope(conn.exchange(request("GET", "/%63ounts")), 400, "invalid_parameters")


# -- the connection's life: idle timer and shutdown --------------------------------------------


def test_idle_connection_closes_but_one_whose_request_is_arriving_stays_open(
    tmp_path: Path,
) -> None:
    site = start_site(tmp_path, timeout_keep_alive=1)
    try:
        video = new_video()
        post = collect_request(site.beacon(video))
        with site.connect() as idle, site.connect() as arriving:
            started = time.monotonic()
            assert views(idle.exchange(counts_request(site.token(video)))) == (0, 0)
            assert views(arriving.exchange(counts_request(site.token(video)))) == (0, 0)
            arriving.send(post[:-10])
            # One to two keep-alive periods for the idle one...
            assert idle.closed_by_server(timeout=3.0)
            assert 0.9 < time.monotonic() - started < 2.9
            # ...while the other, mid-body, is still open, and answered when the body ends.
            assert arriving.closed_by_server(timeout=0.3) is False
            arriving.send(post[-10:])
            assert_accepted(arriving.read_response())
    finally:
        site.server.stop()


@pytest.mark.parametrize(
    ("way", "close_within"),
    [
        ("hot", TIMEOUT),
        # The env_key is not cached: the POST falls back to uvicorn, which must still close
        # after it (not after its keep-alive timeout).
        ("asgi", 0.5),
    ],
)
def test_shutdown_answers_a_request_whose_body_is_arriving_then_closes(
    tmp_path: Path, way: str, close_within: float
) -> None:
    site = start_site(tmp_path)
    try:
        environment = site.new_environment() if way == "asgi" else None
        post = collect_request(site.beacon(new_video(), environment=environment))
        with site.connect() as idle, site.connect() as arriving:
            assert views(idle.exchange(counts_request(site.token(new_video())))) == (0, 0)
            arriving.send(post[:-10])
            site.server.server.should_exit = True
            # uvicorn asks every connection to shut down in one go: the idle one closes.
            assert idle.closed_by_server()
            arriving.send(post[-10:])
            answer = arriving.read_response()
            assert_accepted(answer)
            assert answer.header("connection") == "close"
            assert arriving.closed_by_server(timeout=close_within)
    finally:
        site.server.stop()


class _BrokenApp(HeadcountApp):
    """A handler with a bug: what the protocol answers when ``reply_now`` raises."""

    def reply_now(self, route: str, query_string: bytes, body: bytes) -> Reply | None:
        raise RuntimeError("a bug in a hot-path handler")


def test_a_failing_hot_handler_answers_a_500_envelope_and_closes(tmp_path: Path) -> None:
    settings = load_settings(
        {"database_url": f"sqlite:///{tmp_path / 'headcount.db'}", "state_file": ""},
        environ={},
    )
    server = ThreadedServer(_BrokenApp(build_runtime(settings))).start()
    try:
        with server.connect() as conn:
            answer = conn.exchange(request("GET", "/counts?token=x"))
            assert_envelope(answer, 500, "internal_error")
            assert answer.header("connection") == "close"
            assert conn.closed_by_server()  # and nothing after the announced length
        with server.connect() as conn:  # the server itself is fine
            assert conn.exchange(request("GET", "/healthz")).status == 200
    finally:
        server.stop()
