"""The Redis live store on a real Redis Cluster (DESIGN.md "Scale-out"): single-slot scripts,
a varied workload without errors, no hot shard, and a failover and a slot migration under
traffic (on a cluster of their own, so the session cluster stays whole).
"""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from redis.crc import key_slot

from headcount.core.identity import content_key
from headcount.errors import StoreUnavailable
from headcount.stores.live import Counts, LiveStats
from headcount.stores.redis_keys import KeyLayout, slot_tag
from headcount.stores.redis_memberships import LEASE, REFRESH
from tests.redis_cluster import CLUSTER_SLOTS, RedisCluster
from tests.redis_servers import redis_call
from tests.stores.redis_kit import DEADLINE, ENV, T0, WINDOW, OpenRedis, ev, fresh_url, start, video

pytestmark = pytest.mark.anyio

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


@pytest.mark.parametrize("shards", [1, 3, 8, 16])
def test_the_sub_keys_of_one_counter_stand_at_equal_distances_over_the_slots(shards: int) -> None:
    layout = KeyLayout("hc", partitions=256, subpartitions=16, counter_shards=shards)
    for value in ("vid", "hot", "x" * 512):
        content = content_key(ENV, "video_id", value)
        slots = [key_slot(layout.counter(content, s)[0].encode()) for s in range(shards)]
        gaps = {(b - a) % 16384 for a, b in zip(slots, [*slots[1:], slots[0]], strict=True)}
        assert gaps <= {16384 // shards, 16384 // shards + 1} or shards == 1, gaps
    assert all(key_slot(slot_tag(slot).encode()) == slot for slot in range(0, 16384, 7))


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
    # Every view also counts under its environment's own key (the environment's history), a
    # second hot counter: each counter's 8 sub-keys stand at equal distances over the slots,
    # so the 3 masters (equal slot ranges) share both evenly.
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
        # Once a replica took over, every call works again within a bounded time, and the
        # players' heartbeats (every 10 s, video_id in each as mux-embed sends it) bring the
        # counts back within a lease. Writes the replica had not received when the master died
        # are lost: such a view is first seen again through its heartbeat, as its own viewer,
        # and its old membership (another viewer) lapses with its lease; a membership lost
        # with the master comes back on the view's next refresh. A refused batch is sent
        # again as it was, as mux-embed does (its first attempt may have stepped the views of
        # the masters that answered and died before their counter step: the duplicates send
        # those memberships again).
        deadline = time.monotonic() + DEADLINE
        refused = 0
        counts: tuple[int, int] | None = None
        seq = 2
        now = T0 + 20
        while counts != (200, 200):
            assert time.monotonic() < deadline, (refused, counts, now - T0)
            assert now <= T0 + LEASE * WINDOW + 2 * 10, (refused, counts)  # within a lease
            try:
                await store.ingest(ENV, [ev(v, "hb", seq, video_id="vid") for v in views], now)
            except StoreUnavailable:
                refused += 1
                await asyncio.sleep(0.1)
                continue
            seq += 1
            try:
                assert await store.sweep(now + 1) == 0
                counts = await video(store, now + 1)
            except StoreUnavailable:
                refused += 1
                await asyncio.sleep(0.1)
            now += 10
        assert await store.stats() == LiveStats(views=200, happening=200)
    finally:
        await asyncio.to_thread(own_redis_cluster.heal)
    assert own_redis_cluster.problems() is None
    assert len(own_redis_cluster.masters()) == 3
    assert sum(m.slot_count for m in own_redis_cluster.masters()) == CLUSTER_SLOTS
    # Healed (the old master is now a replica): still serving.
    await store.ingest(ENV, [ev(v, "hb", 1000, video_id="vid") for v in views], now)
    assert await video(store, now) == (200, 200)


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
