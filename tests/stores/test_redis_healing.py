"""The Redis live store heals by itself (DESIGN.md "Scale-out") when a node dies between the
view step (the partition script) and the counter step: a lost add comes back on the next
refresh, a lost remove lapses with its lease.
"""

from __future__ import annotations

from typing import Any

import pytest

from headcount.stores.live import LiveStats
from headcount.stores.redis_live import LEASE, REFRESH, RedisLiveStore
from tests.redis_servers import RedisServer
from tests.stores.redis_kit import ENV, T0, WINDOW, OpenRedis, ev, fresh_url, start, video

pytestmark = pytest.mark.anyio

# -- self-healing: a node dies between the view step and the counter step -----------------------


class CounterStepCrash:
    """Models a node that dies after a partition script and before its counter scripts:
    while ``armed``, every counter step computed is dropped (the only patch these tests use)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.armed = 0
        self.lost = 0
        original = RedisLiveStore._counter_commands

        def counter_commands(store: RedisLiveStore, changes: Any, now: float) -> Any:
            targets, commands = original(store, changes, now)
            if self.armed:
                self.armed -= 1
                self.lost += len(commands)
                return [], []
            return targets, commands

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
    assert crash.lost == 2  # its video's and its environment's membership
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
    assert crash.lost == 2  # its video's and its environment's membership
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
    assert crash.lost == 2  # its video's and its environment's membership
    assert await store.stats() == LiveStats(views=1, happening=1)
    assert await video(store, T0 + 31) == (2, 2)
    assert await store.sweep(T0 + 31) == 0  # sweeping again does not find it: removed once
    await store.ingest(ENV, [ev("v2", "hb", 3)], T0 + 35)
    await store.sweep(T0 + 46)
    assert await video(store, T0 + 46) == (1, 1)
