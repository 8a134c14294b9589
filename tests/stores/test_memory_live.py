"""The memory LiveStore: counting by transitions, liveness, sweeping, partitions, persistence."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from headcount.core.events import ViewEvent
from headcount.core.identity import view_key
from headcount.settings import load_settings
from headcount.stores.live import Counts, LiveStats
from headcount.stores.memory import MemoryLiveStore

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0
ENV = "env-1"


def ev(view: str, name: str, seq: int | None = None, **fields: object) -> ViewEvent:
    return ViewEvent(name=name, view_id=view, sequence=seq, **fields)  # type: ignore[arg-type]


def start(view: str, video: str = "vid", viewer: str | None = None, seq: int = 1) -> ViewEvent:
    return ev(view, "viewstart", seq, starts=True, video_id=video, mux_viewer_id=viewer)


async def video(store: MemoryLiveStore, vid: str = "vid", env: str = ENV) -> tuple[int, int]:
    counts = await store.counts(env, "video_id", vid, T0)
    return counts.views, counts.viewers


async def test_from_settings_reads_what_it_needs(tmp_path: Path) -> None:
    settings = load_settings(
        {
            "liveness_window": 42.0,
            "count_paused": True,
            "partitions": 3,
            "state_file": str(tmp_path / "s.json"),
        },
        environ={},
    )
    store = MemoryLiveStore.from_settings(settings)
    assert (store.liveness_window, store.count_paused, store.state_file) == (
        42.0,
        True,
        tmp_path / "s.json",
    )
    assert len(store._tables) == 3
    assert MemoryLiveStore.from_settings(settings.replace(state_file="")).state_file is None


async def test_a_view_counts_while_playing() -> None:
    store = MemoryLiveStore()
    await store.ingest(ENV, [ev("v1", "playerready", 1, video_id="vid", mux_viewer_id="c1")], T0)
    assert await video(store) == (0, 0)  # loaded, not started
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


async def test_views_and_viewers_per_id_type() -> None:
    store = MemoryLiveStore()
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
    ]
    result = await store.ingest(ENV, events, T0)
    assert (result.applied, result.duplicates) == (3, 0)
    assert await video(store) == (3, 2)
    assert await store.counts(ENV, "asset_id", "as1", T0) == Counts(1, 1)
    assert await store.counts(ENV, "playback_id", "PB1", T0) == Counts(1, 1)
    assert await store.counts(ENV, "live_stream_id", "ls1", T0) == Counts(1, 1)
    assert await store.counts(ENV, "playback_id", "vid", T0) == Counts(0, 0)
    assert await store.counts(ENV, "no_such_type", "vid", T0) == Counts(0, 0)
    assert await store.counts("other-env", "video_id", "vid", T0) == Counts(0, 0)
    assert await store.stats() == LiveStats(views=3, happening=3)


async def test_environments_are_isolated() -> None:
    store = MemoryLiveStore()
    await store.ingest("env-a", [start("v1", viewer="c1")], T0)
    await store.ingest("env-b", [start("v1", viewer="c1")], T0)  # same view id, other env
    await store.ingest("env-b", [start("v2", viewer="c2")], T0)
    assert await video(store, env="env-a") == (1, 1)
    assert await video(store, env="env-b") == (2, 2)


async def test_duplicates_and_resent_batches_change_nothing() -> None:
    store = MemoryLiveStore()
    batch = [start("v1", viewer="c1", seq=1), ev("v1", "pause", 2), ev("v1", "play", 3)]
    assert (await store.ingest(ENV, batch, T0)).duplicates == 0
    resent = [*batch, ev("v1", "hb", 4)]  # a failed POST comes back whole, plus new events
    result = await store.ingest(ENV, resent, T0 + 10)
    assert (result.applied, result.duplicates) == (1, 3)
    assert await video(store) == (1, 1)
    # Without dedupe the replayed `pause` would not matter here, but a re-sent pause alone would:
    assert (await store.ingest(ENV, [ev("v1", "pause", 2)], T0 + 11)).duplicates == 1
    assert await video(store) == (1, 1)


async def test_events_without_a_sequence_number_are_always_applied() -> None:
    store = MemoryLiveStore()
    await store.ingest(ENV, [ev("v1", "viewstart", None, starts=True, video_id="vid")], T0)
    await store.ingest(ENV, [ev("v1", "pause"), ev("v1", "play"), ev("v1", "pause")], T0 + 1)
    assert await video(store) == (0, 0)
    assert (await store.ingest(ENV, [ev("v1", "play")], T0 + 2)).duplicates == 0
    assert await video(store) == (1, 1)


async def test_the_duplicate_viewend_of_an_unload_cannot_resurrect_the_view() -> None:
    store = MemoryLiveStore()
    await store.ingest(ENV, [start("v1", viewer="c1", seq=1)], T0)
    await store.ingest(ENV, [ev("v1", "viewend", 9)], T0 + 5)  # sendBeacon
    await store.ingest(ENV, [ev("v1", "viewend", 9)], T0 + 5)  # keepalive fetch
    await store.ingest(ENV, [ev("v1", "playing", 10)], T0 + 6)  # a late straggler
    assert await video(store) == (0, 0)
    assert await store.sweep(T0 + 6 + 60) == 0  # tombstone kept for the window
    assert await store.sweep(T0 + 6 + 60.5) == 1
    assert await store.stats() == LiveStats(views=0, happening=0)


async def test_silent_views_drop_out_at_the_sweep_after_the_window() -> None:
    store = MemoryLiveStore(liveness_window=30.0)
    await store.ingest(ENV, [start("v1", viewer="c1"), start("v2", viewer="c2")], T0)
    await store.ingest(ENV, [ev("v2", "hb", 2)], T0 + 20)
    assert await store.sweep(T0 + 30) == 0  # exactly the window: still alive
    assert store.updated_at == T0 + 30
    assert await video(store) == (2, 2)
    assert await store.sweep(T0 + 31) == 1
    assert await video(store) == (1, 1)
    assert store.updated_at == T0 + 31
    assert await store.sweep(T0 + 31) == 0  # idempotent
    assert await store.sweep(T0 + 51) == 1
    assert await video(store) == (0, 0)
    assert store._contents.values() == [None, None] and len(store._contents) == 0  # no leak
    assert len(store._environments) == 0


async def test_an_event_after_the_window_starts_afresh_even_before_a_sweep() -> None:
    store = MemoryLiveStore(liveness_window=30.0)
    await store.ingest(ENV, [start("v1", viewer="c1", seq=1), ev("v1", "pause", 2)], T0)
    # Paused for longer than the window, then a heartbeat: the old view is gone; the
    # heartbeat is a first-seen delta event, so the view counts again, as its own viewer.
    await store.ingest(ENV, [ev("v1", "hb", 3, video_id="vid")], T0 + 45)
    assert await video(store) == (1, 1)
    assert await store.stats() == LiveStats(views=1, happening=1)
    await store.ingest(ENV, [start("v2", viewer="c1")], T0 + 46)
    assert await video(store) == (2, 2)  # v1 is not yet known to be viewer c1


async def test_first_seen_through_a_delta_is_upgraded_by_a_full_state_event() -> None:
    store = MemoryLiveStore()
    await store.ingest(ENV, [start("v2", viewer="c1")], T0)
    await store.ingest(ENV, [ev("v1", "hb", 10, video_id="vid")], T0)
    assert await video(store) == (2, 2)
    # mux-embed repeats full state after 10 minutes of silence, or at viewend; here an
    # updateData heartbeat brings the cookie id.
    await store.ingest(ENV, [ev("v1", "hb", 11, mux_viewer_id="c1")], T0 + 10)
    assert await video(store) == (2, 1)


async def test_ids_changing_on_a_live_view_move_its_counts() -> None:
    store = MemoryLiveStore()
    await store.ingest(ENV, [start("v1", video="a", viewer="c1")], T0)
    await store.ingest(ENV, [ev("v1", "hb", 2, video_id="b")], T0 + 1)
    assert await video(store, "a") == (0, 0)
    assert await video(store, "b") == (1, 1)
    await store.ingest(ENV, [ev("v1", "hb", 3, viewer_user_id="u1")], T0 + 2)
    await store.ingest(
        ENV, [start("v2", video="b", viewer="c9"), ev("v2", "hb", 2, viewer_user_id="u1")], T0 + 3
    )
    assert await video(store, "b") == (2, 1)


async def test_count_paused_keeps_paused_and_ended_views() -> None:
    store = MemoryLiveStore(count_paused=True)
    await store.ingest(ENV, [start("v1", viewer="c1"), ev("v1", "pause", 2)], T0)
    assert await video(store) == (1, 1)
    await store.ingest(ENV, [ev("v1", "ended", 3)], T0 + 1)
    assert await video(store) == (1, 1)
    await store.ingest(ENV, [ev("v1", "viewend", 4)], T0 + 2)
    assert await video(store) == (0, 0)


async def test_a_view_lives_in_the_partition_of_its_key() -> None:
    store = MemoryLiveStore(partitions=5)
    views = [f"view-{i}" for i in range(40)]
    await store.ingest(ENV, [start(v) for v in views], T0)
    for v in views:
        key = view_key(ENV, v)
        holders = [i for i, table in enumerate(store._tables) if key in table.index]
        assert holders == [key % 5]
    assert all(len(t) > 0 for t in store._tables)
    assert await video(store) == (40, 40)


async def test_rows_of_removed_views_are_reused() -> None:
    store = MemoryLiveStore(partitions=1)
    await store.ingest(ENV, [start(f"a{i}") for i in range(10)], T0)
    await store.sweep(T0 + 61)
    await store.ingest(ENV, [start(f"b{i}") for i in range(10)], T0 + 62)
    assert store._tables[0].rows() == 10
    assert await video(store) == (10, 10)


# -- persistence ---------------------------------------------------------------------------


async def test_state_survives_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "state" / "live.json"
    first = MemoryLiveStore(state_file=state, partitions=4)
    await first.start(T0)
    await first.ingest(
        ENV,
        [
            start("v1", viewer="c1"),
            start("v2", viewer="c1"),
            start("v3", video="other", viewer="c3"),
            ev("v3", "pause", 2),
            ev(
                "v4",
                "viewstart",
                1,
                starts=True,
                video_id="vid",
                source_url="https://stream.mux.com/PB.m3u8",
            ),
        ],
        T0,
    )
    await first.ingest("env-2", [start("v1", viewer="c1")], T0)
    await first.close(T0 + 5)
    assert state.exists() and not state.with_name("live.json.tmp").exists()

    second = MemoryLiveStore(state_file=state, partitions=7)  # partitions may change
    await second.start(T0 + 10)
    assert await video(second) == (3, 2)
    assert await video(second, "other") == (0, 0)
    assert await video(second, env="env-2") == (1, 1)
    assert await second.counts(ENV, "playback_id", "PB", T0) == Counts(1, 1)
    assert await second.stats() == LiveStats(views=5, happening=4)
    assert second.updated_at == T0 + 10
    # Per-view state came back: dedupe, the paused flag and the viewer identity.
    result = await second.ingest(ENV, [start("v1", viewer="c1"), ev("v3", "play", 3)], T0 + 11)
    assert result.duplicates == 1
    assert await video(second, "other") == (1, 1)
    await second.ingest(ENV, [ev("v1", "hb", 2), ev("v2", "hb", 2)], T0 + 12)
    assert await video(second) == (3, 2)


async def test_restore_drops_views_past_the_window(tmp_path: Path) -> None:
    state = tmp_path / "live.json"
    first = MemoryLiveStore(state_file=state)
    await first.ingest(ENV, [start("old", viewer="c1")], T0)
    await first.ingest(ENV, [start("new", viewer="c2")], T0 + 50)
    await first.save(T0 + 50)
    second = MemoryLiveStore(state_file=state)
    await second.start(T0 + 100)
    assert await video(second) == (1, 1)
    assert await second.stats() == LiveStats(views=1, happening=1)


async def test_periodic_saves_replace_the_file(tmp_path: Path) -> None:
    state = tmp_path / "live.json"
    store = MemoryLiveStore(state_file=state)
    await store.ingest(ENV, [start("v1")], T0)
    await store.save(T0)
    await store.ingest(ENV, [start("v2")], T0 + 1)
    await store.save(T0 + 1)
    restored = MemoryLiveStore(state_file=state)
    await restored.start(T0 + 2)
    assert await video(restored) == (2, 2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.json"]


async def test_without_a_state_file_nothing_is_written(tmp_path: Path) -> None:
    store = MemoryLiveStore()
    await store.start(T0)
    await store.ingest(ENV, [start("v1")], T0)
    await store.close(T0)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"format":"something-else"}',
        b'{"format":"headcount-live-state","version":99}',
    ],
)
async def test_an_unreadable_state_file_is_logged_and_skipped(
    tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "live.json"
    state.write_bytes(content)
    store = MemoryLiveStore(state_file=state)
    with caplog.at_level(logging.ERROR, logger="headcount.live"):
        await store.start(T0)
    assert "live state not restored" in caplog.text
    await store.ingest(ENV, [start("v1")], T0)
    assert await video(store) == (1, 1)


async def test_a_truncated_column_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import orjson

    state = tmp_path / "live.json"
    store = MemoryLiveStore(state_file=state)
    await store.ingest(ENV, [start("v1")], T0)
    await store.save(T0)
    document = orjson.loads(state.read_bytes())
    for partition in document["partitions"]:
        partition["flags"] = ""  # the partition holding v1 now has a column too short
    state.write_bytes(orjson.dumps(document))
    with caplog.at_level(logging.ERROR, logger="headcount.live"):
        await MemoryLiveStore(state_file=state).start(T0)
    assert "columns of different lengths" in caplog.text


# -- wiring --------------------------------------------------------------------------------


async def test_build_runtime_registers_the_sweeper_and_the_saver(tmp_path: Path) -> None:
    from headcount.bootstrap import build_runtime

    settings = load_settings(
        {
            "database_url": f"sqlite:///{tmp_path / 'db.sqlite'}",
            "state_file": str(tmp_path / "live.json"),
            "liveness_window": 30.0,
            "sweep_interval": 0.5,
            "save_interval": 7.0,
        },
        environ={},
    )
    runtime = build_runtime(settings)
    try:
        store = runtime.live
        assert isinstance(store, MemoryLiveStore)
        assert store.liveness_window == 30.0
        jobs = {job.name: job for job in runtime.periodic}
        assert (jobs["live-sweep"].interval, jobs["live-save"].interval) == (0.5, 7.0)
        await store.ingest(ENV, [start("v1")], T0)
        await jobs["live-sweep"].run(T0 + 31)
        assert store.updated_at == T0 + 31
        assert await video(store) == (0, 0)
        await store.ingest(ENV, [start("v2")], T0 + 32)
        await jobs["live-save"].run(T0 + 32)
        assert (tmp_path / "live.json").exists()
    finally:
        runtime.control.close()


async def test_a_delta_event_repeating_the_ids_changes_nothing_and_a_new_id_moves_the_view() -> (
    None
):
    store = MemoryLiveStore()
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
    assert (await store.counts(ENV, "asset_id", "as1", T0)).views == 1
    assert (await store.counts(ENV, "live_stream_id", "ls1", T0)).views == 1
    await store.ingest(ENV, [ev("v1", "hb", 5, video_id="b", asset_id="as1")], T0 + 2)
    assert await video(store, "a") == (0, 0)
    assert await video(store, "b") == (1, 1)
    assert (await store.counts(ENV, "asset_id", "as1", T0)).views == 1
    await store.ingest(ENV, [ev("v1", "hb", 6, live_stream_id="ls2")], T0 + 3)
    assert (await store.counts(ENV, "live_stream_id", "ls1", T0)).views == 0
    assert (await store.counts(ENV, "live_stream_id", "ls2", T0)).views == 1
    assert await video(store, "b") == (1, 1)
