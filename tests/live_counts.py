"""A real ``headcount serve`` with one signing key made through its System API: what an app
using the SDK or the CLI talks to."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tests.e2e.conftest import LiveServer, start_server


@dataclass
class CountsServer:
    server: LiveServer
    key_id: str
    private_key: str  # base64 of a PEM, as the System API returns it

    @property
    def base_url(self) -> str:
        return self.server.base_url


def start_counts_server(directory: Path) -> CountsServer:
    server = start_server(directory)
    try:
        return CountsServer(server, *server.create_signing_key())
    except BaseException:
        server.kill()
        raise
