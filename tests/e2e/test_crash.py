"""A crash loses nothing the collector acknowledged: a real ``headcount serve`` with the memory
live store plays a simulated audience, is SIGKILLed right after views started, ended and paused
since its last snapshot, and is started again on the same files. ``/counts`` then shows exactly
the views and viewers the simulator expects, for every video, and keeps showing them as the
audience goes on (later heartbeats carry no viewer ids: the identities came back from the
journal, not from the beacons).

The server's liveness window is long (600 s) and so is the model's, so nothing expires during
the test and the comparison is exact whatever the machine's speed; expiry after a restart is
covered by ``tests/stores/test_memory_journal.py``.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from headcount.sdk.signing import load_private_key, sign_viewer_counts
from headcount.sim.audience import Audience, AudiencePlan
from headcount.sim.player import Post
from headcount.stores.live import Counts
from headcount.stores.memory_journal import journal_generations, journal_path
from tests.e2e.conftest import LiveServer, start_server

pytestmark = pytest.mark.slow

WINDOW = 600.0  # s, server and model: nothing expires while the test runs
SAVE_INTERVAL = 3.0  # s: the first snapshot comes ~3 s after the start


def deliver(client: httpx.Client, posts: list[Post]) -> None:
    for post in posts:
        answer = client.post("/", content=post.body(), headers={"Content-Type": "text/plain"})
        assert answer.status_code == 200, answer.text


def server_counts(
    server: LiveServer, audience: Audience, key_id: str, private_key: object
) -> dict[str, Counts]:
    seen = {}
    with httpx.Client(base_url=server.base_url, timeout=10) as client:
        for video in audience.videos:
            token = sign_viewer_counts(
                video.video_id, type="video_id", key_id=key_id, private_key=private_key
            )
            answer = client.get("/counts", params={"token": token})
            assert answer.status_code == 200, answer.text
            (row,) = answer.json()["data"]
            seen[video.video_id] = Counts(row["views"], row["viewers"])
    return seen


def names_of(posts: list[Post]) -> set[str]:
    return {event["event"] for post in posts for event in post.events}


def test_sigkill_mid_audience_loses_nothing_acknowledged(tmp_path: Path) -> None:
    server = start_server(
        tmp_path,
        liveness_window=WINDOW,
        save_interval=SAVE_INTERVAL,
        sweep_interval=0.25,
        snapshot_interval=0,
    )
    try:
        key_id, encoded_key = server.create_signing_key()
        private_key = load_private_key(encoded_key)
        plan = AudiencePlan(
            env_key=server.env_key,
            viewers=40,
            videos=4,
            duration=240,
            seed=5,
            liveness_window=WINDOW,
            mean_watch=60,
        )
        audience = Audience(plan)
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            deliver(client, audience.advance(100))
            deadline = time.monotonic() + SAVE_INTERVAL + 10
            while not server.state_file.exists():  # the first periodic snapshot
                assert time.monotonic() < deadline, "no snapshot was written"
                time.sleep(0.02)
            snapshot = server.state_file.stat().st_mtime_ns
            since_snapshot = audience.advance(130)
            deliver(client, since_snapshot)
        # Starts, ends and pauses happened since the snapshot (viewend: tabs closed; pause and
        # ended: content that played to its end) and the counts moved with them.
        assert {"viewstart", "viewend", "pause"} <= names_of(since_snapshot)
        expected = audience.expected_counts(130)
        assert sum(c.views for c in expected.values()) > sum(c.viewers for c in expected.values())
        assert server_counts(server, audience, key_id, private_key) == expected

        server.stop(signal.SIGKILL)
        assert server.state_file.stat().st_mtime_ns == snapshot, "a save ran: not a test of it"
        journals = journal_generations(server.state_file)
        assert journal_path(server.state_file, journals[-1]).stat().st_size > 0
        server.launch()

        assert server_counts(server, audience, key_id, private_key) == expected
        # The audience goes on: heartbeats and deltas (no viewer ids in them) for the views
        # restored, new views, more ends. Every identity is still the right one.
        with httpx.Client(base_url=server.base_url, timeout=10) as client:
            deliver(client, audience.advance(170))
        assert server_counts(server, audience, key_id, private_key) == audience.expected_counts(170)
    finally:
        server.kill()
