"""``headcount simulate`` against a live ``headcount serve``: after ten seconds of a compressed
audience (speed x20: 200 simulated seconds), ``/counts`` for the top videos equals the counts the
simulator printed.

The server's liveness window is 3 wall seconds, which at speed x20 is the 60 simulated seconds a
real deployment uses, so abandoned tabs really expire during the run (the test checks some did).
It sweeps and refreshes its snapshot every 0.25 s, so its answers lag the model by well under
the simulator's settle margin (2.5 wall seconds here).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from headcount import sign_viewer_counts
from tests.e2e.conftest import run_headcount, start_server

pytestmark = pytest.mark.slow

SPEED = 20
WINDOW = 3  # wall seconds: 60 simulated seconds at SPEED
AGREEMENT_TIMEOUT = 2.5  # s: the simulator's settle margin, min(5, (60 - 10) / SPEED)


def test_counts_api_agrees_with_the_simulated_audience(tmp_path: Path) -> None:
    server = start_server(
        tmp_path, liveness_window=WINDOW, sweep_interval=0.25, snapshot_interval=0.25
    )
    try:
        key_id, private_key = server.create_signing_key()
        key_file = tmp_path / "signing-key.b64"
        key_file.write_text(private_key)
        started = time.monotonic()
        summary: dict[str, Any] = json.loads(
            run_headcount(
                "simulate",
                "--url",
                server.base_url,
                "--env-key",
                server.env_key,
                "--viewers",
                "60",
                "--videos",
                "6",
                "--duration",
                "10",
                "--mean-watch",
                "60",
                "--speed",
                str(SPEED),
                "--liveness-window",
                str(WINDOW),
                "--seed",
                "11",
                "--top",
                "4",
                "--key-id",
                key_id,
                "--private-key",
                str(key_file),
                "--json",
                timeout=60,
            )
        )
        assert time.monotonic() - started < 30

        # Everything arrived and was accepted; the audience did all it is meant to do.
        assert summary["errors"] == 0, summary["last_error"]
        assert summary["rejected_events"] == 0
        assert summary["posts"] > 200
        assert summary["simulated_failures"]["unacknowledged"] > 0  # re-sent batches
        assert summary["settle_seconds"] == AGREEMENT_TIMEOUT
        assert summary["views"] > summary["viewers"] > 0  # some viewers have two tabs
        assert summary["expired_views"] > 0  # abandoned tabs the server had to time out
        top = summary["videos"][:4]
        assert top[0]["views"] > top[-1]["views"]  # a skewed popularity

        # The simulator's own reading of /counts (its final, bounded wait) agreed...
        for row in top:
            assert row["server"] == {"views": row["views"], "viewers": row["viewers"]}, row

        # ... and so does ours, by video id and by the playback id derived from the source URL.
        def tokens(row: dict[str, Any]) -> list[str]:
            return [
                sign_viewer_counts(
                    row[id_type], type=id_type, key_id=key_id, private_key=private_key
                )
                for id_type in ("video_id", "playback_id")
            ]

        wanted = {token: (row["views"], row["viewers"]) for row in top for token in tokens(row)}

        def read_all() -> dict[str, tuple[int, int]]:
            seen = {}
            for token in wanted:
                answer = httpx.get(f"{server.base_url}/counts", params={"token": token})
                assert answer.status_code == 200, answer.text
                row = answer.json()["data"][0]
                seen[token] = (row["views"], row["viewers"])
            return seen

        deadline = time.monotonic() + AGREEMENT_TIMEOUT
        seen = read_all()
        while seen != wanted and time.monotonic() < deadline:
            time.sleep(0.1)
            seen = read_all()
        assert seen == wanted
    finally:
        server.kill()
