"""Restart loses nothing: a real ``headcount serve`` is stopped with SIGTERM mid-audience and
started again on the same state file; counts read through ``GET /counts`` are equal before and
after, and later heartbeats (delta events with no viewer ids) keep every view's identity."""

from __future__ import annotations

import copy
import json
import signal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from headcount.core.keys import abbreviate_key
from headcount.sdk.signing import load_private_key, sign_viewer_counts
from tests.e2e.conftest import LiveServer, start_server

pytestmark = pytest.mark.slow

CAPTURE = Path(__file__).parents[1] / "fixtures" / "beacons" / "A-video-element" / "decoded"
VIDEOS = ("restart-video-a", "restart-video-b", "restart-video-c", "restart-video-d")
PLAYBACK_ID = "RESTARTpb00Example01"  # video c is a Mux source: counted by playback id too


def _capture_event(name: str, event: str) -> dict[str, Any]:
    body = json.loads((CAPTURE / name).read_text("utf-8"))
    return next(e for e in body["events"] if e["event"] == event)


FULL_STATE = _capture_event(
    "001-POST-networkchange-playerready-loadstart-texttrackchange-playbackmodechange-viewstart.json",
    "viewstart",
)
HEARTBEAT = _capture_event("003-POST-hb.json", "hb")
PAUSE = _capture_event("005-POST-hb-pause.json", "pause")


def body(events: list[dict[str, Any]]) -> bytes:
    """A mux-embed body: metadata as sent, every event key abbreviated."""
    return orjson.dumps(
        {
            "metadata": {"transmission_timestamp": 1795844274415, "rtt_ms": 20},
            "events": [{abbreviate_key(k): v for k, v in e.items()} for e in events],
        }
    )


class View:
    def __init__(self, index: int, env_key: str) -> None:
        self.view_id = f"restart-view-{index:03d}"
        # Views come in pairs on one video: two tabs of one signed-in user, two tabs of one
        # cookie, or two views without cookies (disableCookies: each is its own viewer).
        pair = index // 2
        self.video = VIDEOS[pair % len(VIDEOS)]
        self.env_key = env_key
        self.sequence = 0
        self.ids: dict[str, str] = {}
        if pair % 3 == 0:
            self.ids["viewer_user_id"] = f"user-{pair}"
        elif pair % 3 == 1:
            self.ids["mux_viewer_id"] = f"cookie-{pair}"

    def event(self, template: dict[str, Any], **changes: Any) -> dict[str, Any]:
        self.sequence += 1
        event = copy.deepcopy(template)
        event.pop("viewer_user_id", None)
        event.pop("mux_viewer_id", None)
        event.update(
            env_key=self.env_key,
            view_id=self.view_id,
            video_id=self.video,
            view_sequence_number=self.sequence,
            player_sequence_number=self.sequence,
            player_instance_id=f"player-{self.view_id}",
            **changes,
        )
        return event

    def start(self) -> dict[str, Any]:
        source = (
            f"https://stream.mux.com/{PLAYBACK_ID}.m3u8"
            if self.video == "restart-video-c"
            else "http://127.0.0.1/clip.webm"
        )
        return self.event(FULL_STATE, video_source_url=source, **self.ids)

    def heartbeat(self) -> dict[str, Any]:
        return self.event(HEARTBEAT)

    def pause(self) -> dict[str, Any]:
        return self.event(PAUSE)


def read_counts(server: LiveServer, key_id: str, private_key: Any) -> dict[tuple[str, str], tuple]:
    counts = {}
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for id_type, value in [*(("video_id", v) for v in VIDEOS), ("playback_id", PLAYBACK_ID)]:
            token = sign_viewer_counts(value, type=id_type, key_id=key_id, private_key=private_key)
            response = client.get("/counts", params={"token": token})
            assert response.status_code == 200, response.text
            (data,) = response.json()["data"]
            counts[(id_type, value)] = (data["views"], data["viewers"])
    return counts


def post(server: LiveServer, events: list[dict[str, Any]]) -> None:
    response = httpx.post(f"{server.base_url}/", content=body(events), timeout=10)
    assert response.status_code == 200, response.text
    assert response.json()["rejected"] == []


def test_sigterm_and_restart_lose_nothing(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        key_id, encoded_key = server.create_signing_key()
        private_key = load_private_key(encoded_key)

        views = [View(i, server.env_key) for i in range(36)]
        for batch in range(0, len(views), 12):
            post(server, [v.start() for v in views[batch : batch + 12]])
        pauses = [v.pause() for v in views[::7]]  # a few viewers pause...
        post(server, pauses)
        post(server, [views[0].event(HEARTBEAT, event="play")])  # ...and one resumes
        before = read_counts(server, key_id, private_key)
        happening = len(views) - len(views[::7]) + 1
        assert sum(before[("video_id", v)][0] for v in VIDEOS) == happening
        # Two tabs of one viewer count once: fewer viewers than views somewhere.
        assert any(viewers < views_ for views_, viewers in before.values())
        assert before[("playback_id", PLAYBACK_ID)] == before[("video_id", "restart-video-c")]

        assert server.stop(signal.SIGTERM) == 0
        assert server.state_file.exists()
        server.launch()

        after = read_counts(server, key_id, private_key)
        assert after == before

        # Heartbeats carry no viewer ids (beacons.md §3.4): the restored state supplies them.
        post(server, [v.heartbeat() for v in views])
        assert read_counts(server, key_id, private_key) == before
        # The dedupe state came back too: view 0's old pause, re-sent (a retry that crossed
        # the restart), is recognised and does not pause it again.
        post(server, pauses[:1])
        assert read_counts(server, key_id, private_key) == before
        # View 1 ends; its viewer (user-0) still watches in view 0: one view fewer, same viewers.
        post(server, [views[1].event(HEARTBEAT, event="viewend")])
        final = read_counts(server, key_id, private_key)
        views_before, viewers_before = before[("video_id", views[1].video)]
        assert final[("video_id", views[1].video)] == (views_before - 1, viewers_before)
    finally:
        server.kill()
