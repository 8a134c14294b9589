"""What only the memory LiveStore does: its settings, its state file, its wiring. How it counts is
the port's contract, run over every adapter in ``tests/stores/test_live_contract_*.py``."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from headcount.core.events import ViewEvent
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
    assert MemoryLiveStore.from_settings(settings.replace(state_file="")).state_file is None
    with pytest.raises(ValueError, match="partitions"):  # the partition count is passed on
        MemoryLiveStore.from_settings(settings.replace(partitions=0))
    # The settings are the ones it counts by: the window, and paused views counting.
    await store.ingest(ENV, [start("v1"), ev("v1", "pause", 2)], T0)
    assert await video(store) == (1, 1)
    assert await store.sweep(T0 + 42.0) == 0
    assert await store.sweep(T0 + 42.5) == 1


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
    # The snapshot, and the (empty) journal the restored store writes from now on.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["live.json", "live.json.journal-000002"]


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


async def test_a_truncated_or_damaged_file_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "live.json"
    store = MemoryLiveStore(state_file=state)
    await store.ingest(ENV, [start("v1")], T0)
    await store.save(T0)
    whole = state.read_bytes()
    state.write_bytes(whole[:-3])  # a copy cut short (the file itself is renamed whole)
    with caplog.at_level(logging.ERROR, logger="headcount.live"):
        await MemoryLiveStore(state_file=state).start(T0)
    assert "cut short" in caplog.text
    damaged = bytearray(whole)
    damaged[10] ^= 1  # a bit flipped in the first partition's columns
    state.write_bytes(bytes(damaged))
    with caplog.at_level(logging.ERROR, logger="headcount.live"):
        await MemoryLiveStore(state_file=state).start(T0)
    assert "checksum does not match" in caplog.text


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
            "journal_fsync_interval": 0.25,
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
        assert jobs["live-journal-fsync"].interval == 0.25
        await store.ingest(ENV, [start("v1")], T0)
        await jobs["live-sweep"].run(T0 + 31)
        assert store.updated_at == T0 + 31
        assert await video(store) == (0, 0)
        await store.ingest(ENV, [start("v2")], T0 + 32)
        await jobs["live-save"].run(T0 + 32)
        assert (tmp_path / "live.json").exists()
        await jobs["live-journal-fsync"].run(T0 + 33)  # not started: nothing to sync, no error
    finally:
        runtime.control.close()
