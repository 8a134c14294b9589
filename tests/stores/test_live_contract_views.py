"""The LiveStore contract, what a view keeps over its life: one suite, run over every adapter
(memory, standalone Redis, a real Redis Cluster) through ``live_store_factory``, using only the
port's public API. Here: the liveness window and sweeping, ids and viewer identities that
change on a live view, partitions, and the stats.
"""

from __future__ import annotations

import pytest

from headcount.stores.live import Counts, LiveStats
from tests.stores.contract_kit import ENV, T0, WINDOW, OpenStore, ev, start, video

pytestmark = pytest.mark.anyio


# -- liveness window and sweeping ----------------------------------------------------------


async def test_silent_views_drop_out_at_the_sweep_after_the_window(open_store: OpenStore) -> None:
    store = await open_store()
    assert store.updated_at == T0  # start brings the counters up to date
    await store.ingest(ENV, [start("v1", viewer="c1"), start("v2", viewer="c2")], T0)
    await store.ingest(ENV, [ev("v2", "hb", 2)], T0 + 20)
    assert await store.sweep(T0 + WINDOW) == 0  # exactly the window: still alive
    assert store.updated_at == T0 + WINDOW
    assert await video(store, now=T0 + WINDOW) == (2, 2)
    assert await store.sweep(T0 + WINDOW + 1) == 1
    assert store.updated_at == T0 + WINDOW + 1
    assert await video(store, now=T0 + WINDOW + 1) == (1, 1)
    assert await store.stats() == LiveStats(views=1, happening=1)
    assert await store.sweep(T0 + WINDOW + 1) == 0  # idempotent
    assert await video(store, now=T0 + WINDOW + 1) == (1, 1)
    assert await store.sweep(T0 + 20 + WINDOW + 1) == 1
    assert await store.sweep(T0 + 20 + WINDOW + 1) == 0
    assert await video(store, now=T0 + 20 + WINDOW + 1) == (0, 0)
    assert await store.stats() == LiveStats(views=0, happening=0)


async def test_sweeping_twice_removes_and_uncounts_each_view_once(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest(ENV, [start(f"a{i}", viewer=f"c{i}") for i in range(20)], T0)
    await store.ingest(ENV, [start(f"b{i}", viewer=f"c{i}") for i in range(10)], T0 + 20)
    assert await video(store, now=T0 + 20) == (30, 20)
    later = T0 + WINDOW + 5
    assert [await store.sweep(later) for _ in range(3)] == [20, 0, 0]
    assert await video(store, now=later) == (10, 10)
    assert await store.stats() == LiveStats(views=10, happening=10)
    # Swept views come back as new ones (a viewstart of a fresh page, or a heartbeat).
    await store.ingest(ENV, [start(f"a{i}", viewer=f"c{i}", seq=7) for i in range(5)], later)
    assert await video(store, now=later) == (15, 10)


async def test_updated_at_moves_with_the_sweep_only(open_store: OpenStore) -> None:
    store = await open_store()
    assert store.updated_at == T0
    await store.ingest(ENV, [start("v1")], T0 + 5)
    await store.counts(ENV, "video_id", "vid", T0 + 6)
    await store.stats()
    assert store.updated_at == T0  # neither events nor reads move it
    await store.sweep(T0 + 7)
    assert store.updated_at == T0 + 7
    await store.sweep(T0 + 9.5)
    assert store.updated_at == T0 + 9.5


async def test_an_event_after_the_window_starts_afresh_even_before_a_sweep(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    await store.ingest(ENV, [start("v1", viewer="c1", seq=1), ev("v1", "pause", 2)], T0)
    # Paused for longer than the window, then a heartbeat: the old view is gone; the
    # heartbeat is a first-seen delta event, so the view counts again, as its own viewer.
    await store.ingest(ENV, [ev("v1", "hb", 3, video_id="vid")], T0 + WINDOW + 15)
    assert await video(store) == (1, 1)
    assert await store.stats() == LiveStats(views=1, happening=1)
    await store.ingest(ENV, [start("v2", viewer="c1")], T0 + WINDOW + 16)
    assert await video(store) == (2, 2)  # v1 is not yet known to be viewer c1


async def test_an_event_at_exactly_the_window_continues_the_view(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest(ENV, [start("v1", viewer="c1", seq=1), ev("v1", "pause", 2)], T0)
    # Exactly the window: still the same (paused) view; a heartbeat does not start it.
    await store.ingest(ENV, [ev("v1", "hb", 3, video_id="vid")], T0 + WINDOW)
    assert await video(store) == (0, 0)
    # The old sequence numbers are still remembered.
    assert (await store.ingest(ENV, [ev("v1", "play", 2)], T0 + WINDOW)).duplicates == 1
    assert await store.stats() == LiveStats(views=1, happening=0)


async def test_a_duplicate_still_proves_the_view_is_alive(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest(ENV, [start("v1", viewer="c1", seq=1)], T0)
    assert (await store.ingest(ENV, [start("v1", viewer="c1", seq=1)], T0 + 20)).duplicates == 1
    assert await store.sweep(T0 + WINDOW + 5) == 0
    assert await video(store, now=T0 + WINDOW + 5) == (1, 1)


# -- ids and identities --------------------------------------------------------------------


async def test_first_seen_through_a_delta_is_upgraded_by_a_full_state_event(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    await store.ingest(ENV, [start("v2", viewer="c1")], T0)
    await store.ingest(ENV, [ev("v1", "hb", 10, video_id="vid")], T0)
    assert await video(store) == (2, 2)
    # mux-embed repeats full state after 10 minutes of silence, or at viewend; here an
    # updateData heartbeat brings the cookie id.
    await store.ingest(ENV, [ev("v1", "hb", 11, mux_viewer_id="c1")], T0 + 10)
    assert await video(store) == (2, 1)


async def test_viewer_identity_upgrades_to_the_user_and_is_not_downgraded(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    await store.ingest(ENV, [start("v1", viewer="c1"), start("v2", viewer="c2")], T0)
    await store.ingest(
        ENV, [ev("v3", "viewstart", 1, starts=True, video_id="vid", viewer_user_id="u1")], T0
    )
    assert await video(store) == (3, 3)
    # v1's user id arrives: it is now viewer u1, like v3.
    await store.ingest(ENV, [ev("v1", "hb", 2, viewer_user_id="u1")], T0 + 1)
    assert await video(store) == (3, 2)
    # A cookie does not take over from a user id: v1 stays u1 (not c2).
    await store.ingest(ENV, [ev("v1", "hb", 3, mux_viewer_id="c2")], T0 + 2)
    assert await video(store) == (3, 2)
    # A user id and a cookie id spelled alike are different viewers.
    await store.ingest(
        ENV, [ev("v4", "viewstart", 1, starts=True, video_id="vid", mux_viewer_id="u1")], T0 + 3
    )
    assert await video(store) == (4, 3)


async def test_ids_changing_on_a_live_view_move_its_counts(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest(ENV, [start("v1", video="a", viewer="c1")], T0)
    await store.ingest(ENV, [ev("v1", "hb", 2, video_id="b")], T0 + 1)
    assert await video(store, "a") == (0, 0)
    assert await video(store, "b") == (1, 1)
    await store.ingest(ENV, [ev("v1", "hb", 3, viewer_user_id="u1")], T0 + 2)
    await store.ingest(
        ENV, [start("v2", video="b", viewer="c9"), ev("v2", "hb", 2, viewer_user_id="u1")], T0 + 3
    )
    assert await video(store, "b") == (2, 1)


async def test_a_delta_event_repeating_the_ids_changes_nothing_and_a_new_id_moves_the_view(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    await store.ingest(ENV, [start("v1", video="a", viewer="c1")], T0)
    await store.ingest(
        ENV,
        [
            ev("v1", "hb", 2, video_id="a"),
            ev("v1", "requestcompleted", 3, video_id="a", asset_id="as1"),
            ev("v1", "hb", 4, video_id="a", asset_id="as1", live_stream_id="ls1"),
        ],
        T0 + 1,
    )
    assert await video(store, "a") == (1, 1)
    assert await store.counts(ENV, "asset_id", "as1", T0) == Counts(1, 1)
    assert await store.counts(ENV, "live_stream_id", "ls1", T0) == Counts(1, 1)
    await store.ingest(ENV, [ev("v1", "hb", 5, video_id="b", asset_id="as1")], T0 + 2)
    assert await video(store, "a") == (0, 0)
    assert await video(store, "b") == (1, 1)
    assert await store.counts(ENV, "asset_id", "as1", T0) == Counts(1, 1)
    await store.ingest(ENV, [ev("v1", "hb", 6, live_stream_id="ls2")], T0 + 3)
    assert await store.counts(ENV, "live_stream_id", "ls1", T0) == Counts(0, 0)
    assert await store.counts(ENV, "live_stream_id", "ls2", T0) == Counts(1, 1)
    assert await video(store, "b") == (1, 1)


async def test_playback_ids_from_sources_and_the_explicit_field(open_store: OpenStore) -> None:
    store = await open_store()
    mux = "https://stream.mux.com/{}.m3u8?token=abc"
    await store.ingest(
        ENV,
        [
            ev("v1", "viewstart", 1, starts=True, source_url=mux.format("PB1")),
            ev("v2", "viewstart", 1, starts=True, source_url=mux.format("PB1")),
            ev("v3", "viewstart", 1, starts=True, playback_id="EXP", source_url=mux.format("PB1")),
        ],
        T0,
    )
    assert await store.counts(ENV, "playback_id", "PB1", T0) == Counts(2, 2)
    assert await store.counts(ENV, "playback_id", "EXP", T0) == Counts(1, 1)
    await store.ingest(
        ENV,
        [
            ev("v1", "hb", 2, source_url=mux.format("PB2")),  # a new source replaces it
            ev("v2", "hb", 2, source_url="https://cdn.example.com/a.mp4"),  # not Mux: cleared
            ev("v3", "hb", 2, source_url=mux.format("PB2")),  # the explicit id stays
        ],
        T0 + 1,
    )
    assert await store.counts(ENV, "playback_id", "PB1", T0) == Counts(0, 0)
    assert await store.counts(ENV, "playback_id", "PB2", T0) == Counts(1, 1)
    assert await store.counts(ENV, "playback_id", "EXP", T0) == Counts(1, 1)
    assert await store.stats() == LiveStats(views=3, happening=3)


async def test_any_number_of_partitions_counts_alike(open_store: OpenStore) -> None:
    events = [start(f"view-{i}", viewer=f"c{i % 7}") for i in range(40)]
    for partitions in (1, 5):
        store = await open_store(partitions=partitions)
        await store.ingest(ENV, events, T0)
        await store.ingest(ENV, [ev(f"view-{i}", "pause", 2) for i in range(0, 40, 4)], T0 + 1)
        assert await video(store) == (30, 7)
        assert await store.stats() == LiveStats(views=40, happening=30)
        assert await store.sweep(T0 + WINDOW + 2) == 40
        assert await store.stats() == LiveStats(views=0, happening=0)
        assert await video(store, now=T0 + WINDOW + 2) == (0, 0)


async def test_stats_count_held_and_happening_views(open_store: OpenStore) -> None:
    store = await open_store()
    assert await store.stats() == LiveStats(views=0, happening=0)
    await store.ingest(
        ENV,
        [
            start("playing"),
            start("paused"),
            ev("paused", "pause", 2),
            ev("loaded", "playerready", 1),
            start("ended"),
            ev("ended", "viewend", 2),
        ],
        T0,
    )
    assert await store.stats() == LiveStats(views=4, happening=1)
    await store.ingest("env-2", [start("playing")], T0)
    assert await store.stats() == LiveStats(views=5, happening=2)
