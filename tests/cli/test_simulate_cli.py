"""``headcount simulate`` from a shell: usage errors say what to change, and a short run against
a real ``headcount serve`` prints its tables (the JSON output is tested in tests/e2e)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from headcount.cli import main
from tests.e2e.conftest import LiveServer, free_port, start_server

BASE = ["simulate", "--url", "http://127.0.0.1:9", "--env-key", "k1", "--duration", "1"]


def invoke(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False, env={})


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        server.kill()


def test_a_window_too_short_for_heartbeats_is_refused_with_the_fix() -> None:
    result = invoke(*BASE, "--speed", "0.5")  # a 60 s window is 30 simulated seconds
    assert result.exit_code == 2
    assert "30 simulated seconds" in result.output and "Raise --speed" in result.output


def test_a_signing_key_needs_both_halves() -> None:
    result = invoke(*BASE, "--key-id", "abc")
    assert result.exit_code == 2 and "--key-id and --private-key go together" in result.output


def test_a_private_key_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    key_file = tmp_path / "key.b64"
    key_file.write_text("bm90IGEga2V5")  # base64 of "not a key"
    result = invoke(*BASE, "--key-id", "abc", "--private-key", str(key_file))
    assert result.exit_code == 2 and "--private-key" in result.output


def test_only_http_urls() -> None:
    result = invoke("simulate", "--url", "127.0.0.1:8000", "--env-key", "k1")
    assert result.exit_code == 2 and "http://127.0.0.1:8000" in result.output


@pytest.mark.slow
def test_a_short_run_prints_the_expected_and_the_server_counts(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        key_id, private_key = server.create_signing_key()
        result = invoke(
            "simulate",
            "--url",
            server.base_url,
            "--env-key",
            server.env_key,
            "--viewers",
            "30",
            "--videos",
            "3",
            "--duration",
            "2",
            "--speed",
            "20",
            "--seed",
            "5",
            "--key-id",
            key_id,
            "--private-key",
            private_key,  # the base64 itself, as the System API returned it
        )
    finally:
        server.kill()
    assert result.exit_code == 0, result.output
    assert "expected /counts at the end of the run" in result.output
    assert "server" in result.output and "sim-video-1" in result.output
    assert "seed 5:" in result.output and " 0 errors" in result.output


def test_a_run_whose_posts_all_fail_exits_1_and_says_why() -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    result = CliRunner().invoke(
        main,
        ["simulate", "--url", url, "--env-key", "k1", "--duration", "1", "--speed", "10"],
        env={},
    )
    assert result.exit_code == 1, result.output
    assert "POSTs failed (last: ClientConnectorError" in result.output
    assert re.search(
        r"^  \d+ x ClientConnectorError: nothing answers at --url$", result.output, re.M
    )


def test_rejected_events_exit_1_with_their_reason_and_progress_is_plain_lines(
    live_server: LiveServer,
) -> None:
    args = ["--url", live_server.base_url, "--viewers", "3", "--duration", "1", "--speed", "10"]
    result = invoke("simulate", *args, "--env-key", "not-an-env-key", "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["rejected_events"] > 0 and summary["errors"] == 0
    assert summary["failures"] == {"rejected: unknown_env_key": summary["rejected_events"]}
    assert "--env-key is not an environment of this server" in result.stderr
    # No terminal here: progress is plain lines (on stderr with --json), not a redrawn table.
    assert re.search(r"^progress: simulated 0/10 s, wall ", result.stderr, re.M)
    assert re.search(
        r"^done: simulated 10/10 s, wall .* 0 errors, \d+ rejected", result.stderr, re.M
    )
    good = invoke("simulate", *args, "--env-key", live_server.env_key)
    assert good.exit_code == 0, good.output
    assert "done: simulated 10/10 s" in good.output
    assert " 0 errors, 0 rejected events" in good.output and "were rejected" not in good.output
