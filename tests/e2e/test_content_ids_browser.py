"""Real mux-embed in headless Chromium: a page passes ``asset_id``, ``live_stream_id`` and
``playback_id`` in mux-embed's ``data`` (the way docs/collector.md tells customers to), and
``/counts`` by each of those ids reads 1/1 while it plays, 0/0 once the page is closed. This is
the proof that mux-embed forwards such keys and that the collector decodes them
(``live_stream_id`` travels as ``live_smid``)."""

from __future__ import annotations

import functools
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
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
PLAY_TIMEOUT = 20.0  # s: browser start, first play, viewstart flush
UNLOAD_TIMEOUT = 10.0  # s: well under the 60 s liveness window, so only `viewend` explains 0/0


class _PageHandler(SimpleHTTPRequestHandler):
    """Pages and the clip from ``browser/``; mux-embed's own build as ``/mux.js``."""

    def translate_path(self, path: str) -> str:
        if path.split("?", 1)[0] == "/mux.js":
            return str(MUX_EMBED)
        return super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def static_site() -> Iterator[str]:
    """The page on its own origin, so every beacon is cross-origin as in production."""
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


def read_counts(server: LiveServer, token: str) -> tuple[int, int]:
    answer = httpx.get(f"{server.base_url}/counts", params={"token": token}, timeout=10)
    assert answer.status_code == 200, answer.text
    row = answer.json()["data"][0]
    return row["views"], row["viewers"]


def wait_for(read: Callable[[], object], wanted: object, timeout: float, what: str) -> None:
    """Poll ``read`` (bounded in time) until it returns ``wanted``."""
    deadline = time.monotonic() + timeout
    last = read()
    while last != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        last = read()
    assert last == wanted, f"{what}: still {last!r} after {timeout}s (wanted {wanted!r})"


IDS = {
    "video_id": "content-ids-video",
    "asset_id": "contentIdsAsset01",
    "live_stream_id": "contentIdsLiveStream01",
    "playback_id": "contentIdsPlayback01",
}


def test_asset_live_stream_and_playback_ids_from_mux_embed_data(
    live_server: LiveServer, tmp_path: Path
) -> None:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: apt-get install -y chromium"
    assert MUX_EMBED.is_file(), "mux-embed is missing: cd tests/clients && npm ci"
    created = httpx.post(
        f"{live_server.base_url}/system/v1/signing-keys", auth=live_server.auth, timeout=30
    )
    assert created.status_code == 201, created.text
    key_id, private_key = created.json()["data"]["id"], created.json()["data"]["private_key"]
    tokens = {
        id_type: sign_viewer_counts(value, type=id_type, key_id=key_id, private_key=private_key)
        for id_type, value in IDS.items()
    }

    def counts() -> dict[str, tuple[int, int]]:
        return {id_type: read_counts(live_server, token) for id_type, token in tokens.items()}

    nobody = dict.fromkeys(IDS, (0, 0))
    assert counts() == nobody
    query = urlencode(
        {"collector": f"localhost:{live_server.port}", "env_key": live_server.env_key, **IDS}
    )
    with static_site() as site, sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
        )
        try:
            page = context.new_page()
            page.goto(f"{site}/content-ids.html?{query}")
            assert page.evaluate("window.playStarted") == "playing"
            wait_for(counts, dict.fromkeys(IDS, (1, 1)), PLAY_TIMEOUT, "/counts while playing")
            page.close(run_before_unload=True)
            wait_for(counts, nobody, UNLOAD_TIMEOUT, "/counts after the page was closed")
        finally:
            context.close()
