"""``GET /counts/stream`` over raw sockets: the hot-path protocol holding a stream without a
task, against a real uvicorn with its own ticks, with the memory live store and with Redis.
Times are bounded waits on the wire (the hub's rules, with the time as an argument, are in
``test_stream_hub.py``)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator

import orjson
import pytest

from headcount.http.stream import MIN_SPACING, TICK
from tests.http.protocol_kit import Connection, ServerClosed, request
from tests.http.protocol_site import (
    Site,
    assert_accepted,
    assert_envelope,
    collect_request,
    new_video,
    start_site,
)
from tests.redis_servers import new_key_prefix

KEEPALIVE = 0.5  # s: this module's stream_keepalive, so a test can wait for one
REACH = 1.5  # s: a change must reach the stream well within this (1 s, plus a loaded CI)


@pytest.fixture(scope="module", params=["memory", "redis", "asgi-way"])
def stream_site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    """The hot path with either live store, and the ASGI way (uvicorn's own httptools
    protocol in front of the same app, as stock uvicorn serves it)."""
    live_url = "memory://"
    if request.param == "redis":
        live_url = f"{request.getfixturevalue('redis_standalone').url}?prefix={new_key_prefix()}"
    # Stock uvicorn waits for every response to end before its lifespan shutdown (when the
    # hub closes streams): a grace period ends the ASGI way's streams (docs/stream.md).
    uvicorn_config: dict[str, object] = (
        {"http": "httptools", "timeout_graceful_shutdown": 1} if request.param == "asgi-way" else {}
    )
    running = start_site(
        tmp_path_factory.mktemp("stream"),
        live_url,
        settings={"stream_keepalive": KEEPALIVE},
        **uvicorn_config,
    )
    try:
        yield running
    finally:
        running.server.stop()


def stream_request(*tokens: str, headers: tuple[tuple[str, str], ...] = ()) -> bytes:
    query = "&".join(f"token={t}" for t in tokens)
    return request("GET", f"/counts/stream?{query}", [("Accept", "text/event-stream"), *headers])


def open_stream(site: Site, *tokens: str) -> Connection:
    conn = site.connect()
    try:
        conn.send(stream_request(*tokens))
        head = conn.read_head()
        assert head.status == 200, head
        assert head.header("content-type") == "text/event-stream"
        assert head.header("access-control-allow-origin") == "*"
        assert head.header("cache-control") == "no-store"
        assert head.header("content-length") is None
        # The hot path ends the body with the connection; stock uvicorn chunks it.
        assert head.header("connection") == "close" or conn.chunked
        assert conn.read_event() == {"retry": "3000"}
    except BaseException:
        conn.close()
        raise
    return conn


def next_counts(conn: Connection, timeout: float = REACH) -> tuple[int, int]:
    """The views and viewers of the next event, keep-alive comments skipped."""
    deadline = time.monotonic() + timeout
    while True:
        event = conn.read_event(max(0.01, deadline - time.monotonic()))
        if "data" in event:
            assert "event" not in event and event["id"].isdigit(), event
            (counts,) = orjson.loads(event["data"])["data"]
            return counts["views"], counts["viewers"]


def assert_stream_ended(conn: Connection) -> None:
    """The hot path closes the connection; stock uvicorn ends the chunked body instead."""
    if conn.chunked:
        with pytest.raises(ServerClosed, match="the stream ended"):
            conn.read_event()
    else:
        assert conn.closed_by_server()


def post_view(site: Site, video: str) -> None:
    with site.connect() as conn:
        assert_accepted(conn.exchange(collect_request(site.beacon(video))))


def test_the_first_event_comes_at_once_with_the_counts_body(stream_site: Site) -> None:
    video = new_video()
    with open_stream(stream_site, stream_site.token(video)) as conn:
        event = conn.read_event()
        assert set(event) == {"id", "data"}
        body = orjson.loads(event["data"])
        assert body["data"][0]["views"] == 0 and set(body["data"][0]) == {
            "views",
            "viewers",
            "updated_at",
        }


def test_a_beacon_reaches_the_stream_within_a_second(stream_site: Site) -> None:
    video = new_video()
    with open_stream(stream_site, stream_site.token(video)) as conn:
        assert next_counts(conn) == (0, 0)
        posted = time.monotonic()
        post_view(stream_site, video)
        assert next_counts(conn) == (1, 1)
        assert time.monotonic() - posted < REACH


def test_changes_close_together_are_coalesced(stream_site: Site) -> None:
    video = new_video()
    with open_stream(stream_site, stream_site.token(video)) as conn:
        assert next_counts(conn) == (0, 0)
        for _ in range(3):
            post_view(stream_site, video)
        seen: list[tuple[float, int]] = []
        while not seen or seen[-1][1] < 3:
            views, _ = next_counts(conn, timeout=3 * REACH)
            seen.append((time.monotonic(), views))
        assert [v for _, v in seen] == sorted(v for _, v in seen) and len(seen) <= 3
        gaps = [b[0] - a[0] for a, b in itertools.pairwise(seen)]
        assert all(gap > MIN_SPACING * TICK * 0.8 for gap in gaps), gaps


def test_an_idle_stream_gets_keep_alive_comments(stream_site: Site) -> None:
    with open_stream(stream_site, stream_site.token(new_video())) as conn:
        assert "data" in conn.read_event()
        assert conn.read_event(timeout=KEEPALIVE * 4) == {"": "keep-alive"}


def test_a_reconnect_with_last_event_id_gets_the_current_counts_at_once(
    stream_site: Site,
) -> None:
    video = new_video()
    token = stream_site.token(video)
    with open_stream(stream_site, token) as conn:
        last_id = conn.read_event()["id"]
    post_view(stream_site, video)  # while the browser was away
    with stream_site.connect() as conn:
        conn.send(stream_request(token, headers=(("Last-Event-ID", last_id),)))
        assert conn.read_head().status == 200
        assert conn.read_event() == {"retry": "3000"}
        assert next_counts(conn, timeout=0.5) == (1, 1)


def test_several_tokens_share_one_stream(stream_site: Site) -> None:
    one, two = new_video(), new_video()
    with open_stream(stream_site, stream_site.token(one), stream_site.token(two)) as conn:
        assert [conn.read_event()["event"] for _ in range(2)] == ["counts-0", "counts-1"]
        post_view(stream_site, two)
        event = conn.read_event(REACH)
        assert event["event"] == "counts-1"
        assert orjson.loads(event["data"])["data"][0]["views"] == 1


def test_a_bad_token_gets_the_counts_error_not_a_stream(stream_site: Site) -> None:
    with stream_site.connect() as conn:
        assert_envelope(conn.exchange(stream_request("not-a-token")), 403, "invalid_token")
        assert_envelope(conn.exchange(request("GET", "/counts/stream")), 400, "invalid_parameters")
        # The connection is still good for the next request.
        assert conn.exchange(stream_request("a.b.c")).status == 403


def test_a_client_that_goes_away_is_forgotten(stream_site: Site) -> None:
    hub = stream_site.app.stream
    assert hub is not None
    before = hub.open_streams
    conn = open_stream(stream_site, stream_site.token(new_video()))
    assert hub.open_streams == before + 1
    conn.close()
    deadline = time.monotonic() + 5
    while hub.open_streams != before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert hub.open_streams == before


def test_deleting_the_signing_key_ends_the_stream_with_the_counts_error(
    stream_site: Site,
) -> None:
    key = stream_site.new_signing_key()
    with open_stream(stream_site, stream_site.token(new_video(), key)) as conn:
        assert "data" in conn.read_event()
        with stream_site.connect() as admin:
            deleted = admin.exchange(
                request("DELETE", f"/system/v1/signing-keys/{key[0]}", [stream_site.basic_auth()])
            )
            assert deleted.status == 204, deleted
        event = conn.read_event(REACH)
        while "event" not in event:  # a keep-alive came first
            event = conn.read_event(REACH)
        assert event["event"] == "error"
        assert orjson.loads(event["data"])["error"]["type"] == "unknown_key"
        assert_stream_ended(conn)
    with stream_site.connect() as conn:  # so EventSource does not reconnect
        assert_envelope(
            conn.exchange(stream_request(stream_site.token(new_video(), key))), 403, "unknown_key"
        )


def test_shutdown_closes_streams_cleanly(tmp_path_factory: pytest.TempPathFactory) -> None:
    site = start_site(tmp_path_factory.mktemp("stream-shutdown"))
    try:
        conn = open_stream(site, site.token(new_video()))
        assert "data" in conn.read_event()
    finally:
        stopping = threading.Thread(target=site.server.stop)
        started = time.monotonic()
        stopping.start()
        stopping.join(10)
    assert not stopping.is_alive() and time.monotonic() - started < 5
    assert conn.closed_by_server()
    conn.close()
