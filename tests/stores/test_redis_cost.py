"""What the Redis live store costs Redis (DESIGN.md "Scale-out"): reads that scale with ids
rather than readers, and sweeps and heartbeats that cost what changed.
"""

from __future__ import annotations

import asyncio

import pytest

from headcount.core.identity import view_key
from headcount.stores.live import Counts, LiveStats
from headcount.stores.redis_keys import KeyLayout
from headcount.stores.redis_live import SWEEP_BUDGET
from tests.redis_servers import RedisServer, redis_call
from tests.stores.redis_kit import ENV, T0, WINDOW, OpenRedis, ev, fresh_url, start, video

pytestmark = pytest.mark.anyio


def command_calls(port: int) -> dict[str, int]:
    """``calls`` per command (INFO commandstats), commands run by scripts included."""
    calls: dict[str, int] = {}
    for line in str(redis_call(port, "INFO", "commandstats")).splitlines():
        if line.startswith("cmdstat_"):
            name, _, fields = line.partition(":")
            values = dict(part.split("=", 1) for part in fields.split(","))
            calls[name.removeprefix("cmdstat_")] = int(values["calls"])
    return calls


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
    heartbeat.pop("config|resetstat")
    # The node stepped the view it wrote last (no read); one write script, and inside it the
    # view's own records: its state compared and set, its last-seen time.
    assert heartbeat == {"evalsha": 1, "hget": 1, "hset": 1, "zadd": 1}
    for i in range(0, len(stayers), 100):
        await store.ingest(ENV, [ev(v, "hb", 2) for v in stayers[i : i + 100]], T0 + 20)

    await store.sweep(T0 + 21)  # records the history of what moved before (one per sweep)
    private_redis.call("CONFIG", "RESETSTAT")
    assert await store.sweep(T0 + 25) == 0
    idle = command_calls(private_redis.port)
    assert "evalsha" not in idle, idle  # nothing due: no partition script at all
    assert idle["zrangebyscore"] == layout.partitions  # one look at each due zset

    private_redis.call("CONFIG", "RESETSTAT")
    assert await store.sweep(T0 + WINDOW + 1) == len(doomed)
    expiry = command_calls(private_redis.port)
    # Scripts for the due groups only (the doomed ones), then one counter script per
    # counter sub-key the expired views leave (the video's and the environment's: every view
    # counts under both), then one history script per key moved; views touched: the expired.
    assert expiry["evalsha"] <= len(doomed_groups) + 2 * layout.counter_shards + 2, expiry
    assert expiry["hdel"] <= 5 * len(doomed), expiry
    assert expiry["zrem"] <= 5 * len(doomed) + len(doomed_groups) * layout.subpartitions
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
