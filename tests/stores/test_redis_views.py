"""Nodes step views themselves (``headcount.stores.redis_views``) and Redis stores a step only if
the view is still as the node knew it (``view_write.lua``). Two stores on one Redis are two
nodes: each remembers the views it wrote, and what the other did since must never be lost."""

from __future__ import annotations

import pytest

import headcount.stores.redis_live as redis_live
from headcount.errors import StoreUnavailable
from headcount.stores.live import Counts, LiveStats
from tests.redis_servers import RedisServer
from tests.stores.redis_kit import ENV, T0, WINDOW, OpenRedis, ev, fresh_url, start, video

pytestmark = pytest.mark.anyio


async def test_a_node_that_knew_an_older_state_steps_again_from_the_newer_one(
    redis_standalone: RedisServer, open_redis: OpenRedis
) -> None:
    url = fresh_url(redis_standalone.url)
    a, b = await open_redis(url), await open_redis(url)
    assert (await a.ingest(ENV, [start("v", viewer="x")], T0)).applied == 1
    # B never saw the view: its write as a new one finds it there and steps again from it.
    assert (await b.ingest(ENV, [ev("v", "hb", 2), ev("v", "pause", 3)], T0 + 1)).duplicates == 0
    # A still knows the view as it wrote it: its write finds it moved, and steps from B's.
    result = await a.ingest(ENV, [ev("v", "pause", 3), ev("v", "play", 4)], T0 + 2)
    assert (result.applied, result.duplicates) == (1, 1)  # B's pause is not taken twice
    assert await video(a, T0 + 2) == (1, 1)  # playing again, after B's pause
    assert await b.stats() == LiveStats(views=1, happening=1)
    # A's play came after B's pause, and the view is one view to both.
    result = await b.ingest(ENV, [ev("v", "play", 4), ev("v", "pause", 5)], T0 + 3)
    assert (result.applied, result.duplicates) == (1, 1)
    assert await video(b, T0 + 3) == (0, 0)


async def test_a_view_another_node_swept_starts_anew_and_counts_once(
    redis_standalone: RedisServer, open_redis: OpenRedis
) -> None:
    url = fresh_url(redis_standalone.url)
    a, b = await open_redis(url), await open_redis(url)
    await a.ingest(ENV, [start("v", viewer="x")], T0)
    assert await b.sweep(T0 + WINDOW + 1) == 1  # B drops it (and its memberships)
    assert await video(b, T0 + WINDOW + 1) == (0, 0)
    # A knew it as happening: its step would remove it again, and the write finds it gone,
    # so A steps again from nothing: a heartbeat first seen starts it.
    assert (await a.ingest(ENV, [ev("v", "hb", 9, video_id="vid")], T0 + WINDOW + 2)).applied == 1
    assert await video(a, T0 + WINDOW + 2) == (1, 1)
    assert await a.stats() == LiveStats(views=1, happening=1)


async def test_a_batch_whose_views_keep_moving_is_refused_and_its_resend_heals(
    redis_standalone: RedisServer, open_redis: OpenRedis, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = fresh_url(redis_standalone.url)
    a, b = await open_redis(url), await open_redis(url)
    await a.ingest(ENV, [start("v", viewer="x"), start("w", viewer="y")], T0)
    await b.ingest(ENV, [ev("w", "hb", 2)], T0 + 1)  # w moved behind A's back; v did not
    monkeypatch.setattr(redis_live, "WRITE_ATTEMPTS", 1)  # as if B moved w before every retry
    with pytest.raises(StoreUnavailable):
        await a.ingest(ENV, [ev("v", "pause", 2), ev("w", "pause", 3)], T0 + 2)
    assert await video(a, T0 + 2) == (1, 1)  # v's pause is stored and counted; w's was not
    # mux-embed sends the refused batch again: v's pause is a duplicate, w's is taken now.
    result = await a.ingest(ENV, [ev("v", "pause", 2), ev("w", "pause", 3)], T0 + 3)
    assert (result.applied, result.duplicates) == (1, 1)
    assert await video(a, T0 + 3) == (0, 0)


async def test_the_sweep_reads_every_id_where_the_node_packed_it(
    redis_standalone: RedisServer, open_redis: OpenRedis
) -> None:
    store = await open_redis(fresh_url(redis_standalone.url))
    ids = {"video_id": "vid", "asset_id": "as", "playback_id": "pb", "live_stream_id": "ls"}
    await store.ingest(ENV, [ev("v", "viewstart", 1, starts=True, mux_viewer_id="x", **ids)], T0)
    for id_type, value in ids.items():
        assert await store.counts(ENV, id_type, value, T0) == Counts(1, 1), id_type
    # The sweep (Lua) unpacks the state the node packed and removes each membership it names.
    assert await store.sweep(T0 + WINDOW + 1) == 1
    for id_type, value in ids.items():
        assert await store.counts(ENV, id_type, value, T0 + WINDOW + 1) == Counts(0, 0), id_type
    assert await store.stats() == LiveStats(views=0, happening=0)
