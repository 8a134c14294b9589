"""``headcount serve`` as a process: it answers, and stops cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import re
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import HEADCOUNT, free_port, fresh_server, start_server

STOPPED = "Headcount stopped cleanly"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_and_runs_the_shutdown_hooks(
    tmp_path: Path, sig: signal.Signals
) -> None:
    # No periodic save during the test: a state file can only come from the shutdown path.
    server = start_server(tmp_path, save_interval=3600)
    try:
        assert httpx.get(f"{server.base_url}/healthz").json() == {"status": "ok"}
        assert not server.state_file.exists()
        assert server.stop(sig) == 0
        # Written by the live store's close() and logged at the end of Runtime.stop(): both
        # run only from the ASGI lifespan's shutdown.
        assert server.state_file.is_file()
        assert STOPPED in server.log()
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{server.base_url}/healthz", timeout=1)
    finally:
        server.kill()


def test_restart_serves_the_same_database_on_the_same_port(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        server.restart()
        assert server.log().count(STOPPED) == 1
        answer = httpx.get(f"{server.base_url}/system/v1/signing-keys", auth=server.auth)
        assert answer.status_code == 200
    finally:
        server.kill()


def test_first_start_prints_working_credentials_once(tmp_path: Path) -> None:
    # No `headcount init`: the server bootstraps the database itself on its first start.
    server = fresh_server(tmp_path, f"sqlite:///{tmp_path / 'fresh' / 'headcount.db'}")
    try:
        server.launch()
        first = server.log()
        (curl,) = [
            line.strip() for line in first.splitlines() if line.strip().startswith("curl -X")
        ]
        match = re.fullmatch(r"curl -X POST -u (\S+?):(\S+) (\S+)", curl)
        assert match, curl
        token_id, secret, url = match.groups()
        assert url == f"{server.base_url}/system/v1/signing-keys"
        env_key = re.search(r"Env key\s+([a-z0-9]+)", first)
        assert env_key
        assert f"--env-key {env_key.group(1)}" in first  # the simulate line is ready too
        # The pasted command works: the printed credentials are the server's.
        created = httpx.post(url, auth=(token_id, secret))
        assert created.status_code == 201

        server.restart()
        second = server.log()[len(first) :]
        assert "Headcount listening on" in second
        assert "headcount init" in second
        assert secret not in second
        assert httpx.get(url, auth=(token_id, secret)).status_code == 200
    finally:
        server.kill()


def test_serve_refuses_a_memory_control_store(tmp_path: Path) -> None:
    done = subprocess.run(
        [HEADCOUNT, "serve", "--database", "memory://", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert "memory://" in done.stderr
