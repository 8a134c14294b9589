"""What only the Redis live store must do, against real servers (DESIGN.md "Scale-out").

How it counts is the port's contract (``test_live_contract.py``) and the tracker's rules are
the core's (``test_step_twins.py``); here: its URLs, reads that scale with ids rather than
readers, outages and a Redis restarted empty, lost scripts, healing after a node died between
its two steps, cost that follows change, and a real cluster: single-slot scripts, no hot
shard, a slot migration and a failover under traffic. The tests that change the shared
cluster's topology come last and always restore it.

Time given to the store is a parameter (``T0 + ...``); wall-clock time is only measured, to
bound how long a failing call may take. Every wait is a bounded loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from headcount.core.events import ViewEvent
from headcount.core.identity import content_key, view_key
from headcount.errors import StoreUnavailable, error_response
from headcount.stores.live import Counts, LiveStats
from headcount.stores.redis_connect import RedisTarget, parse_redis_url
from headcount.stores.redis_keys import KeyLayout
from headcount.stores.redis_live import LEASE, REFRESH, SWEEP_BUDGET, RedisLiveStore
from headcount.stores.redis_lua import COUNTER, PARTITION
from tests.redis_servers import (
    CLUSTER_SLOTS,
    RedisCluster,
    RedisServer,
    new_key_prefix,
    redis_call,
)

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0
ENV = "env-1"
WINDOW = 30.0
BOUND = 5.0  # seconds a call may take while Redis is away (it must fail fast, not hang)
DEADLINE = 30.0  # seconds a topology change may take to stop hurting traffic

OpenRedis = Callable[..., Awaitable[RedisLiveStore]]


def ev(view: str, name: str, seq: int | None = None, **fields: Any) -> ViewEvent:
    return ViewEvent(name=name, view_id=view, sequence=seq, **fields)


def start(view: str, video: str = "vid", viewer: str | None = None, seq: int = 1) -> ViewEvent:
    return ev(view, "viewstart", seq, starts=True, video_id=video, mux_viewer_id=viewer)


def fresh_url(base: str) -> str:
    return f"{base}?prefix={new_key_prefix()}"


async def video(
    store: RedisLiveStore, now: float, vid: str = "vid", env: str = ENV
) -> tuple[int, int]:
    counts = await store.counts(env, "video_id", vid, now)
    return counts.views, counts.viewers


def command_calls(port: int) -> dict[str, int]:
    """``calls`` per command (INFO commandstats), commands run by scripts included."""
    calls: dict[str, int] = {}
    for line in str(redis_call(port, "INFO", "commandstats")).splitlines():
        if line.startswith("cmdstat_"):
            name, _, fields = line.partition(":")
            values = dict(part.split("=", 1) for part in fields.split(","))
            calls[name.removeprefix("cmdstat_")] = int(values["calls"])
    return calls


@pytest.fixture
async def open_redis() -> AsyncIterator[OpenRedis]:
    """``await open_redis(url, **options)``: a Redis live store, started at ``T0`` (unless
    ``start=False``) and closed at the end of the test whatever happens."""
    opened: list[RedisLiveStore] = []

    async def open_(url: str, *, start: bool = True, **options: Any) -> RedisLiveStore:
        options.setdefault("liveness_window", WINDOW)
        options.setdefault("snapshot_interval", 0.0)
        store = RedisLiveStore(parse_redis_url(url), **options)
        opened.append(store)
        if start:
            await store.start(T0)
        return store

    try:
        yield open_
    finally:
        for store in opened:
            await store.close(T0)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A standalone Redis of this test alone (it may be killed, restarted, flushed)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()


# -- URLs ----------------------------------------------------------------------------------


def test_a_redis_url_names_one_server() -> None:
    target = parse_redis_url("redis://cache.internal:6379/2")
    assert target == RedisTarget(
        url="redis://cache.internal:6379/2",
        cluster=False,
        prefix="hc",
        display="redis://cache.internal:6379/2",
    )
    assert parse_redis_url("REDIS://cache.internal").cluster is False


def test_a_rediss_url_keeps_tls_and_its_options_for_redis_py() -> None:
    target = parse_redis_url("rediss://:s3cret@cache.internal:6380/0?ssl_cert_reqs=none")
    assert target.url == "rediss://:s3cret@cache.internal:6380/0?ssl_cert_reqs=none"
    assert not target.cluster
    assert target.display == "rediss://cache.internal:6380/0"


def test_a_cluster_url_is_a_seed_node() -> None:
    target = parse_redis_url("redis+cluster://10.0.0.5:7000")
    assert (target.url, target.cluster, target.display) == (
        "redis://10.0.0.5:7000",
        True,
        "redis+cluster://10.0.0.5:7000",
    )
    tls = parse_redis_url("rediss+cluster://node.internal:7000")
    assert (tls.url, tls.cluster) == ("rediss://node.internal:7000", True)


def test_a_unix_socket_url() -> None:
    target = parse_redis_url("unix:///run/redis.sock?db=1&prefix=app")
    assert (target.url, target.cluster, target.prefix, target.display) == (
        "unix:///run/redis.sock?db=1",
        False,
        "app",
        "unix:///run/redis.sock",
    )


async def test_a_unix_socket_url_reaches_its_server(tmp_path: Path, open_redis: OpenRedis) -> None:
    socket = tmp_path / "r.sock"
    server = RedisServer(tmp_path / "unix", extra_args=["--unixsocket", str(socket)])
    server.start()
    try:
        store = await open_redis(fresh_url(f"unix://{socket}"))
        assert store.ready
        await store.ingest(ENV, [start("v1", viewer="c1")], T0)
        assert await video(store, T0) == (1, 1)
    finally:
        server.kill()


@pytest.mark.parametrize(
    "url",
    [
        "redis://user:hunter2@cache.internal:6379/0",
        "redis://:hunter2@cache.internal:6379/0",
        "rediss://default:hunter2@cache.internal:6380",
        "redis+cluster://user:hunter2@10.0.0.5:7000?prefix=app",
    ],
)
def test_the_password_is_never_displayed(url: str) -> None:
    target = parse_redis_url(url)
    assert "hunter2" in target.url  # redis-py needs it
    assert "hunter2" not in target.display
    assert "user" not in target.display
    assert "cache.internal" in target.display or "10.0.0.5" in target.display


def test_the_prefix_is_headcounts_own_query_parameter() -> None:
    target = parse_redis_url("redis://h:6379/0?prefix=staging-2&health_check_interval=5")
    assert target.prefix == "staging-2"
    assert target.url == "redis://h:6379/0?health_check_interval=5"
    assert parse_redis_url("redis://h:6379/0").prefix == "hc"


@pytest.mark.parametrize("prefix", ["", "a:b", "a{b}", "a%20b"])
def test_a_prefix_that_would_break_key_names_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        parse_redis_url(f"redis://h:6379/0?prefix={prefix}")


@pytest.mark.parametrize(
    "url", ["memcached://h:11211", "http://h", "h:6379", "postgresql://u:hunter2@h/db"]
)
def test_an_unsupported_scheme_says_what_to_write(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_redis_url(url)
    message = str(raised.value)
    assert "unsupported live store URL" in message
    for supported in ("memory://", "redis://", "rediss://", "redis+cluster://"):
        assert supported in message
    assert "hunter2" not in message  # an error message is logged: no password in it


def test_a_url_without_a_host_is_refused() -> None:
    with pytest.raises(ValueError, match="names no host"):
        parse_redis_url("redis://:hunter2@/0")
    with pytest.raises(ValueError) as raised:
        parse_redis_url("redis://:hunter2@/0")
    assert "hunter2" not in str(raised.value)


# -- reads scale with ids, not readers -----------------------------------------------------


async def test_a_thousand_readers_of_one_id_cost_one_read_per_half_interval(
    private_redis: RedisServer, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(private_redis.url), snapshot_interval=1.0)
    await store.ingest(ENV, [start(f"v{i}", viewer=f"c{i}") for i in range(5)], T0)
    reads = store.reads
    private_redis.call("CONFIG", "RESETSTAT")

    async def readers(now: float, ids: list[str]) -> set[Counts]:
        answers = await asyncio.gather(
            *(store.counts(ENV, "video_id", ids[i % len(ids)], now) for i in range(1000))
        )
        return set(answers)

    assert await readers(T0 + 1, ["vid"]) == {Counts(5, 5)}
    assert store.reads - reads == 1
    # One read is one script call per counter sub-key, whatever the number of readers.
    assert command_calls(private_redis.port)["evalsha"] == store.layout.counter_shards

    # Within half the interval (READ_CACHE) the answer is the cached one, even though a view
    # started since.
    await store.ingest(ENV, [start("v9", viewer="c9")], T0 + 1.2)
    assert await readers(T0 + 1.499, ["vid"]) == {Counts(5, 5)}
    assert store.reads - reads == 1
    # Once that is over, one new read for everyone.
    assert await readers(T0 + 1.5, ["vid"]) == {Counts(6, 6)}
    assert store.reads - reads == 2
    # Readers of ten ids: ten reads.
    ids = [f"other-{i}" for i in range(10)]
    assert await readers(T0 + 3.0, ids) == {Counts(0, 0)}
    assert store.reads - reads == 12


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


async def test_a_redis_restarted_empty_is_refilled_by_heartbeats(
    private_redis: RedisServer, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(private_redis.url))
    views = [f"v{i}" for i in range(4)]
    await store.ingest(ENV, [start(v, viewer=f"c{i}") for i, v in enumerate(views)], T0)
    assert await video(store, T0) == (4, 4)
    private_redis.restart()  # no persistence: no data, and no scripts
    assert private_redis.call("SCRIPT", "EXISTS", PARTITION.sha, COUNTER.sha) == [0, 0]
    assert await video(store, T0 + 1) == (0, 0)

    # mux-embed keeps sending heartbeats (view id, video id, sequence number only): each is
    # the first event Redis sees of a view, so it starts it. No start() again: the adapter
    # reconnects and reloads its scripts by itself.
    result = await store.ingest(ENV, [ev(v, "hb", 5, video_id="vid") for v in views], T0 + 10)
    assert (result.applied, result.duplicates) == (4, 0)
    assert private_redis.call("SCRIPT", "EXISTS", PARTITION.sha, COUNTER.sha) == [1, 1]
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


# -- self-healing: a node dies between the view step and the counter step -----------------------


class CounterStepCrash:
    """Models a node that dies after a partition script and before its counter scripts:
    while ``armed``, every counter step computed is dropped (the only patch these tests use)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = 0
        self.lost = 0
        original = RedisLiveStore._counter_commands

        def counter_commands(store: RedisLiveStore, changes: Any, now: float) -> list[Any]:
            commands = original(store, changes, now)
            if self.armed:
                self.armed -= 1
                self.lost += len(commands)
                return []
            return commands

        monkeypatch.setattr(RedisLiveStore, "_counter_commands", counter_commands)

    def next_step(self) -> CounterStepCrash:
        self.armed = 1
        return self


@pytest.fixture
def crash(monkeypatch: pytest.MonkeyPatch) -> CounterStepCrash:
    return CounterStepCrash(monkeypatch)


def test_the_timings_the_healing_tests_use() -> None:
    assert (REFRESH * WINDOW, LEASE * WINDOW) == (15.0, 45.0)


async def test_a_lost_add_comes_back_on_the_next_refresh(
    redis_standalone: RedisServer, open_redis: OpenRedis, crash: CounterStepCrash
) -> None:
    url = fresh_url(redis_standalone.url)
    store = await open_redis(url)
    crash.next_step()
    await store.ingest(ENV, [start("v1", viewer="c1")], T0)
    assert crash.lost == 1
    assert await store.stats() == LiveStats(views=1, happening=1)  # the view step was done
    assert await video(store, T0) == (0, 0)  # its membership was not
    await store.ingest(ENV, [ev("v1", "hb", 2)], T0 + 10)
    assert await video(store, T0 + 10) == (0, 0)  # not due for a refresh yet
    await store.ingest(ENV, [ev("v1", "hb", 3)], T0 + REFRESH * WINDOW)
    assert await video(store, T0 + 15) == (1, 1)
    # Never double: a re-sent batch, a second node refreshing the same view.
    await store.ingest(ENV, [start("v1", viewer="c1"), ev("v1", "hb", 3)], T0 + 16)
    other = await open_redis(url)
    await other.ingest(ENV, [ev("v1", "hb", 4)], T0 + 31)
    await store.ingest(ENV, [ev("v1", "hb", 5)], T0 + 46)
    assert await video(store, T0 + 46) == (1, 1)
    assert await video(other, T0 + 46) == (1, 1)


async def test_a_lost_remove_lapses_with_its_lease(
    redis_standalone: RedisServer, open_redis: OpenRedis, crash: CounterStepCrash
) -> None:
    store = await open_redis(fresh_url(redis_standalone.url))
    await store.ingest(ENV, [start("v1", viewer="c1"), start("v2", viewer="c2")], T0)
    crash.next_step()
    await store.ingest(ENV, [ev("v1", "pause", 2)], T0 + 5)
    assert crash.lost == 1
    assert await store.stats() == LiveStats(views=2, happening=1)
    assert await video(store, T0 + 5) == (2, 2)  # v1 still has its membership
    for t in (10, 20, 30, 40):
        await store.ingest(ENV, [ev("v2", "hb", t)], T0 + t)  # v2 stays healthy
    assert await store.sweep(T0 + 36) == 1  # v1 (paused, silent) is gone from the views
    assert await video(store, T0 + 36) == (2, 2)  # its lease (set at T0) runs to T0 + 45
    await store.sweep(T0 + LEASE * WINDOW)
    assert await video(store, T0 + 45) == (2, 2)  # not before it ends
    await store.sweep(T0 + LEASE * WINDOW + 0.5)
    assert await video(store, T0 + 45.5) == (1, 1)  # lapsed, once a sweep moved past it
    # Never negative: removals of what is not there change nothing.
    await store.ingest(ENV, [ev("v1", "viewend", 3)], T0 + 46)
    await store.ingest(ENV, [ev("v2", "pause", 41), ev("v2", "pause", 41)], T0 + 47)
    assert await video(store, T0 + 47) == (0, 0)
    await store.ingest(ENV, [ev("v2", "play", 42)], T0 + 48)
    assert await video(store, T0 + 48) == (1, 1)


async def test_a_lost_change_of_ids_heals_both_ways(
    redis_standalone: RedisServer, open_redis: OpenRedis, crash: CounterStepCrash
) -> None:
    store = await open_redis(fresh_url(redis_standalone.url))
    await store.ingest(ENV, [start("v1", video="a", viewer="c1")], T0)
    crash.next_step()
    await store.ingest(ENV, [ev("v1", "hb", 2, video_id="b", viewer_user_id="u1")], T0 + 5)
    assert (await video(store, T0 + 5, "a"), await video(store, T0 + 5, "b")) == ((1, 1), (0, 0))
    await store.ingest(ENV, [ev("v1", "hb", 3)], T0 + 5 + REFRESH * WINDOW)
    assert await video(store, T0 + 20, "b") == (1, 1)  # the add came back
    await store.ingest(ENV, [ev("v1", "hb", 4)], T0 + 30)
    await store.sweep(T0 + LEASE * WINDOW + 0.5)
    assert await video(store, T0 + 46, "a") == (0, 0)  # the stale one lapsed
    assert await video(store, T0 + 46, "b") == (1, 1)


async def test_a_sweep_whose_counter_step_is_lost_heals_by_lease(
    redis_standalone: RedisServer, open_redis: OpenRedis, crash: CounterStepCrash
) -> None:
    store = await open_redis(fresh_url(redis_standalone.url))
    await store.ingest(ENV, [start("v1", viewer="c1"), start("v2", viewer="c2")], T0)
    await store.ingest(ENV, [ev("v2", "hb", 2)], T0 + 20)
    crash.next_step()
    assert await store.sweep(T0 + 31) == 1
    assert crash.lost == 1
    assert await store.stats() == LiveStats(views=1, happening=1)
    assert await video(store, T0 + 31) == (2, 2)
    assert await store.sweep(T0 + 31) == 0  # sweeping again does not find it: removed once
    await store.ingest(ENV, [ev("v2", "hb", 3)], T0 + 35)
    await store.sweep(T0 + 46)
    assert await video(store, T0 + 46) == (1, 1)


# -- cost follows change -------------------------------------------------------------------


def _views_in_groups(layout: KeyLayout, groups: set[int], count: int, stem: str) -> list[str]:
    """``count`` view ids of ENV whose partition group is in ``groups``."""
    found: list[str] = []
    for i in range(100 * count):
        view = f"{stem}{i}"
        if layout.locate(view_key(ENV, view))[0] in groups:
            found.append(view)
            if len(found) == count:
                return found
    raise AssertionError("not enough view ids found")


async def test_sweeps_and_heartbeats_cost_what_changed(
    private_redis: RedisServer, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(private_redis.url), partitions=64, subpartitions=4)
    layout = store.layout
    doomed_groups = {0, 1, 2}
    doomed = _views_in_groups(layout, doomed_groups, 10, "doomed-")
    stayers = _views_in_groups(layout, set(range(3, 64)), 1000, "stayer-")
    await store.ingest(ENV, [start(v, viewer=v) for v in doomed], T0)
    for i in range(0, len(stayers), 100):
        await store.ingest(ENV, [start(v, viewer=v) for v in stayers[i : i + 100]], T0 + 10)
    assert await video(store, T0 + 10) == (1010, 1010)

    private_redis.call("CONFIG", "RESETSTAT")
    await store.ingest(ENV, [ev(stayers[0], "hb", 2, video_id="vid")], T0 + 20)
    heartbeat = command_calls(private_redis.port)
    # One partition script, and inside it a handful of commands on the view's own records.
    assert heartbeat["evalsha"] == 1
    assert sum(heartbeat.values()) - heartbeat["config|resetstat"] <= 8, heartbeat
    for i in range(0, len(stayers), 100):
        await store.ingest(ENV, [ev(v, "hb", 2) for v in stayers[i : i + 100]], T0 + 20)

    private_redis.call("CONFIG", "RESETSTAT")
    assert await store.sweep(T0 + 25) == 0
    idle = command_calls(private_redis.port)
    assert "evalsha" not in idle, idle  # nothing due: no partition script at all
    assert idle["zrangebyscore"] == layout.partitions  # one look at each due zset

    private_redis.call("CONFIG", "RESETSTAT")
    assert await store.sweep(T0 + WINDOW + 1) == len(doomed)
    expiry = command_calls(private_redis.port)
    # Scripts for the due groups only (the doomed ones), then one counter script per
    # counter sub-key the expired views leave; views touched: the expired ones.
    assert expiry["evalsha"] <= len(doomed_groups) + layout.counter_shards, expiry
    assert expiry["hdel"] <= 3 * len(doomed), expiry
    assert expiry["zrem"] <= 3 * len(doomed) + len(doomed_groups) * layout.subpartitions
    assert await video(store, T0 + 31) == (1000, 1000)


async def test_a_sweep_expiring_more_than_one_call_may_goes_on_until_done(
    redis_standalone: RedisServer, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(redis_standalone.url), partitions=1, subpartitions=1)
    many = SWEEP_BUDGET + SWEEP_BUDGET // 4  # all in one sub-partition: two script calls
    await store.ingest(ENV, [start(f"v{i}", viewer=f"c{i % 100}") for i in range(many)], T0)
    await store.ingest(ENV, [start("late", viewer="c1")], T0 + 10)
    assert await video(store, T0 + 10) == (many + 1, 100)
    assert await store.sweep(T0 + WINDOW + 1) == many
    assert await store.sweep(T0 + WINDOW + 1) == 0
    assert await video(store, T0 + WINDOW + 1) == (1, 1)
    assert await store.stats() == LiveStats(views=1, happening=1)


# -- the cluster ---------------------------------------------------------------------------


def test_every_script_call_names_keys_of_one_slot() -> None:
    layout = KeyLayout("hc", partitions=256, subpartitions=16, counter_shards=8)
    for group in range(layout.partitions):
        names = [*layout.group(group)]
        for sub in range(layout.subpartitions):
            names.extend(layout.sub(group, sub))
        assert len({key_slot(name.encode()) for name in names}) == 1, group
    for value in ("vid", "other", "x" * 512):
        content = content_key(ENV, "video_id", value)
        for shard in range(layout.counter_shards):
            assert len({key_slot(n.encode()) for n in layout.counter(content, shard)}) == 1
    group_slots = {key_slot(layout.group(g)[0].encode()) for g in range(layout.partitions)}
    assert len(group_slots) > layout.partitions * 0.95  # groups spread over the slots


def _errorstats(cluster: RedisCluster) -> dict[str, str]:
    errors: dict[str, str] = {}
    for master in cluster.masters():
        for line in str(redis_call(master.port, "INFO", "errorstats")).splitlines():
            if line.startswith("errorstat_"):
                name, _, value = line.partition(":")
                errors[f"{master.port}:{name}"] = value
    return errors


async def test_a_varied_workload_runs_on_the_cluster(
    redis_cluster: RedisCluster, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(redis_cluster.seed_url), partitions=256)
    before = _errorstats(redis_cluster)
    mux = "https://stream.mux.com/{}.m3u8"
    await store.ingest(
        ENV,
        [
            ev(
                f"v{i}",
                "viewstart",
                1,
                starts=True,
                video_id=f"video-{i % 3}",
                asset_id=f"asset-{i % 2}",
                live_stream_id="live-1" if i % 4 == 0 else None,
                source_url=mux.format(f"PB{i % 5}"),
                mux_viewer_id=f"c{i % 7}",
            )
            for i in range(60)
        ],
        T0,
    )
    await store.ingest(
        ENV,
        [ev(f"v{i}", "pause", 2) for i in range(0, 60, 6)]
        + [ev(f"v{i}", "hb", 2, viewer_user_id=f"u{i % 4}") for i in range(1, 60, 6)]
        + [ev(f"v{i}", "hb", 2, video_id="video-9") for i in range(2, 60, 6)]
        + [ev(f"v{i}", "viewend", 2) for i in range(3, 60, 6)],
        T0 + 5,
    )
    await store.ingest(
        ENV, [ev(f"v{i}", "hb", 3) for i in range(60) if i % 6 in (1, 2, 4, 5)], T0 + 20
    )
    assert await store.stats() == LiveStats(views=60, happening=40)
    assert await video(store, T0 + 20, "video-9") == (10, 7)
    assert (await store.counts(ENV, "live_stream_id", "live-1", T0 + 20)).views > 0
    assert await store.sweep(T0 + 36) == 20  # the paused and ended views, silent since T0 + 5
    assert await store.sweep(T0 + 51) == 40
    assert await store.stats() == LiveStats(views=0, happening=0)
    for id_type, value in [
        ("video_id", "video-0"),
        ("asset_id", "asset-1"),
        ("playback_id", "PB3"),
    ]:
        assert await store.counts(ENV, id_type, value, T0 + 51) == Counts(0, 0)
    new_errors = {k: v for k, v in _errorstats(redis_cluster).items() if before.get(k) != v}
    assert not new_errors  # no error of any kind, CROSSSLOT included


HOT_VIEWS = 3000


@pytest.mark.slow
async def test_one_hot_video_spreads_over_every_master(
    redis_cluster: RedisCluster, open_redis: OpenRedis
) -> None:
    # The default layout, as deployed: 256 partitions, 16 sub-partitions, 8 counter shards.
    store = await open_redis(fresh_url(redis_cluster.seed_url), liveness_window=60.0)
    assert (store.layout.partitions, store.layout.counter_shards) == (256, 8)
    redis_cluster.reset_stats()
    gate = asyncio.Semaphore(64)

    async def player(i: int) -> None:  # one POST per player: its own events only
        async with gate:
            await store.ingest(ENV, [start(f"v{i}", video="hot", viewer=f"viewer-{i}")], T0)
            for beat in range(1, 4):
                await store.ingest(ENV, [ev(f"v{i}", "hb", 1 + beat)], T0 + 10 * beat)

    await asyncio.gather(*(player(i) for i in range(HOT_VIEWS)))
    assert await video(store, T0 + 30, "hot") == (HOT_VIEWS, HOT_VIEWS)
    calls = {
        m.port: redis_cluster.commandstats(m).get("evalsha", 0) for m in redis_cluster.masters()
    }
    assert len(calls) == 3
    assert sum(calls.values()) >= 4 * HOT_VIEWS
    assert max(calls.values()) <= 1.5 * min(calls.values()), calls


@pytest.mark.slow
async def test_a_killed_master_is_replaced_and_traffic_resumes(
    own_redis_cluster: RedisCluster, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(own_redis_cluster.seed_url), partitions=256)
    views = [f"v{i}" for i in range(200)]
    await store.ingest(ENV, [start(v, viewer=f"c{i}") for i, v in enumerate(views)], T0)
    assert await video(store, T0) == (200, 200)
    try:
        # The master the slot migration below leaves alone: a failover soon after slots moved
        # has been seen (1 run in 5, Redis 7.0) to leave the promoted node without the last
        # migrated slot, which heal() cannot repair.
        await asyncio.to_thread(own_redis_cluster.kill_master, 2)
        # Once a replica took over, every call works again within a bounded time: the
        # players' heartbeats (re-sent while refused) refill whatever the replica missed.
        deadline = time.monotonic() + DEADLINE
        refused = 0
        counts: tuple[int, int] | None = None
        seq = 2
        while counts != (200, 200):
            assert time.monotonic() < deadline, (refused, counts)
            try:
                await store.ingest(ENV, [ev(v, "hb", seq) for v in views], T0 + 20)
                counts = await video(store, T0 + 20)
                assert await store.sweep(T0 + 21) == 0
            except StoreUnavailable:
                refused += 1
                await asyncio.sleep(0.1)
            seq += 1
        assert await store.stats() == LiveStats(views=200, happening=200)
    finally:
        await asyncio.to_thread(own_redis_cluster.heal)
    assert own_redis_cluster.problems() is None
    assert len(own_redis_cluster.masters()) == 3
    assert sum(m.slot_count for m in own_redis_cluster.masters()) == CLUSTER_SLOTS
    # Healed (the old master is now a replica): still serving.
    await store.ingest(ENV, [ev(v, "hb", 1000) for v in views], T0 + 40)
    assert await video(store, T0 + 40) == (200, 200)


@pytest.mark.slow
async def test_a_slot_migration_under_traffic_loses_nothing(
    own_redis_cluster: RedisCluster, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(own_redis_cluster.seed_url), partitions=256)
    source, target = own_redis_cluster.masters()[0], own_redis_cluster.masters()[1]
    owned_before = {s for first, last in source.slots for s in range(first, last + 1)}
    moving = 1200
    # The traffic's keys: its partition groups, and the counter sub-keys of its one video.
    used = {key_slot(store.layout.group(g)[0].encode()) for g in range(256)} | {
        key_slot(store.layout.counter(content_key(ENV, "video_id", "vid"), s)[0].encode())
        for s in range(store.layout.counter_shards)
    }
    sent: list[str] = []
    retried = overlap = 0

    async def traffic(until: asyncio.Future[None]) -> None:
        nonlocal retried, overlap
        i = 0
        while not until.done() or i < 300:
            view = f"v{i}"
            for _attempt in range(200):  # as mux-embed: the batch again, until it is stored
                try:
                    await store.ingest(ENV, [start(view, viewer=f"c{i}")], T0 + 1)
                    break
                except StoreUnavailable:
                    retried += 1
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"{view} was never stored")
            sent.append(view)
            overlap += not until.done()
            i += 1
            await asyncio.sleep(0)

    moved = asyncio.ensure_future(
        asyncio.to_thread(own_redis_cluster.reshard, moving, source.node_id, target.node_id)
    )
    try:
        await asyncio.wait_for(traffic(moved), DEADLINE * 2)
        await moved
        assert overlap >= 100, overlap  # views stored while the slots were moving
        owner = {m.node_id: m for m in own_redis_cluster.masters()}
        owned_after = {
            s for first, last in owner[source.node_id].slots for s in range(first, last + 1)
        }
        migrated = owned_before - owned_after
        assert len(migrated) == moving
        assert migrated & used  # the traffic's own keys moved under it
        # Every acknowledged view counts exactly once (a batch that raised was re-sent).
        views = len(sent)
        if retried == 0:
            assert await video(store, T0 + 2) == (views, views)
        await store.ingest(ENV, [ev(v, "hb", 2) for v in sent], T0 + 1 + REFRESH * WINDOW)
        assert await video(store, T0 + 20) == (views, views), retried
        assert await store.stats() == LiveStats(views=views, happening=views)
    finally:
        with contextlib.suppress(Exception):  # a failure of its own was raised above
            await moved
        back = await asyncio.to_thread(own_redis_cluster.masters)
        now_owned = {m.node_id: m.slot_count for m in back}
        if now_owned.get(source.node_id, 0) < len(owned_before):
            await asyncio.to_thread(
                own_redis_cluster.reshard,
                len(owned_before) - now_owned.get(source.node_id, 0),
                target.node_id,
                source.node_id,
            )
    restored = {m.node_id: m for m in own_redis_cluster.masters()}[source.node_id]
    assert {s for first, last in restored.slots for s in range(first, last + 1)} == owned_before
    assert await video(store, T0 + 20) == (len(sent), len(sent))  # and back again
