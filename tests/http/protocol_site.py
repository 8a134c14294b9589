"""What the HotPathProtocol tests share (``test_protocol_*.py``): a running server with the
credentials and counters a test needs (``Site``, ``start_site``), request builders, assertions,
and the ``site`` fixture (``tests/http/conftest.py`` re-exports it).

Those tests send raw HTTP/1.1 bytes over real sockets to uvicorn configured as ``headcount
serve`` configures it, in-process, so they can also read the counters that tell which way a
request took (the keyring's ``store_lookups``, the verifier's ``rsa_verifications``, the
collector's env_key cache). ``site`` is module-scoped: one server per test module and live
store (memory, then Redis).
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from headcount.auth.environments import initialize
from headcount.auth.signing_keys import create_signing_key
from headcount.bootstrap import build_runtime
from headcount.http.app import HeadcountApp
from headcount.runtime import Runtime
from headcount.sdk.signing import sign_viewer_counts
from headcount.settings import load_settings
from headcount.stores.control import Environment
from tests.http.protocol_kit import Connection, Response, ThreadedServer, request
from tests.redis_servers import new_key_prefix

__all__ = [
    "MAX_BODY",
    "Site",
    "assert_accepted",
    "assert_envelope",
    "collect_request",
    "counts_request",
    "new_video",
    "site",
    "start_site",
    "views",
]

MAX_BODY = 8192
# The first POST of a real mux-embed session (six events, viewstart last): one view starts.
CAPTURES = Path(__file__).parents[1] / "fixtures" / "beacons" / "A-video-element" / "raw"
(CAPTURE,) = CAPTURES.glob("001-POST-*viewstart.json")
CAPTURED_ENV_KEY = b"testenv123"
CAPTURED_VIDEO = b"my-video-id-1"
CAPTURED_VIEW = b"f68c3f23-2bed-4c92-9bb9-e81820a8a212"
EVENTS_IN_CAPTURE = 6


@dataclass
class Site:
    """A running server and the credentials and counters a test needs."""

    server: ThreadedServer
    app: HeadcountApp
    runtime: Runtime
    environment: Environment
    token_id: str
    token_secret: str
    key_id: str
    private_key: str

    def connect(self) -> Connection:
        return self.server.connect()

    @property
    def store_lookups(self) -> int:
        assert self.app.counts is not None
        return self.app.counts.verifier.keyring.store_lookups

    @property
    def rsa_verifications(self) -> int:
        assert self.app.counts is not None
        return self.app.counts.verifier.rsa_verifications

    def basic_auth(self) -> tuple[str, str]:
        credentials = f"{self.token_id}:{self.token_secret}".encode()
        return "Authorization", "Basic " + base64.b64encode(credentials).decode()

    def token(self, video: str, key: tuple[str, str] | None = None) -> str:
        key_id, private_key = key or (self.key_id, self.private_key)
        return sign_viewer_counts(video, key_id=key_id, private_key=private_key)

    def new_signing_key(self, environment: Environment | None = None) -> tuple[str, str]:
        """A key in the store that this server has never seen."""
        issued = create_signing_key(
            self.runtime.control, (environment or self.environment).id, int(time.time())
        )
        return issued.key.id, issued.private_key

    def new_environment(self) -> Environment:
        environment, _ = initialize(self.runtime.control, f"env-{uuid.uuid4().hex[:8]}", 1)
        return environment

    def beacon(self, video: str, *, environment: Environment | None = None) -> bytes:
        """The captured body, for a new view of ``video`` in ``environment``."""
        env_key = (environment or self.environment).env_key
        return (
            CAPTURE.read_bytes()
            .replace(CAPTURED_ENV_KEY, env_key.encode())
            .replace(CAPTURED_VIDEO, video.encode())
            .replace(CAPTURED_VIEW, str(uuid.uuid4()).encode())
        )


def new_video() -> str:
    return f"video-{uuid.uuid4().hex}"


def counts_request(token: str, method: str = "GET", path: str = "/counts") -> bytes:
    return request(method, f"{path}?token={token}")


def collect_request(body: bytes, path: str = "/collect") -> bytes:
    return request("POST", path, [("Content-Type", "text/plain")], body)


def views(response: Response) -> tuple[int, int]:
    assert response.status == 200, response
    data = response.json()["data"][0]
    return data["views"], data["viewers"]


def assert_accepted(response: Response, events: int = EVENTS_IN_CAPTURE) -> None:
    assert response.status == 200, response
    assert response.json() == {"accepted": events, "rejected": []}
    assert response.header("access-control-allow-origin") == "*"


def assert_envelope(response: Response, status: int, error_type: str) -> None:
    assert response.status == status, response
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["messages"], list) and body["error"]["messages"]
    assert all(isinstance(m, str) and m for m in body["error"]["messages"])
    assert response.header("access-control-allow-origin") == "*"
    assert response.header("cache-control") == "no-store"


def start_site(
    directory: Path,
    live_url: str = "memory://",
    settings: dict[str, Any] | None = None,
    **config: Any,
) -> Site:
    """A server over a fresh SQLite control store, with an environment, an access token and a
    signing key, whose key and env_key are already in memory (so hot requests stay hot).
    ``settings`` override Headcount's settings; ``config`` is uvicorn's."""
    loaded = load_settings(
        {
            "database_url": f"sqlite:///{directory / 'headcount.db'}",
            "state_file": "",
            "max_body_bytes": MAX_BODY,
            "live_url": live_url,
            # Counts read right after a beacon: no per-node read cache (Redis).
            "snapshot_interval": 0.0,
            **(settings or {}),
        },
        environ={},
    )
    runtime = build_runtime(loaded)
    environment, issued = initialize(runtime.control, "protocol", int(time.time()))
    key = create_signing_key(runtime.control, environment.id, int(time.time()))
    app = HeadcountApp(runtime)
    server = ThreadedServer(app, **config).start()
    site = Site(
        server=server,
        app=app,
        runtime=runtime,
        environment=environment,
        token_id=issued.token.id,
        token_secret=issued.secret,
        key_id=key.key.id,
        private_key=key.private_key,
    )
    with site.connect() as warm:
        assert warm.exchange(counts_request(site.token("warm-up"))).status == 200
        warmed = warm.exchange(collect_request(site.beacon("warm-up")))
        assert warmed.status == 200 and warmed.json()["accepted"] == EVENTS_IN_CAPTURE
    return site


@pytest.fixture(scope="module", params=["memory", "redis"])
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    """Every test runs twice: with the memory live store (answered in the parser callback)
    and with Redis (answered from a task once the store replied: the awaited hot path)."""
    live_url = "memory://"
    if request.param == "redis":
        live_url = f"{request.getfixturevalue('redis_standalone').url}?prefix={new_key_prefix()}"
    running = start_site(tmp_path_factory.mktemp("protocol"), live_url)
    try:
        yield running
    finally:
        running.server.stop()
