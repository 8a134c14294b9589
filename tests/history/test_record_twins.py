"""One table of cases through both implementations of the recording rules: the core's
:func:`~headcount.history.record.observe` and ``history.lua`` (the Redis store's), read back
with the same :func:`~headcount.history.record.read`."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
import redis.asyncio as redis_asyncio
from redis.asyncio import Redis

from headcount.history.record import KeyHistory, Reading, observe, read
from headcount.history.redis import RING, history_from_redis
from headcount.stores.redis_keys import KeyLayout
from headcount.stores.redis_lua import HISTORY
from tests.redis_servers import RedisServer, new_key_prefix

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0


@dataclass(frozen=True)
class Case:
    name: str
    retention: float
    steps: tuple[tuple[float, int, int], ...]  # (seconds after T0, views, viewers)
    read_at: float


CASES = (
    Case("one minute", 3600, ((5, 1, 1), (20, 3, 2), (59, 2, 2)), 59.5),
    Case("boundary", 3600, ((30, 5, 4), (60, 2, 2), (61, 3, 1)), 61),
    Case("gaps carried", 3600, ((1, 4, 3), (200, 1, 1)), 400),
    Case("peaks first reached", 3600, ((0, 2, 2), (100, 7, 3), (200, 1, 5), (300, 7, 5)), 400),
    Case("back to zero", 3600, ((0, 3, 3), (90, 0, 0)), 200),
    Case(
        "peak ages out",
        300,
        ((10, 9, 9), (70, 3, 3), (130, 4, 2), (361, 1, 1)),
        362,
    ),
    Case("window slides past", 300, ((10, 2, 2), (70, 5, 1), (130, 0, 0)), 400),
    Case("carried into the window", 300, ((10, 2, 2), (70, 5, 1)), 500),
)


def _core(case: Case) -> Reading:
    h = KeyHistory()
    for t, views, viewers in case.steps:
        observe(h, views, viewers, T0 + t, case.retention)
    return read(h, T0 + case.read_at, case.retention)


async def _lua(case: Case, client: redis_asyncio.Redis, layout: KeyLayout) -> Reading:
    await client.script_load(HISTORY.source)
    record, ring = layout.history(7)
    slots = RING * int(case.retention // 60)
    for t, views, viewers in case.steps:
        now = T0 + t
        await client.execute_command(
            *HISTORY.command(
                (record, ring), (now, case.retention, slots, "", 0, views, viewers, now)
            )
        )
    fields = await client.hmget(record, "v", "u", "at", "pv", "pva", "pu", "pua")
    history = history_from_redis(fields, await client.get(ring), T0 + case.read_at, case.retention)
    return read(history, T0 + case.read_at, case.retention)


def _plain(reading: Reading) -> tuple[object, ...]:
    return (
        reading.peak_views,
        reading.peak_views_at,
        reading.peak_viewers,
        reading.peak_viewers_at,
        reading.series,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_lua_records_as_the_core_does(case: Case, redis_standalone: RedisServer) -> None:
    client = redis_asyncio.Redis.from_url(redis_standalone.url)
    try:
        layout = KeyLayout(new_key_prefix(), partitions=1, subpartitions=1, counter_shards=1)
        core = _core(case)
        assert core.series, case.name  # every case has something to compare
        assert _plain(await _lua(case, client, layout)) == _plain(core)
    finally:
        await client.aclose()


@pytest.fixture
async def history_redis(redis_standalone: RedisServer) -> AsyncIterator[Redis]:
    """A client of the suite's Redis with ``history.lua`` loaded, closed after the test."""
    client = redis_asyncio.Redis.from_url(redis_standalone.url)
    try:
        await client.script_load(HISTORY.source)
        yield client
    finally:
        await client.aclose()


def _layout() -> KeyLayout:
    return KeyLayout(new_key_prefix(), partitions=1, subpartitions=1, counter_shards=1)


async def test_the_newest_counts_of_a_sub_key_win(history_redis: Redis) -> None:
    """Two nodes flush the same sub-key out of order: the older answer does not overwrite."""
    client = history_redis
    keys = _layout().history(9)
    args = (T0 + 2, 3600, 120, "e\0video_id\0v")
    first = await client.execute_command(
        *HISTORY.command(keys, (*args, 0, 5, 5, T0 + 1.5, 1, 2, 1, T0 + 1.5))
    )
    late = await client.execute_command(*HISTORY.command(keys, (*args, 0, 3, 3, T0 + 1.0)))
    assert first[:2] == late[:2] == [7, 6]
    assert late[2] == b"e\0video_id\0v"


async def test_sums_follow_each_sub_key_without_adding_them_all_up(history_redis: Redis) -> None:
    """An environment's key has a sub-key per slot: each call moves the kept sums by what its
    sub-keys changed, and the answer is the sum over every sub-key ever answered."""
    client = history_redis
    keys = _layout().history(11)
    args = (T0 + 5, 3600, 120, "")
    spread: list[object] = []
    for shard in range(1000):
        spread += [shard, 1, 1, T0 + 1]
    assert (await client.execute_command(*HISTORY.command(keys, (*args, *spread))))[:2] == [
        1000,
        1000,
    ]
    # Sub-key 3 loses its view, sub-key 4 gains two (one viewer), a late answer of 5 is
    # older than what it holds: 1000 - 1 + 2 views, 1000 - 1 viewers.
    moved = (3, 0, 0, T0 + 2, 4, 3, 1, T0 + 2, 5, 9, 9, T0 + 0.5)
    answer = await client.execute_command(*HISTORY.command(keys, (*args, *moved)))
    assert answer[:2] == [1001, 999]
    assert await client.hmget(keys[0], "v", "u", "sv", "su") == [b"1001", b"999"] * 2


async def test_a_record_without_sums_is_added_up_once(history_redis: Redis) -> None:
    """A record written before the sums were kept (sub-key fields only) is added up on its
    first call, then moved as usual."""
    client = history_redis
    record, ring = _layout().history(12)
    await client.hset(record, mapping={"s0": f"4 3 {T0}", "s1": f"2 2 {T0}", "v": 6, "u": 5})
    args = (T0 + 5, 3600, 120, "", 1, 1, 1, T0 + 1)
    assert (await client.execute_command(*HISTORY.command((record, ring), args)))[:2] == [5, 4]
