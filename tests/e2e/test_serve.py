"""``headcount serve`` as a process: it answers, and stops cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import LiveServer, start_server

STOPPED = "Headcount stopped cleanly"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_the_server_and_runs_the_shutdown_hooks(
    live_server: LiveServer, sig: signal.Signals
) -> None:
    assert httpx.get(f"{live_server.base_url}/healthz").json() == {"status": "ok"}
    assert live_server.stop(sig) == 0
    # Logged at the end of Runtime.stop(), which only granian's __rsgi_del__ calls.
    assert STOPPED in live_server.log()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{live_server.base_url}/healthz", timeout=1)


def test_restart_serves_the_same_database_on_the_same_port(tmp_path: Path) -> None:
    server = start_server(tmp_path)
    try:
        server.restart()
        assert server.log().count(STOPPED) == 1
        answer = httpx.get(f"{server.base_url}/system/v1/signing-keys", auth=server.auth)
        assert answer.status_code == 200
    finally:
        server.kill()
