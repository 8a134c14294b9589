"""A second ``headcount serve`` on a port or a live-state file already in use fails before it
touches anything (no database made, nothing of the running server's state overwritten) and
says which port or file and how to pick another; the running server goes on. The state file's
lock dies with its process, so a server SIGKILLed is replaced at once."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from headcount.stores.memory_journal import journal_generations, journal_path
from tests.e2e.conftest import HEADCOUNT, LiveServer, _clean_environment, free_port, start_server

pytestmark = pytest.mark.slow


def second_server(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    directory.mkdir(parents=True, exist_ok=True)
    return subprocess.run(
        [HEADCOUNT, "serve", "--host", "127.0.0.1", *args],
        cwd=directory,
        env=_clean_environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_a_second_server_on_the_same_port_stops_before_touching_anything(
    live_server: LiveServer, tmp_path: Path
) -> None:
    database = tmp_path / "second" / "headcount.db"
    done = second_server(
        tmp_path / "second",
        "--port",
        str(live_server.port),
        "--database",
        f"sqlite:///{database}",
        "--state-file",
        str(tmp_path / "second" / "live-state.json"),
    )
    assert done.returncode == 1, done
    assert f"port {live_server.port} on 127.0.0.1 is already in use" in done.stderr
    assert "--port" in done.stderr and "Traceback" not in done.stderr
    assert not database.exists() and "Headcount is up" not in done.stdout
    assert httpx.get(f"{live_server.base_url}/healthz").status_code == 200


def test_a_second_server_on_the_same_state_file_leaves_it_alone(
    live_server: LiveServer, tmp_path: Path
) -> None:
    live_server.stop(signal.SIGTERM)  # saves its state file...
    live_server.launch()  # ...and holds it again
    posted = httpx.post(
        f"{live_server.base_url}/",
        json={
            "events": [
                {"event": "viewstart", "env_key": live_server.env_key, "view_id": "claimed-view"}
            ]
        },
    )
    assert posted.status_code == 200 and posted.json()["rejected"] == []
    saved = live_server.state_file.read_bytes()
    (generation,) = journal_generations(live_server.state_file)
    journal = journal_path(live_server.state_file, generation)
    journaled = journal.read_bytes()
    assert journaled  # the view started since the snapshot
    database = tmp_path / "second" / "headcount.db"
    done = second_server(
        tmp_path / "second",
        "--port",
        str(free_port()),
        "--database",
        f"sqlite:///{database}",
        "--state-file",
        str(live_server.state_file),
    )
    assert done.returncode == 1, done
    assert f"the live-state file {live_server.state_file} (and its journal) is in use" in (
        done.stderr
    )
    assert "--state-file" in done.stderr
    assert not database.exists()
    # Neither the snapshot nor the journal was written, and no journal was added beside them.
    assert live_server.state_file.read_bytes() == saved
    assert journal_generations(live_server.state_file) == [generation]
    assert journal.read_bytes() == journaled
    assert httpx.get(f"{live_server.base_url}/healthz").status_code == 200


def test_the_lock_dies_with_a_killed_server(tmp_path: Path) -> None:
    (tmp_path / "first").mkdir()
    (tmp_path / "replacement").mkdir()
    first = start_server(tmp_path / "first")
    try:
        first.process.send_signal(signal.SIGKILL)
        first.process.wait(10)
        replacement = start_server(
            tmp_path / "replacement",
            database_url=first.database_url,
            state_file=first.state_file,
        )
        assert httpx.get(f"{replacement.base_url}/healthz").status_code == 200
        replacement.stop()
    finally:
        first.kill()
