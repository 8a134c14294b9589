"""The Redis live store heals by itself (DESIGN.md "Scale-out") when a node dies between the
view step (the partition script) and the counter step, within one liveness window: at once
when the client re-sends the batch it got no answer for; else a lost add comes back on the
next refresh and a lost remove goes when the view expires. The lease is what is left for a
lost change of ids and a lost sweep.
"""

from __future__ import annotations

from typing import Any

import pytest

from headcount.stores.live import LiveStats
from headcount.stores.redis_live import RedisLiveStore
from headcount.stores.redis_memberships import LEASE, REFRESH
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


async def test_a_lost_remove_goes_when_the_view_expires(
    redis_standalone: RedisServer, open_redis: OpenRedis, crash: CounterStepCrash
) -> None:
    store = await open_redis(fresh_url(redis_standalone.url))
    await store.ingest(ENV, [start("v1", viewer="c1"), start("v2", viewer="c2")], T0)
    crash.next_step()
    await store.ingest(ENV, [ev("v1", "pause", 2)], T0 + 5)
    assert crash.lost == 2  # its video's and its environment's membership
    assert await store.stats() == LiveStats(views=2, happening=1)
    assert await video(store, T0 + 5) == (2, 2)  # v1 still has its membership
    for t in (10, 20, 30):
        await store.ingest(ENV, [ev("v2", "hb", t)], T0 + t)  # v2 stays healthy
    assert await store.sweep(T0 + 35) == 0
    assert await video(store, T0 + 35) == (2, 2)
    # v1 (paused, silent) expires one window after its last event, and its removal is sent
    # again then: within a window of the lost step, not with the lease (T0 + 45).
    assert await store.sweep(T0 + 35.5) == 1
    assert await video(store, T0 + 35.5) == (1, 1)
    # Never negative: removals of what is not there change nothing.
    await store.ingest(ENV, [ev("v1", "viewend", 3)], T0 + 46)
    await store.ingest(ENV, [ev("v2", "pause", 41), ev("v2", "pause", 41)], T0 + 47)
    assert await video(store, T0 + 47) == (0, 0)
    await store.ingest(ENV, [ev("v2", "play", 42)], T0 + 48)
    assert await video(store, T0 + 48) == (1, 1)


async def test_a_remove_sent_again_at_expiry_removes_nothing_else(
    redis_standalone: RedisServer, open_redis: OpenRedis
) -> None:
    """The removal a not-counting view sends again when it expires leaves the views that count."""
    store = await open_redis(fresh_url(redis_standalone.url))
    await store.ingest(ENV, [start("v1", viewer="c1"), start("v2", viewer="c1")], T0)
    await store.ingest(ENV, [ev("v1", "viewend", 2)], T0 + 1)
    assert await video(store, T0 + 1) == (1, 1)
    for t in (10, 20, 30):
        await store.ingest(ENV, [ev("v2", "hb", t)], T0 + t)
    assert await store.sweep(T0 + 31.5) == 1  # v1 expires, its removal is sent again
    assert await video(store, T0 + 31.5) == (1, 1)  # v2, same viewer, still counts
    assert await store.stats() == LiveStats(views=1, happening=1)


async def test_a_re_sent_batch_heals_a_lost_counter_step_at_once(
    redis_standalone: RedisServer, open_redis: OpenRedis, crash: CounterStepCrash
) -> None:
    """mux-embed sends a batch again when it got no answer, as when the node died between the
    steps: the duplicate events make the view send its memberships (or their removal) again."""
    store = await open_redis(fresh_url(redis_standalone.url))
    crash.next_step()
    await store.ingest(ENV, [start("v1", viewer="c1")], T0)
    assert await video(store, T0) == (0, 0)  # the add was lost
    result = await store.ingest(ENV, [start("v1", viewer="c1")], T0 + 1)  # sent again
    assert result.duplicates == 1
    assert await video(store, T0 + 1) == (1, 1)
    crash.next_step()
    await store.ingest(ENV, [ev("v1", "pause", 2)], T0 + 2)
    assert await video(store, T0 + 2) == (1, 1)  # the remove was lost
    await store.ingest(ENV, [ev("v1", "pause", 2)], T0 + 3)
    assert await video(store, T0 + 3) == (0, 0)
    await store.ingest(ENV, [ev("v1", "pause", 2)], T0 + 4)  # and again: never negative
    assert await video(store, T0 + 4) == (0, 0)
    assert await store.stats() == LiveStats(views=1, happening=0)


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


async def test_a_new_viewer_in_the_same_sub_key_replaces_the_old_one(
    redis_standalone: RedisServer, open_redis: OpenRedis
) -> None:
    """A membership names its viewer: with one sub-key per counter, a view first counted as
    its own viewer and then given a viewer id moves (remove the old, set the new in one call):
    never counted twice, and its old viewer is gone."""
    store = await open_redis(fresh_url(redis_standalone.url), counter_shards=1)
    await store.ingest(ENV, [ev("v1", "viewstart", 1, starts=True, video_id="vid")], T0)
    await store.ingest(ENV, [start("v2", viewer="c2")], T0)
    assert await video(store, T0) == (2, 2)
    await store.ingest(ENV, [ev("v1", "hb", 2, mux_viewer_id="c2")], T0 + 1)
    assert await video(store, T0 + 1) == (2, 1)  # one view each, one viewer between them
    await store.ingest(ENV, [ev("v1", "viewend", 3), ev("v2", "viewend", 2)], T0 + 2)
    assert await video(store, T0 + 2) == (0, 0)
