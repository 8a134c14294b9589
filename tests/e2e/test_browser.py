"""A real browser, a real player SDK, a real server: headless Debian Chromium plays a local video
monitored by mux-embed 5.19.0, unmodified, whose beacons go to a live ``headcount serve``.
``/counts`` for that video (a token signed with ``headcount.sign_viewer_counts``, with a key made
through the System API) reads 1/1 while it plays and 0/0 once the page is closed.

The browser is Debian's ``chromium`` driven by Python playwright with ``executable_path`` (a
browser download does not work here, and is never attempted). The page comes from a small static
server on 127.0.0.1 on another port than the collector, so every beacon is cross-origin, as in
production.
"""

from __future__ import annotations

import functools
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import httpx
import pytest
from playwright.sync_api import sync_playwright

from headcount import sign_viewer_counts
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.slow

HERE = Path(__file__).parent
PAGE_DIR = HERE / "browser"
MUX_EMBED = HERE.parent / "clients" / "node_modules" / "mux-embed" / "dist" / "mux.js"
# How this machine runs Chromium: no sandbox as root, no GPU, and no background traffic (the
# network is closed: Chromium's own connections would only fail).
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
PLAY_TIMEOUT = 20.0  # s: browser start, first play, viewstart flush, /counts cache
UNLOAD_TIMEOUT = 10.0  # s: well under the 60 s liveness window, so only `viewend` explains 0/0

T = TypeVar("T")


def chromium_executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Debian's chromium is not installed; the browser test needs it: "
            "`apt-get install -y chromium` (.ci/run installs it when missing)."
        )
    return path


class _PageHandler(SimpleHTTPRequestHandler):
    """The test page and its video from ``browser/``, and mux-embed's build as ``/mux.js``."""

    def translate_path(self, path: str) -> str:
        if path.split("?", 1)[0] == "/mux.js":
            return str(MUX_EMBED)
        return super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output quiet


@contextmanager
def static_site() -> Iterator[str]:
    handler = functools.partial(_PageHandler, directory=str(PAGE_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def create_signing_key(server: LiveServer) -> tuple[str, str]:
    answer = httpx.post(f"{server.base_url}/system/v1/signing-keys", auth=server.auth)
    assert answer.status_code == 201, answer.text
    data = answer.json()["data"]
    return data["id"], data["private_key"]


def read_counts(server: LiveServer, token: str) -> tuple[int, int]:
    answer = httpx.get(f"{server.base_url}/counts", params={"token": token})
    assert answer.status_code == 200, answer.text
    row = answer.json()["data"][0]
    return row["views"], row["viewers"]


def wait_for(read: Callable[[], T], wanted: T, timeout: float, what: str) -> None:
    """Poll ``read`` (bounded in time) until it returns ``wanted``; fail with the last value."""
    deadline = time.monotonic() + timeout
    last = read()
    while last != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        last = read()
    assert last == wanted, f"{what}: still {last!r} after {timeout}s (wanted {wanted!r})"


def test_counts_follow_a_real_browser_playing_and_closing_the_page(
    live_server: LiveServer, tmp_path: Path
) -> None:
    chromium = chromium_executable()
    assert MUX_EMBED.is_file(), "mux-embed is missing: cd tests/clients && npm ci"
    video_id = "browser-test-video"
    key_id, private_key = create_signing_key(live_server)
    token = sign_viewer_counts(video_id, type="video_id", key_id=key_id, private_key=private_key)

    def counts() -> tuple[int, int]:
        return read_counts(live_server, token)

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
