"""Scale-out for real: several ``headcount serve`` processes on one Postgres and one Redis.

A beacon posted to one node counts on every other; a collector-only and a counts-only node
share their state; a deleted signing key is refused everywhere within a second; ``--workers``
processes agree; a node killed mid-audience loses nothing that was acknowledged; and while
Redis is away the collector refuses (so mux-embed keeps its batch) and counts recover once it
is back, empty, from the heartbeats that follow.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.e2e.scale_kit import (
    beacon,
    nodes,
    post_until_accepted,
    read_counts,
    wait_for_counts,
)
from tests.redis_cluster import RedisCluster
from tests.redis_servers import RedisServer, new_key_prefix

pytestmark = pytest.mark.slow


def _live_url(server: RedisServer) -> str:
    return f"{server.url}?prefix={new_key_prefix()}"


def _start(view: str, video: str, viewer: str) -> dict[str, object]:
    return {"e": "viewstart", "xid": view, "xsqno": 1, "vid": video, "mvrid": viewer}


def test_a_beacon_posted_to_one_node_counts_on_the_other(
    tmp_path: Path, redis_standalone: RedisServer
) -> None:
    with nodes(tmp_path, _live_url(redis_standalone), 2) as group:
        a, b = group.servers
        token = group.token("shared-video")
        assert read_counts(b, token) == (0, 0)
        body = beacon(group.env_key, _start("v1", "shared-video", "c1"))
        assert httpx.post(f"{a.base_url}/collect", content=body, timeout=5).status_code == 200
        waited = wait_for_counts(b, token, (1, 1))
        assert waited < 2.5  # node B's read cache is the 1 s snapshot interval
        body = beacon(group.env_key, {"e": "viewend", "xid": "v1", "xsqno": 2})
        assert httpx.post(f"{b.base_url}/", content=body, timeout=5).status_code == 200
        wait_for_counts(a, token, (0, 0))


def test_collector_and_counts_nodes_share_state(
    tmp_path: Path, redis_standalone: RedisServer
) -> None:
    with nodes(tmp_path, _live_url(redis_standalone), 1, role="counts,system") as group:
        collector = group.add(tmp_path / "collector", role="collector")
        reader = group.servers[0]
        token = group.token("split-video")
        body = beacon(
            group.env_key,
            _start("v1", "split-video", "c1"),
            _start("v2", "split-video", "c1"),
            _start("v3", "split-video", "c2"),
        )
        assert httpx.post(f"{collector.base_url}/collect", content=body).status_code == 200
        wait_for_counts(reader, token, (3, 2))
        # Each node serves only its own surfaces.
        assert httpx.get(f"{collector.base_url}/counts", params={"token": token}).status_code == 404
        assert httpx.post(f"{reader.base_url}/collect", content=body).status_code == 404


def test_a_deleted_signing_key_is_refused_by_every_node_within_a_second(
    tmp_path: Path, redis_standalone: RedisServer
) -> None:
    with nodes(tmp_path, _live_url(redis_standalone), 3) as group:
        token = group.token("any-video")
        for server in group.servers:
            assert read_counts(server, token) == (0, 0)  # verified and cached on every node
        first = group.servers[0]
        deleted = httpx.delete(
            f"{first.base_url}/system/v1/signing-keys/{group.key_id}", auth=first.auth
        )
        assert deleted.status_code == 204
        at = time.monotonic()
        refused_after = []
        for server in group.servers:
            while read_counts(server, token) != 403:
                assert time.monotonic() - at < 3, f"{server.base_url} still answers the token"
                time.sleep(0.02)
            refused_after.append(time.monotonic() - at)
        assert max(refused_after) <= 1.0, refused_after


def test_workers_share_one_set_of_counts(tmp_path: Path, redis_standalone: RedisServer) -> None:
    with nodes(tmp_path, _live_url(redis_standalone), 1, workers=2) as group:
        server = group.servers[0]
        token = group.token("worker-video")
        for i in range(20):
            body = beacon(group.env_key, _start(f"v{i}", "worker-video", f"c{i}"))
            # New connections, so the kernel spreads them over both worker processes.
            assert httpx.post(f"{server.base_url}/collect", content=body).status_code == 200
        wait_for_counts(server, token, (20, 20))
        reads = {read_counts(server, token) for _ in range(20)}
        assert reads == {(20, 20)}


def test_a_node_killed_mid_audience_loses_nothing_acknowledged(
    tmp_path: Path, redis_standalone: RedisServer
) -> None:
    views = 60
    with nodes(tmp_path, _live_url(redis_standalone), 3) as group:
        servers = group.servers
        token = group.token("big-event")
        stop = threading.Event()

        def watch(view: int) -> int:
            """One player: a start, then heartbeats, every POST retried until acknowledged,
            each to the next node (as behind a round-robin balancer)."""
            failures = 0
            sequence = 1
            body = beacon(group.env_key, _start(f"v{view}", "big-event", f"c{view}"))
            failures += post_until_accepted(servers, body, start=view)
            for round_ in range(8):
                sequence += 1
                body = beacon(
                    group.env_key,
                    {"e": "hb", "xid": f"v{view}", "vid": "big-event", "xsqno": sequence},
                )
                failures += post_until_accepted(servers, body, start=view + round_)
                if stop.is_set():
                    break
            return failures

        with ThreadPoolExecutor(max_workers=12) as pool:
            players = [pool.submit(watch, v) for v in range(views)]
            time.sleep(0.3)  # the audience is mid-flight
            servers[1].process.kill()  # SIGKILL: no shutdown, requests cut mid-way
            failures = sum(p.result(timeout=120) for p in players)
        survivors = [servers[0], servers[2]]
        for server in survivors:
            wait_for_counts(server, token, (views, views))
        assert failures > 0, "the kill cut no request: the test proved nothing"
        # Ends after the kill are counted too: never negative, never double.
        for view in range(0, views, 2):
            body = beacon(group.env_key, {"e": "viewend", "xid": f"v{view}", "xsqno": 50})
            post_until_accepted(survivors, body)
        wait_for_counts(survivors[0], token, (views // 2, views // 2))


def test_redis_outage_refuses_beacons_and_counts_recover_after_an_empty_restart(
    tmp_path: Path,
) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    try:
        with nodes(tmp_path / "nodes", redis.url, 2) as group:
            a, b = group.servers
            token = group.token("outage-video")
            for view in range(5):
                body = beacon(group.env_key, _start(f"v{view}", "outage-video", f"c{view}"))
                assert httpx.post(f"{a.base_url}/collect", content=body).status_code == 200
            wait_for_counts(b, token, (5, 5))

            redis.kill()
            heartbeat = beacon(group.env_key, {"e": "hb", "xid": "v0", "xsqno": 2})
            started = time.monotonic()
            answer = httpx.post(f"{a.base_url}/collect", content=heartbeat, timeout=10)
            assert time.monotonic() - started < 5  # an answer, not a hang
            assert answer.status_code == 503  # not acknowledged: mux-embed keeps the batch
            assert answer.json()["error"]["type"] == "service_unavailable"
            # /counts: the last counts this node read, marked by their updated_at...
            time.sleep(1.2)  # past the read cache's interval
            assert read_counts(b, token) == (5, 5)
            # ...and an envelope for an id it never read.
            assert read_counts(b, group.token("never-read")) == 503

            redis.restart()  # empty: no persistence
            for view in range(5):
                # As mux-embed sends them: view id, video id and sequence number only.
                body = beacon(
                    group.env_key, {"e": "hb", "xid": f"v{view}", "vid": "outage-video", "xsqno": 3}
                )
                post_until_accepted([a, b], body, start=view)
            # Heartbeats carry no viewer id: until a full-state event, each view is its own
            # viewer (five views, five viewers either way).
            wait_for_counts(b, token, (5, 5))
            assert "Traceback" not in a.log() + b.log()
    finally:
        redis.kill()


def test_counts_keep_flowing_when_a_cluster_master_fails_over(
    tmp_path: Path, own_redis_cluster: RedisCluster
) -> None:
    live_url = f"{own_redis_cluster.seed_url}?prefix={new_key_prefix()}"
    try:
        with nodes(tmp_path, live_url, 2) as group:
            servers = group.servers
            token = group.token("cluster-video")
            views = 30
            for view in range(views):
                body = beacon(group.env_key, _start(f"v{view}", "cluster-video", f"c{view}"))
                post_until_accepted(servers, body, start=view)
            wait_for_counts(servers[1], token, (views, views))
            own_redis_cluster.kill_master(0)  # its replica takes over
            for view in range(views, 2 * views):
                body = beacon(group.env_key, _start(f"v{view}", "cluster-video", f"c{view}"))
                post_until_accepted(servers, body, start=view, timeout=30)
            wait_for_counts(servers[0], token, (2 * views, 2 * views), timeout=15)
    finally:
        own_redis_cluster.heal()
