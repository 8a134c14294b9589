"""The LiveStore contract, what each event does: one suite, run over every adapter (memory,
standalone Redis, a real Redis Cluster) through ``live_store_factory``, using only the port's
public API. Here: counting while playing, pauses, ends and tombstones, dedupe by
``view_sequence_number``, and the rules for the first event seen of a view.
"""

from __future__ import annotations

import pytest

from headcount.stores.live import Counts, IngestResult, LiveStats
from tests.stores.contract_kit import ENV, T0, WINDOW, OpenStore, ev, start, video

pytestmark = pytest.mark.anyio


# -- counting while playing ----------------------------------------------------------------


async def test_a_view_counts_while_playing(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest(ENV, [ev("v1", "playerready", 1, video_id="vid", mux_viewer_id="c1")], T0)
    assert await video(store) == (0, 0)  # loaded, not started
    assert await store.stats() == LiveStats(views=1, happening=0)
    await store.ingest(ENV, [ev("v1", "viewstart", 2, starts=True)], T0 + 1)
    assert await video(store) == (1, 1)
    await store.ingest(ENV, [ev("v1", "hb", 3)], T0 + 11)
    assert await video(store) == (1, 1)
    await store.ingest(ENV, [ev("v1", "pause", 4)], T0 + 12)
    assert await video(store) == (0, 0)
    await store.ingest(ENV, [ev("v1", "play", 5), ev("v1", "playing", 6)], T0 + 20)
    assert await video(store) == (1, 1)
    await store.ingest(ENV, [ev("v1", "viewend", 7)], T0 + 30)
    assert await video(store) == (0, 0)
    assert await store.stats() == LiveStats(views=1, happening=0)  # the tombstone


async def test_views_and_viewers_per_id_type(open_store: OpenStore) -> None:
    store = await open_store()
    events = [
        ev(
            "v1",
            "viewstart",
            1,
            starts=True,
            video_id="vid",
            asset_id="as1",
            live_stream_id="ls1",
            source_url="https://stream.mux.com/PB1.m3u8?token=t",
            viewer_user_id="u1",
        ),
        ev("v2", "viewstart", 1, starts=True, video_id="vid", viewer_user_id="u1"),
        ev("v3", "viewstart", 1, starts=True, video_id="vid", mux_viewer_id="c3"),
        ev("v4", "viewstart", 1, starts=True, asset_id="as1", playback_id="PB2"),
    ]
    assert await store.ingest(ENV, events, T0) == IngestResult(applied=4, duplicates=0)
    assert await video(store) == (3, 2)
    assert await store.counts(ENV, "asset_id", "as1", T0) == Counts(2, 2)
    assert await store.counts(ENV, "playback_id", "PB1", T0) == Counts(1, 1)
    assert await store.counts(ENV, "playback_id", "PB2", T0) == Counts(1, 1)
    assert await store.counts(ENV, "live_stream_id", "ls1", T0) == Counts(1, 1)
    # The same string under another id type is another counter key.
    assert await store.counts(ENV, "playback_id", "vid", T0) == Counts(0, 0)
    assert await store.counts(ENV, "asset_id", "vid", T0) == Counts(0, 0)
    assert await store.stats() == LiveStats(views=4, happening=4)


async def test_an_id_nobody_watches_reads_zero(open_store: OpenStore) -> None:
    store = await open_store()
    for id_type in ("video_id", "asset_id", "playback_id", "live_stream_id"):
        assert await store.counts(ENV, id_type, "nobody", T0) == Counts(0, 0)
    await store.ingest(ENV, [start("v1", viewer="c1")], T0)
    assert await store.counts(ENV, "video_id", "nobody", T0) == Counts(0, 0)
    assert await store.counts(ENV, "video_id", "", T0) == Counts(0, 0)
    assert await store.counts("no-such-env", "video_id", "vid", T0) == Counts(0, 0)


async def test_an_unknown_id_type_reads_zero(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest(ENV, [start("v1", viewer="c1")], T0)
    assert await video(store) == (1, 1)
    for id_type in ("no_such_type", "video", "VIDEO_ID", ""):
        assert await store.counts(ENV, id_type, "vid", T0) == Counts(0, 0)


async def test_environments_are_isolated(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest("env-a", [start("v1", viewer="c1")], T0)
    await store.ingest("env-b", [start("v1", viewer="c1")], T0)  # same view id, other env
    await store.ingest("env-b", [start("v2", viewer="c2")], T0)
    await store.ingest("env-c", [ev("v1", "pause", 9)], T0)  # first seen paused: held only
    assert await video(store, env="env-a") == (1, 1)
    assert await video(store, env="env-b") == (2, 2)
    assert await video(store, env="env-c") == (0, 0)
    assert await store.stats() == LiveStats(views=4, happening=3)
    # Ending env-a's v1 leaves env-b's v1 alone; dedupe is per environment too.
    await store.ingest("env-a", [ev("v1", "viewend", 2)], T0 + 1)
    assert (await store.ingest("env-b", [ev("v1", "pause", 2)], T0 + 1)).duplicates == 0
    assert await video(store, env="env-a") == (0, 0)
    assert await video(store, env="env-b") == (1, 1)


# -- pauses, ends, tombstones --------------------------------------------------------------


async def test_count_paused_keeps_paused_and_ended_views(open_store: OpenStore) -> None:
    store = await open_store(count_paused=True)
    await store.ingest(ENV, [start("v1", viewer="c1"), ev("v1", "pause", 2)], T0)
    assert await video(store) == (1, 1)
    await store.ingest(ENV, [ev("v1", "ended", 3)], T0 + 1)
    assert await video(store) == (1, 1)
    assert await store.stats() == LiveStats(views=1, happening=1)
    await store.ingest(ENV, [ev("v1", "viewend", 4)], T0 + 2)
    assert await video(store) == (0, 0)
    assert await store.stats() == LiveStats(views=1, happening=0)


async def test_the_duplicate_viewend_of_an_unload_cannot_resurrect_the_view(
    open_store: OpenStore,
) -> None:
    store = await open_store()
    await store.ingest(ENV, [start("v1", viewer="c1", seq=1)], T0)
    await store.ingest(ENV, [ev("v1", "viewend", 9)], T0 + 5)  # sendBeacon
    result = await store.ingest(ENV, [ev("v1", "viewend", 9)], T0 + 5)  # keepalive fetch
    assert result == IngestResult(applied=0, duplicates=1)
    await store.ingest(ENV, [ev("v1", "playing", 10)], T0 + 6)  # a late straggler
    await store.ingest(ENV, [ev("v1", "viewstart", 11, starts=True, video_id="other")], T0 + 7)
    assert await video(store) == (0, 0)
    assert await video(store, "other") == (0, 0)
    assert await store.stats() == LiveStats(views=1, happening=0)
    assert await store.sweep(T0 + 7 + WINDOW) == 0  # tombstone kept for the window
    assert await store.sweep(T0 + 7 + WINDOW + 0.5) == 1
    assert await store.stats() == LiveStats(views=0, happening=0)


# -- dedupe by view_sequence_number --------------------------------------------------------


async def test_duplicates_and_resent_batches_change_nothing(open_store: OpenStore) -> None:
    store = await open_store()
    batch = [start("v1", viewer="c1", seq=1), ev("v1", "pause", 2), ev("v1", "play", 3)]
    assert await store.ingest(ENV, batch, T0) == IngestResult(applied=3, duplicates=0)
    resent = [*batch, ev("v1", "hb", 4)]  # a failed POST comes back whole, plus new events
    assert await store.ingest(ENV, resent, T0 + 10) == IngestResult(applied=1, duplicates=3)
    assert await video(store) == (1, 1)
    # A re-sent pause alone would stop the count: dedupe keeps it out.
    assert (await store.ingest(ENV, [ev("v1", "pause", 2)], T0 + 11)).duplicates == 1
    assert await video(store) == (1, 1)
    # A number not seen yet, below the highest (gaps are normal), is applied.
    assert (await store.ingest(ENV, [ev("v1", "pause", 0)], T0 + 12)).duplicates == 0
    assert await video(store) == (0, 0)


async def test_events_far_below_the_highest_number_are_duplicates(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest(ENV, [start("v1", viewer="c1", seq=100)], T0)
    assert (await store.ingest(ENV, [ev("v1", "pause", 36)], T0 + 1)).duplicates == 1
    assert await video(store) == (1, 1)
    assert (await store.ingest(ENV, [ev("v1", "pause", 37)], T0 + 1)).duplicates == 0
    assert await video(store) == (0, 0)


async def test_events_without_a_sequence_number_are_always_applied(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest(ENV, [ev("v1", "viewstart", None, starts=True, video_id="vid")], T0)
    await store.ingest(ENV, [ev("v1", "pause"), ev("v1", "play"), ev("v1", "pause")], T0 + 1)
    assert await video(store) == (0, 0)
    assert await store.ingest(ENV, [ev("v1", "play")], T0 + 2) == IngestResult(1, 0)
    assert await video(store) == (1, 1)


async def test_an_empty_batch_changes_nothing(open_store: OpenStore) -> None:
    store = await open_store()
    assert await store.ingest(ENV, [], T0) == IngestResult(applied=0, duplicates=0)
    assert await store.stats() == LiveStats(views=0, happening=0)


async def test_dedupe_is_per_view(open_store: OpenStore) -> None:
    store = await open_store()
    result = await store.ingest(
        ENV, [start("v1", viewer="c1", seq=5), start("v2", viewer="c2", seq=5)], T0
    )
    assert result == IngestResult(applied=2, duplicates=0)
    assert await video(store) == (2, 2)


# -- first seen ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "counted", "held_happening"),
    [
        ("hb", (1, 1), 1),
        ("pause", (0, 0), 0),
        ("ended", (0, 0), 0),
        ("playerready", (0, 0), 0),
        ("seeking", (0, 0), 0),
        ("requestcompleted", (0, 0), 0),
        ("play", (1, 1), 1),
        ("playing", (1, 1), 1),
        ("viewstart", (1, 1), 1),
        ("viewend", (0, 0), 0),
    ],
)
async def test_first_seen_rules(
    open_store: OpenStore, name: str, counted: tuple[int, int], held_happening: int
) -> None:
    store = await open_store()
    await store.ingest(ENV, [ev("v1", name, 5, video_id="vid", mux_viewer_id="c1")], T0)
    assert await video(store) == counted
    assert await store.stats() == LiveStats(views=1, happening=held_happening)


@pytest.mark.parametrize("name", ["pause", "ended"])
async def test_first_seen_paused_is_started(open_store: OpenStore, name: str) -> None:
    store = await open_store()
    await store.ingest(ENV, [ev("v1", name, 5, video_id="vid")], T0)
    assert await video(store) == (0, 0)
    await store.ingest(ENV, [ev("v1", "play", 6)], T0 + 1)
    assert await video(store) == (1, 1)
    paused_counted = await open_store(count_paused=True)
    await paused_counted.ingest(ENV, [ev("v1", name, 5, video_id="vid")], T0)
    assert await video(paused_counted) == (1, 1)


async def test_only_the_first_event_gets_the_first_seen_rule(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest(ENV, [ev("v1", "playerready", 1, video_id="vid")], T0)
    await store.ingest(ENV, [ev("v1", "hb", 2), ev("v1", "pause", 3)], T0 + 1)
    assert await video(store) == (0, 0)
    assert await store.stats() == LiveStats(views=1, happening=0)
    await store.ingest(ENV, [ev("v1", "play", 4)], T0 + 2)
    assert await video(store) == (1, 1)


async def test_an_event_carrying_view_start_starts_the_view(open_store: OpenStore) -> None:
    store = await open_store()
    await store.ingest(ENV, [ev("v1", "playerready", 1, video_id="vid")], T0)
    await store.ingest(ENV, [ev("v1", "requestcompleted", 2, starts=True)], T0 + 1)
    assert await video(store) == (1, 1)
