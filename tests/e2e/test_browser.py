"""A real browser, a real player SDK, a real server: headless Debian Chromium plays a local video
monitored by mux-embed 5.19.0, unmodified, whose beacons go to a live ``headcount serve``.
``/counts`` for that video (a token signed with ``headcount.sign_viewer_counts``, with a key made
through the System API) reads 1/1 while it plays and 0/0 once the page is closed: with the
memory live store, and with two nodes sharing Redis (beacons to one, ``/counts`` from the other).

The browser is Debian's ``chromium`` driven by Python playwright with ``executable_path`` (a
browser download does not work here, and is never attempted). The page comes from a small static
server on 127.0.0.1 on another port than the collector, so every beacon is cross-origin, as in
production.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
from playwright.sync_api import sync_playwright

from headcount import sign_viewer_counts
from tests.e2e.browser_kit import (
    CHROMIUM_FLAGS,
    chromium_executable,
    read_counts,
    static_site,
    wait_for,
)
from tests.e2e.conftest import LiveServer, start_server
from tests.e2e.scale_kit import nodes
from tests.redis_servers import RedisServer, new_key_prefix

pytestmark = pytest.mark.slow

PLAY_TIMEOUT = 20.0  # s: browser start, first play, viewstart flush, /counts cache
UNLOAD_TIMEOUT = 10.0  # s: well under the 60 s liveness window, so only `viewend` explains 0/0


@pytest.fixture(params=["memory", "redis-two-nodes"])
def collector_and_reader(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[LiveServer, LiveServer]]:
    """(the node mux-embed posts to, the node /counts is read from)."""
    if request.param == "memory":
        server = start_server(tmp_path / "node")
        try:
            yield server, server
        finally:
            server.kill()
        return
    redis: RedisServer = request.getfixturevalue("redis_standalone")
    with nodes(tmp_path / "nodes", f"{redis.url}?prefix={new_key_prefix()}", 2) as group:
        yield group.servers[0], group.servers[1]


def test_counts_follow_a_real_browser_playing_and_closing_the_page(
    collector_and_reader: tuple[LiveServer, LiveServer], tmp_path: Path
) -> None:
    live_server, reader = collector_and_reader
    chromium = chromium_executable()
    video_id = "browser-test-video"
    key_id, private_key = live_server.create_signing_key()
    token = sign_viewer_counts(video_id, type="video_id", key_id=key_id, private_key=private_key)

    def counts() -> tuple[int, int]:
        return read_counts(reader, token)

    assert counts() == (0, 0)
    query = urlencode(
        {
            "collector": f"localhost:{live_server.port}",
            "env_key": live_server.env_key,
            "video_id": video_id,
            "viewer": "browser-viewer-1",
        }
    )
    with static_site() as site, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),  # a fresh profile
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            page = context.new_page()
            page.goto(f"{site}/watch.html?{query}")
            assert page.evaluate("window.playStarted") == "playing"
            wait_for(counts, (1, 1), PLAY_TIMEOUT, "/counts while the video plays")

            # It is really playing (and so heartbeating) when /counts says so.
            position = page.evaluate("document.getElementById('video').currentTime")
            page.wait_for_function(
                f"document.getElementById('video').currentTime != {position}", timeout=5_000
            )
            assert page.evaluate("document.getElementById('video').paused") is False
            assert counts() == (1, 1)

            # Closing the tab fires pagehide: mux-embed sends `viewend` by sendBeacon and fetch.
            page.close(run_before_unload=True)
            wait_for(counts, (0, 0), UNLOAD_TIMEOUT, "/counts after the page was closed")
        finally:
            context.close()
