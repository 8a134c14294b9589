"""The recording rules (headcount.history.record) with time as an argument: minute
boundaries, peaks, retention, and the memory store's history across a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from headcount.core.events import ViewEvent
from headcount.history.memory import MemoryHistory
from headcount.history.model import Minute
from headcount.history.reads import HistoryReads
from headcount.history.record import KeyHistory, expired, observe, read
from headcount.stores.memory import MemoryLiveStore

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0  # a multiple of 60: minute boundaries at T0 + 60 k
DAY = 86_400.0


def test_a_minute_keeps_its_end_value_and_its_maximum() -> None:
    h = KeyHistory()
    observe(h, 1, 1, T0 + 5, DAY)
    observe(h, 3, 2, T0 + 20, DAY)
    observe(h, 2, 2, T0 + 59.9, DAY)
    got = read(h, T0 + 59.9, DAY)
    assert got.series == [Minute(T0, 2, 2, 3, 2)]


def test_a_new_minute_starts_from_the_value_carried_in() -> None:
    h = KeyHistory()
    observe(h, 5, 4, T0 + 30, DAY)
    observe(h, 2, 2, T0 + 60, DAY)  # exactly on the boundary: the next minute
    got = read(h, T0 + 61, DAY)
    # the second minute held 5 until its first second: its maximum is 5
    assert got.series == [Minute(T0, 5, 4, 5, 4), Minute(T0 + 60, 2, 2, 5, 4)]


def test_minutes_without_a_change_carry_the_value_forward() -> None:
    h = KeyHistory()
    observe(h, 4, 3, T0 + 1, DAY)
    got = read(h, T0 + 3 * 60 + 1, DAY)
    assert [(m.minute_start, m.views, m.max_views) for m in got.series] == [
        (T0, 4, 4),
        (T0 + 60, 4, 4),
        (T0 + 120, 4, 4),
        (T0 + 180, 4, 4),
    ]


def test_peaks_are_the_first_time_the_most_was_reached() -> None:
    h = KeyHistory()
    observe(h, 2, 2, T0, DAY)
    observe(h, 7, 3, T0 + 100, DAY)
    observe(h, 1, 5, T0 + 200, DAY)
    observe(h, 7, 5, T0 + 300, DAY)  # the same peak again: the first time stays
    got = read(h, T0 + 400, DAY)
    assert (got.peak_views, got.peak_views_at) == (7, T0 + 100)
    assert (got.peak_viewers, got.peak_viewers_at) == (5, T0 + 200)


def test_nothing_watched_has_no_peak_time() -> None:
    got = read(KeyHistory(), T0, DAY)
    assert (got.peak_views, got.peak_views_at, got.series) == (0, None, [])
    assert read(None, T0, DAY).series == []


def test_retention_drops_old_minutes_and_a_peak_gives_way() -> None:
    window = 5 * 60.0
    h = KeyHistory()
    observe(h, 9, 9, T0 + 10, window)  # the peak, in minute 0
    observe(h, 3, 3, T0 + 70, window)  # minute 1
    observe(h, 4, 2, T0 + 130, window)  # minute 2
    # At minute 5 the window holds minutes 1..5: minute 0 and its peak are gone, the next
    # peak is minute 1's maximum (9: it started with the value carried in) ...
    got = read(h, T0 + 5 * 60 + 1, window)
    assert got.series[0].minute_start == T0 + 60
    assert (got.peak_views, got.peak_views_at) == (9, T0 + 60)
    # ... and at minute 6, minute 2's (4, carried in from 3 and then 4).
    got = read(h, T0 + 6 * 60 + 1, window)
    assert [m.minute_start for m in got.series] == [T0 + 60 * k for k in range(2, 7)]
    assert (got.peak_views, got.peak_views_at) == (4, T0 + 120)
    assert (got.peak_viewers, got.peak_viewers_at) == (3, T0 + 120)
    # Reads never change the record; a write trims it the same way.
    assert h.peak_views == 9
    observe(h, 1, 1, T0 + 6 * 60 + 1, window)
    assert (h.peak_views, h.peak_views_at) == (4, T0 + 120)
    assert len(h.minutes) == 5 * 2  # minutes 2 and 6 kept


def test_a_key_at_zero_is_forgotten_a_window_after_it_last_moved() -> None:
    window = 600.0
    book = MemoryHistory(window)
    book.observe("e", "video_id", "v", 1, 1, T0)
    book.observe("e", "video_id", "v", 0, 0, T0 + 10)
    book.observe("e", "video_id", "w", 1, 1, T0 + 20)  # still watched: never forgotten
    assert book.sweep(T0 + 10 + window - 1) == 0
    assert book.sweep(T0 + 10 + window) == 1
    assert book.sweep(T0 + 10 * window) == 0
    assert set(book.records) == {("e", "video_id", "w")}
    assert not expired(book.records["e", "video_id", "w"], T0 + 10 * window, window)


def test_the_clock_stepping_back_writes_into_the_last_minute() -> None:
    h = KeyHistory()
    observe(h, 1, 1, T0 + 130, DAY)
    observe(h, 6, 6, T0 + 10, DAY)
    assert read(h, T0 + 130, DAY).series[-1] == Minute(T0 + 120, 6, 6, 6, 6)


def _start(view: str, video: str, viewer: str) -> ViewEvent:
    return ViewEvent(
        name="viewstart",
        view_id=view,
        sequence=1,
        starts=True,
        video_id=video,
        mux_viewer_id=viewer,
    )


async def test_the_memory_store_records_transitions_and_keeps_history_across_a_restart(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    store = MemoryLiveStore(state_file=state, history_retention=DAY)
    await store.start(T0)
    await store.ingest("e", [_start("a", "v1", "x"), _start("b", "v1", "y")], T0 + 1)
    await store.ingest("e", [_start("c", "v2", "x")], T0 + 2)
    # Heartbeats move nothing: no history write.
    before = len(store.history.records["e", "video_id", "v1"].minutes)
    await store.ingest("e", [ViewEvent(name="hb", view_id="a", sequence=2)], T0 + 30)
    assert len(store.history.records["e", "video_id", "v1"].minutes) == before
    await store.ingest("e", [ViewEvent(name="viewend", view_id="b", sequence=2)], T0 + 61)
    reads = HistoryReads(store.history, store)
    top = await reads.top("e", None, 10, 1, T0 + 62)
    assert [(t.id, t.views, t.peak_views, t.peak_views_at) for t in top] == [
        ("v1", 1, 2, T0 + 1),
        ("v2", 1, 1, T0 + 2),
    ]
    environment = await reads.environment("e", T0 + 62)
    assert (environment.views, environment.viewers, environment.peak_views) == (2, 1, 3)
    await store.close(T0 + 62)

    # Restarted 100 s later: every view is past the 60 s window, so every count is 0 now,
    # and the peaks and minutes before the restart are still there.
    again = MemoryLiveStore(state_file=state, history_retention=DAY)
    await again.start(T0 + 162)
    reads = HistoryReads(again.history, again)
    detail = await reads.detail("e", "video_id", "v1", T0 + 162)
    assert (detail.views, detail.peak_views, detail.peak_views_at) == (0, 2, T0 + 1)
    assert [(m.views, m.max_views) for m in detail.series] == [(2, 2), (1, 2), (0, 1)]
    assert await reads.top("e", None, 10, 1, T0 + 162) == []
    await again.close(T0 + 162)


async def test_a_restart_within_the_window_keeps_counting_from_the_saved_views(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state.json"
    store = MemoryLiveStore(state_file=state)
    await store.start(T0)
    await store.ingest("e", [_start("a", "v1", "x")], T0 + 1)
    await store.close(T0 + 2)
    again = MemoryLiveStore(state_file=state)
    await again.start(T0 + 10)
    top = await HistoryReads(again.history, again).top("e", "video_id", 10, 1, T0 + 10)
    assert [(t.id, t.views, t.peak_views_at) for t in top] == [("v1", 1, T0 + 1)]
    await again.close(T0 + 10)


async def test_a_bad_history_section_costs_the_history_not_the_views(tmp_path: Path) -> None:
    import orjson

    state = tmp_path / "state.json"
    store = MemoryLiveStore(state_file=state)
    await store.start(T0)
    await store.ingest("e", [_start("a", "v1", "x")], T0 + 1)
    await store.close(T0 + 2)
    document = orjson.loads(state.read_bytes())
    document["history"] = {"keys": [["e", "video_id"]]}
    state.write_bytes(orjson.dumps(document))
    again = MemoryLiveStore(state_file=state)
    await again.start(T0 + 10)
    assert (await again.counts("e", "video_id", "v1", T0 + 10)).views == 1
    detail = await HistoryReads(again.history, again).detail("e", "video_id", "v1", T0 + 10)
    assert (detail.views, detail.peak_views_at) == (1, T0 + 10)  # rebuilt from the views
    await again.close(T0 + 10)
