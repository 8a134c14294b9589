"""Real mux-embed in headless Chromium: a page passes ``asset_id``, ``live_stream_id`` and
``playback_id`` in mux-embed's ``data`` (the way docs/collector.md tells customers to), and
``/counts`` by each of those ids reads 1/1 while it plays, 0/0 once the page is closed. This is
the proof that mux-embed forwards such keys and that the collector decodes them
(``live_stream_id`` travels as ``live_smid``)."""

from __future__ import annotations

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
from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.slow

PLAY_TIMEOUT = 20.0  # s: browser start, first play, viewstart flush
UNLOAD_TIMEOUT = 10.0  # s: well under the 60 s liveness window, so only `viewend` explains 0/0


IDS = {
    "video_id": "content-ids-video",
    "asset_id": "contentIdsAsset01",
    "live_stream_id": "contentIdsLiveStream01",
    "playback_id": "contentIdsPlayback01",
}


def test_asset_live_stream_and_playback_ids_from_mux_embed_data(
    live_server: LiveServer, tmp_path: Path
) -> None:
    chromium = chromium_executable()
    key_id, private_key = live_server.create_signing_key()
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
