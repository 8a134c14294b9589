"""``GET /counts/stream`` across nodes: two ``headcount serve`` processes sharing Postgres and a
real Redis. A browser's stream on node B follows beacons posted to node A within a second, and
ends with ``unknown_key`` when the signing key is deleted through node A (B learns it from the
revocation poll), after which B refuses the token so EventSource stops."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from headcount.sdk.signing import sign_viewer_counts
from tests.e2e.conftest import LiveServer
from tests.e2e.scale_kit import beacon, nodes
from tests.redis_servers import RedisServer, new_key_prefix

pytestmark = pytest.mark.slow

# Node B reads each streamed counter every 0.25 s through its read cache (half the 1 s
# snapshot interval), and the revocation poll runs every 0.5 s: 1 s either way, plus room
# for a loaded CI machine.
REACH = 2.0


def events(server: LiveServer, token: str) -> Iterator[tuple[float, dict[str, str]]]:
    """(arrival time, fields) of each event of the stream, comments left out."""
    with (
        httpx.Client(timeout=httpx.Timeout(5, read=REACH * 2)) as client,
        client.stream("GET", f"{server.base_url}/counts/stream", params={"token": token}) as got,
    ):
        assert got.status_code == 200, got.read()
        assert got.headers["content-type"] == "text/event-stream"
        fields: dict[str, str] = {}
        for line in got.iter_lines():
            if line:
                name, _, value = line.partition(": ")
                if name:
                    fields[name] = value
                continue
            if "data" in fields:
                yield time.monotonic(), fields
            fields = {}


def views(fields: dict[str, str]) -> int:
    return int(orjson.loads(fields["data"])["data"][0]["views"])


def test_a_stream_on_one_node_follows_beacons_posted_to_the_other(
    tmp_path: Path, redis_standalone: RedisServer
) -> None:
    with nodes(tmp_path, f"{redis_standalone.url}?prefix={new_key_prefix()}", 2) as group:
        a, b = group.servers
        stream = events(b, group.token("streamed-video"))
        assert views(next(stream)[1]) == 0
        start = {"e": "viewstart", "xid": "v1", "xsqno": 1, "vid": "streamed-video", "mvrid": "c"}
        answer = httpx.post(f"{a.base_url}/collect", content=beacon(group.env_key, start))
        assert answer.status_code == 200
        posted = time.monotonic()
        arrived, fields = next(stream)
        assert views(fields) == 1 and arrived - posted < REACH
        end = {"e": "viewend", "xid": "v1", "xsqno": 2}
        assert httpx.post(f"{a.base_url}/", content=beacon(group.env_key, end)).status_code == 200
        posted = time.monotonic()
        arrived, fields = next(stream)
        assert views(fields) == 0 and arrived - posted < REACH
        stream.close()


def test_a_key_deleted_on_one_node_ends_the_streams_on_the_other(
    tmp_path: Path, redis_standalone: RedisServer
) -> None:
    with nodes(tmp_path, f"{redis_standalone.url}?prefix={new_key_prefix()}", 2) as group:
        a, b = group.servers
        key_id, private_key = a.create_signing_key()
        token = sign_viewer_counts("doomed-video", key_id=key_id, private_key=private_key)
        stream = events(b, token)
        next(stream)
        deleted = httpx.delete(f"{a.base_url}/system/v1/signing-keys/{key_id}", auth=a.auth)
        assert deleted.status_code == 204
        removed = time.monotonic()
        arrived, fields = next(stream)
        assert fields["event"] == "error" and arrived - removed < REACH
        assert orjson.loads(fields["data"])["error"]["type"] == "unknown_key"
        assert next(stream, None) is None  # and the stream ends
        again = httpx.get(f"{b.base_url}/counts/stream", params={"token": token})
        assert again.status_code == 403 and again.json()["error"]["type"] == "unknown_key"
