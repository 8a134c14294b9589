"""Several real ``headcount serve`` nodes sharing one Postgres control store and one Redis
live store: what a scale-out deployment is, for the multi-node tests.

``start_cluster_of_nodes`` runs ``headcount init`` once (through the first node) and starts
the others against the same database and Redis without a second init, so every node knows the
same environment, access token and signing keys. Beacons are mux-embed's abbreviated JSON.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import orjson

from headcount.sdk.signing import sign_viewer_counts
from tests.e2e.conftest import LiveServer, free_port, start_server
from tests.postgres_schema import postgres_schema_url

__all__ = ["Nodes", "beacon", "nodes", "post_until_accepted", "read_counts", "wait_for_counts"]

POLL = 0.05


def beacon(env_key: str, *events: dict[str, Any]) -> bytes:
    return orjson.dumps({"metadata": {}, "events": [{"ake": env_key, **e} for e in events]})


class Nodes:
    def __init__(self, servers: list[LiveServer]) -> None:
        self.servers = servers
        self.key_id, self.private_key = servers[0].create_signing_key()

    @property
    def env_key(self) -> str:
        return self.servers[0].env_key

    def token(self, video_id: str) -> str:
        return sign_viewer_counts(video_id, key_id=self.key_id, private_key=self.private_key)

    def add(self, directory: Path, **overrides: Any) -> LiveServer:
        """One more node on the same stores (no init: it shares the first node's)."""
        first = self.servers[0]
        port = free_port()
        node = replace(
            first,
            base_url=f"http://127.0.0.1:{port}",
            port=port,
            directory=directory,
            overrides={**first.overrides, **overrides},
            state_file=directory / "live-state.json",
            log_path=directory / f"server-{port}.log",
        )
        directory.mkdir(parents=True, exist_ok=True)
        node.launch()
        self.servers.append(node)
        return node

    def kill_all(self) -> None:
        for server in self.servers:
            server.kill()


@contextlib.contextmanager
def nodes(directory: Path, live_url: str, count: int, **overrides: Any) -> Iterator[Nodes]:
    """``count`` nodes on a fresh Postgres schema and the Redis at ``live_url``."""
    with postgres_schema_url() as database_url:
        first_dir = directory / "node-0"
        first_dir.mkdir(parents=True)
        first = start_server(first_dir, database_url=database_url, live_url=live_url, **overrides)
        group = Nodes([first])
        try:
            for i in range(1, count):
                group.add(directory / f"node-{i}")
            yield group
        finally:
            group.kill_all()


def read_counts(server: LiveServer, token: str) -> tuple[int, int] | int:
    """``(views, viewers)``, or the status when the answer is not a 200."""
    answer = httpx.get(f"{server.base_url}/counts", params={"token": token}, timeout=5)
    if answer.status_code != 200:
        return answer.status_code
    data = answer.json()["data"][0]
    return data["views"], data["viewers"]


def wait_for_counts(
    server: LiveServer, token: str, expected: tuple[int, int], timeout: float = 5.0
) -> float:
    """Seconds until ``server`` reads ``expected``; fails with what it last read."""
    start = time.monotonic()
    seen: object = None
    while time.monotonic() - start < timeout:
        seen = read_counts(server, token)
        if seen == expected:
            return time.monotonic() - start
        time.sleep(POLL)
    raise AssertionError(f"{server.base_url} read {seen}, not {expected}, for {timeout}s")


def post_until_accepted(
    servers: list[LiveServer], body: bytes, timeout: float = 20.0, start: int = 0
) -> int:
    """POST a batch as mux-embed does: until a collector answers 200, trying the next node
    after an error or a refused connection. Returns how many attempts failed."""
    deadline = time.monotonic() + timeout
    failures = 0
    i = start
    while time.monotonic() < deadline:
        server = servers[i % len(servers)]
        try:
            answer = httpx.post(f"{server.base_url}/collect", content=body, timeout=5)
            if answer.status_code == 200:
                return failures
        except httpx.TransportError:
            pass
        failures += 1
        i += 1
        time.sleep(POLL)
    raise AssertionError(f"no collector accepted the batch within {timeout}s")
