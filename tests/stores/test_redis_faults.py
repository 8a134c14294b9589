"""The Redis live store when Redis fails it (DESIGN.md "Scale-out"): an outage, a hung
server, a restart that comes back empty, lost scripts, and nodes started while Redis is away.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import pytest

from headcount.errors import StoreUnavailable, error_response
from headcount.stores.live import Counts, LiveStats
from headcount.stores.redis_lua import COUNTER, PARTITION, WRITE
from tests.redis_cluster import CLUSTER_SLOTS, RedisCluster
from tests.redis_servers import RedisServer
from tests.stores.redis_kit import DEADLINE, ENV, T0, WINDOW, OpenRedis, ev, fresh_url, start, video

pytestmark = pytest.mark.anyio


BOUND = 5.0  # seconds a call may take while Redis is away (it must fail fast, not hang)


# -- faults: an outage, a restart, lost scripts -----------------------------------------------


async def test_an_outage_answers_stale_counts_and_refuses_to_store(
    private_redis: RedisServer, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(private_redis.url), snapshot_interval=1.0)
    await store.ingest(ENV, [start("v1", viewer="c1"), start("v2", viewer="c2")], T0)
    await store.sweep(T0 + 1)
    assert await video(store, T0 + 1) == (2, 2)  # read, and cached
    private_redis.kill()

    async def bounded(call: Awaitable[Any]) -> Any:
        started = time.monotonic()
        try:
            return await call
        finally:
            assert time.monotonic() - started < BOUND

    # The cache is older than the interval: a read is tried, fails, the last answer stands
    # (its updated_at, the last sweep that succeeded, says how old it is).
    assert await bounded(store.counts(ENV, "video_id", "vid", T0 + 10)) == Counts(2, 2)
    assert store.updated_at == T0 + 1
    with pytest.raises(StoreUnavailable):
        await bounded(store.counts(ENV, "video_id", "never-read", T0 + 10))
    with pytest.raises(StoreUnavailable) as refused:
        await bounded(store.ingest(ENV, [ev("v1", "hb", 2, video_id="vid")], T0 + 10))
    assert error_response(refused.value)[0] == 503  # the collector does not acknowledge
    with pytest.raises(StoreUnavailable):
        await bounded(store.sweep(T0 + 11))
    assert store.updated_at == T0 + 1  # a failed sweep does not move it
    with pytest.raises(StoreUnavailable):
        await bounded(store.stats())


@pytest.mark.slow
async def test_a_hung_redis_is_given_up_on_in_bounded_time(
    private_redis: RedisServer, open_redis: OpenRedis
) -> None:
    """A Redis that accepts connections but never answers (stopped, or a network partition)
    must not hold a request longer than the socket timeouts."""
    store = await open_redis(fresh_url(private_redis.url), snapshot_interval=1.0)
    await store.ingest(ENV, [start("v1", viewer="c1")], T0)
    assert await video(store, T0) == (1, 1)
    assert private_redis.process is not None
    private_redis.process.send_signal(signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await store.ingest(ENV, [ev("v1", "hb", 2)], T0 + 10)
        assert time.monotonic() - started < BOUND
        started = time.monotonic()
        assert await video(store, T0 + 10) == (1, 1)  # stale
        assert time.monotonic() - started < BOUND
    finally:
        private_redis.process.send_signal(signal.SIGCONT)
    await store.ingest(ENV, [ev("v1", "hb", 3)], T0 + 20)
    assert await video(store, T0 + 20) == (1, 1)


async def test_a_node_is_not_ready_while_redis_is_away_and_ready_again_after(
    private_redis: RedisServer, open_redis: OpenRedis
) -> None:
    """What /readyz reports: a call that fails makes the node not ready; the first one that
    succeeds afterwards (the sweep, every second) makes it ready again."""
    store = await open_redis(fresh_url(private_redis.url))
    await store.sweep(T0)
    assert store.ready
    private_redis.kill()
    with pytest.raises(StoreUnavailable):
        await store.sweep(T0 + 1)
    assert not store.ready
    private_redis.start()
    await store.sweep(T0 + 2)
    assert store.ready


async def test_a_redis_restarted_empty_is_refilled_by_heartbeats(
    private_redis: RedisServer, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(private_redis.url))
    views = [f"v{i}" for i in range(4)]
    await store.ingest(ENV, [start(v, viewer=f"c{i}") for i, v in enumerate(views)], T0)
    assert await video(store, T0) == (4, 4)
    private_redis.restart()  # no persistence: no data, and no scripts
    scripts = (WRITE.sha, PARTITION.sha, COUNTER.sha)
    assert private_redis.call("SCRIPT", "EXISTS", *scripts) == [0, 0, 0]
    assert await video(store, T0 + 1) == (0, 0)

    # mux-embed keeps sending heartbeats (view id, video id, sequence number only): each is
    # the first event Redis sees of a view, so it starts it. No start() again: the adapter
    # reconnects and reloads its scripts by itself.
    result = await store.ingest(ENV, [ev(v, "hb", 5, video_id="vid") for v in views], T0 + 10)
    assert (result.applied, result.duplicates) == (4, 0)
    assert private_redis.call("SCRIPT", "EXISTS", *scripts) == [1, 1, 1]
    assert await video(store, T0 + 10) == (4, 4)  # each its own viewer until its ids come
    assert await store.stats() == LiveStats(views=4, happening=4)
    await store.ingest(
        ENV, [ev(v, "hb", 6, mux_viewer_id="same") for v in views[:2]], T0 + 11
    )  # a full-state event (mux-embed repeats them) brings the viewer ids back
    assert await video(store, T0 + 11) == (4, 3)


async def test_a_flushed_script_cache_is_reloaded(
    redis_standalone: RedisServer, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(redis_standalone.url))
    await store.ingest(ENV, [start("v1", viewer="c1")], T0)
    redis_standalone.call("SCRIPT", "FLUSH")
    await store.ingest(ENV, [start("v2", viewer="c2")], T0 + 1)  # NOSCRIPT: load, re-send
    assert await video(store, T0 + 1) == (2, 2)
    redis_standalone.call("SCRIPT", "FLUSH")
    assert await video(store, T0 + 1) == (2, 2)  # reads run a script too
    redis_standalone.call("SCRIPT", "FLUSH")
    assert await store.sweep(T0 + 1 + WINDOW + 1) == 2
    assert await video(store, T0 + 40) == (0, 0)


async def test_a_node_started_while_redis_is_away_serves_once_it_answers(
    tmp_path: Path, open_redis: OpenRedis
) -> None:
    server = RedisServer(tmp_path / "later")  # a free port, nothing listening yet
    try:
        store = await open_redis(fresh_url(server.url))  # start() does not raise
        assert not store.ready
        with pytest.raises(StoreUnavailable):
            await store.ingest(ENV, [start("v1")], T0)
        server.start()
        # No waiting for the reconnect loop: the next call loads the scripts it misses.
        await store.ingest(ENV, [start("v1")], T0 + 1)
        assert await video(store, T0 + 1) == (1, 1)
    finally:
        server.kill()


@pytest.mark.slow
async def test_a_node_started_while_its_cluster_is_away_serves_once_it_answers(
    tmp_path: Path, open_redis: OpenRedis
) -> None:
    # A one-node cluster of this test's own, not started yet.
    node = RedisServer(tmp_path / "node", extra_args=RedisCluster.NODE_ARGS, cluster_bus=True)
    try:
        store = await open_redis(fresh_url(f"redis+cluster://127.0.0.1:{node.port}"))
        assert not store.ready  # start() did not raise: the node retries in the background
        with pytest.raises(StoreUnavailable):
            await store.ingest(ENV, [start("v1")], T0)
        with pytest.raises(StoreUnavailable):
            await store.counts(ENV, "video_id", "vid", T0)
        node.start()
        node.call("CLUSTER", "ADDSLOTSRANGE", 0, CLUSTER_SLOTS - 1)
        deadline = time.monotonic() + DEADLINE
        while "cluster_state:ok" not in str(node.call("CLUSTER", "INFO")):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        await store.ingest(ENV, [start("v1")], T0 + 1)
        assert await video(store, T0 + 1) == (1, 1)
    finally:
        node.kill()
