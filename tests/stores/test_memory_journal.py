"""The memory live store's journal: records round-trip, a torn tail is ignored, a crash between
snapshots loses no change that matters, replay is compacted into the next snapshot, and a save
cut short keeps the journals it needed. Time is an argument (``now``); "a crash" is a store
dropped without ``close()`` (its journal already holds what a SIGKILL would leave: the records
are written before ``ingest`` returns)."""

from __future__ import annotations

import asyncio
import logging
import resource
import signal
from pathlib import Path

import pytest

from headcount.core.identity import view_key
from headcount.core.tracker import ENDED, PAUSED, STARTED, ViewState
from headcount.stores.interning import Interner
from headcount.stores.live import LiveStats
from headcount.stores.memory import MemoryLiveStore
from headcount.stores.memory_journal import (
    JournalRecord,
    decode_records,
    encode_record,
    journal_generations,
    journal_path,
)
from tests.stores.test_memory_live import ENV, T0, ev, start, video

pytestmark = pytest.mark.anyio

Row = tuple[float, str | None, ViewState, int, int]


def rows(store: MemoryLiveStore) -> dict[int, Row]:
    """Every view the store holds: key -> (last seen, environment, state, highest, seen)."""
    out = {}
    for table in store.tables:
        for key, row in table.index.items():
            out[key] = (
                table.last_seen[row],
                store.environments.value(table.env[row]),
                store._state(table, row),
                table.highest[row],
                table.seen[row],
            )
    return out


def names(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_a_record_round_trips_every_field() -> None:
    state = ViewState(STARTED | PAUSED, "vidé", None, "PB", "ls-1", 2**63 + 5)
    data = encode_record(JournalRecord(2**60 + 7, T0 + 0.25, "env-ü", state, 70000, 2**64 - 1))
    data += encode_record(JournalRecord(1, T0, "e", ViewState(0, None, None, None, None, 0), 0, 0))
    records, ignored = decode_records(data)
    assert ignored == 0
    first, second = records
    assert (first.key, first.last_seen, first.environment_id) == (2**60 + 7, T0 + 0.25, "env-ü")
    assert (first.state, first.highest, first.seen) == (state, 70000, 2**64 - 1)
    assert second.state == ViewState(0, None, None, None, None, 0)


@pytest.mark.parametrize("cut", [1, 5, 9, 30])
def test_a_torn_last_record_is_ignored(cut: int) -> None:
    state = ViewState(STARTED, "vid", None, None, None, 0)
    whole = [encode_record(JournalRecord(k, T0, ENV, state, 1, 1)) for k in (1, 2, 3)]
    data = b"".join(whole)
    records, ignored = decode_records(data[:-cut])
    assert [r.key for r in records] == [1, 2]
    assert ignored == len(whole[-1]) - cut
    damaged = bytearray(data)
    damaged[-3] ^= 0x40  # a flipped bit in the last payload: its CRC no longer matches
    assert [r.key for r in decode_records(bytes(damaged))[0]] == [1, 2]


async def test_a_crash_between_snapshots_loses_no_change_that_matters(tmp_path: Path) -> None:
    state = tmp_path / "live.json"
    first = MemoryLiveStore(state_file=state, partitions=4)
    await first.start(T0)
    await first.ingest(ENV, [start("v1", viewer="c1"), start("v2", viewer="c1")], T0)
    await first.ingest(ENV, [start("v3", viewer="c3"), ev("v4", "playerready", 1)], T0)
    await first.save(T0 + 1)
    # After the snapshot: a start, a pause, an end, a view first seen through a heartbeat, a
    # viewer identity arriving late, a content id change, and heartbeats that change nothing.
    await first.ingest(ENV, [start("v5", viewer="c5")], T0 + 2)
    await first.ingest(ENV, [ev("v1", "pause", 2), ev("v3", "viewend", 2)], T0 + 3)
    await first.ingest(ENV, [ev("v6", "hb", 4, video_id="vid")], T0 + 4)
    await first.ingest(ENV, [ev("v6", "hb", 5, mux_viewer_id="c5")], T0 + 5)
    await first.ingest(ENV, [ev("v2", "hb", 2, video_id="other")], T0 + 6)
    await first.ingest(ENV, [ev("v5", "hb", 2)], T0 + 7)
    expected = rows(first)
    before = (await video(first), await video(first, "other"), await first.stats())
    assert before == ((2, 1), (1, 1), LiveStats(views=6, happening=3))
    del first  # killed: no close(), no final save

    second = MemoryLiveStore(state_file=state, partitions=4)
    await second.start(T0 + 8)
    assert (await video(second), await video(second, "other"), await second.stats()) == before
    restored = rows(second)
    key_v5 = view_key(ENV, "v5")
    # Heartbeat-only changes are not journaled: v5 keeps the time (and dedupe memory) of its
    # last journaled change, T0 + 2; every other row came back exactly.
    assert restored[key_v5] == (T0 + 2, ENV, expected[key_v5][2], 1, 1)
    del restored[key_v5], expected[key_v5]
    assert restored == expected
    assert any(r[2].flags & ENDED for r in restored.values())  # the tombstone came back
    # Replayed journals are compacted at once: one snapshot, one fresh journal (the start
    # opened generation 3 and its save moved on to 4).
    assert names(tmp_path) == ["live.json", "live.json.journal-000004"]
    # The restored dedupe memory recognises the pause re-sent across the crash.
    assert (await second.ingest(ENV, [ev("v1", "pause", 2)], T0 + 9)).duplicates == 1


async def test_journaled_rows_past_the_window_are_left_out(tmp_path: Path) -> None:
    state = tmp_path / "live.json"
    first = MemoryLiveStore(state_file=state, liveness_window=60)
    await first.start(T0)
    await first.ingest(ENV, [start("old", viewer="c1")], T0)
    await first.ingest(ENV, [start("new", viewer="c2")], T0 + 50)
    await first.ingest(ENV, [ev("old", "hb", 2)], T0 + 55)  # not journaled: T0 stays its time
    del first
    second = MemoryLiveStore(state_file=state, liveness_window=60)
    await second.start(T0 + 100)
    assert await second.stats() == LiveStats(views=1, happening=1)
    assert await video(second) == (1, 1)


async def test_a_torn_journal_does_not_stop_the_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "live.json"
    first = MemoryLiveStore(state_file=state)
    await first.start(T0)
    await first.ingest(ENV, [start("v1", viewer="c1")], T0)
    await first.ingest(ENV, [start("v2", viewer="c2")], T0)
    del first
    (generation,) = journal_generations(state)
    path = journal_path(state, generation)
    path.write_bytes(path.read_bytes()[:-7])  # the last write was cut short by the crash
    second = MemoryLiveStore(state_file=state)
    with caplog.at_level(logging.WARNING, logger="headcount.live"):
        await second.start(T0 + 1)
    assert "cut short or damaged" in caplog.text
    assert await video(second) == (1, 1)


async def test_a_save_cut_short_keeps_the_journals_it_needed(tmp_path: Path) -> None:
    state = tmp_path / "live.json"
    first = MemoryLiveStore(state_file=state)
    await first.start(T0)
    await first.ingest(ENV, [start("v1", viewer="c1")], T0)
    await first.save(T0)
    await first.ingest(ENV, [start("v2", viewer="c2")], T0 + 1)
    blocker = state.with_name("live.json.tmp")
    blocker.mkdir()  # the snapshot's temporary file cannot be created: the save fails
    with pytest.raises(IsADirectoryError):
        await first.save(T0 + 2)
    await first.ingest(ENV, [start("v3", viewer="c3")], T0 + 3)  # into the next generation
    del first
    blocker.rmdir()
    assert journal_generations(state) == [2, 3]
    second = MemoryLiveStore(state_file=state)
    await second.start(T0 + 4)
    assert await video(second) == (3, 3)
    assert names(tmp_path) == ["live.json", "live.json.journal-000005"]  # 4 opened, 5 saved


async def test_a_clean_stop_leaves_a_snapshot_and_an_empty_journal(tmp_path: Path) -> None:
    state = tmp_path / "live.json"
    store = MemoryLiveStore(state_file=state)
    await store.start(T0)
    await store.ingest(ENV, [start("v1")], T0)
    await store.close(T0 + 1)
    assert names(tmp_path) == ["live.json", "live.json.journal-000002"]
    assert journal_path(state, 2).stat().st_size == 0
    again = MemoryLiveStore(state_file=state)
    await again.start(T0 + 2)
    assert await video(again) == (1, 1)
    assert names(tmp_path) == ["live.json", "live.json.journal-000003"]


async def test_changes_made_while_a_save_copies_partitions_come_back(tmp_path: Path) -> None:
    state = tmp_path / "live.json"
    first = MemoryLiveStore(state_file=state, partitions=8)
    await first.start(T0)
    await first.ingest(
        ENV, [start(f"v{i}", video=f"only-{i}", viewer=f"c{i}") for i in range(40)], T0
    )
    saving = asyncio.create_task(first.save(T0 + 1))
    await asyncio.sleep(0)  # the save has rotated the journal and copied one partition
    assert not saving.done()
    # Meanwhile: views end, views move to another video (the old video ids lose their last
    # user, so their codes would be free for the next new id) and views start on new ids.
    await first.ingest(ENV, [ev(f"v{i}", "viewend", 2) for i in range(0, 40, 3)], T0 + 1)
    await first.ingest(
        ENV, [ev(f"v{i}", "hb", 2, video_id=f"moved-{i}") for i in range(1, 40, 3)], T0 + 1
    )
    await first.ingest(
        ENV, [start(f"n{i}", video=f"new-{i}", viewer="c0") for i in range(20)], T0 + 1
    )
    await saving
    expected = rows(first)
    del first
    second = MemoryLiveStore(state_file=state, partitions=8)
    await second.start(T0 + 2)
    assert rows(second) == expected
    for i in range(40):
        assert await video(second, f"only-{i}") == ((1, 1) if i % 3 == 2 else (0, 0))
        assert await video(second, f"moved-{i}") == ((1, 1) if i % 3 == 1 else (0, 0))
    assert await video(second, "new-7") == (1, 1)


def test_a_code_released_during_a_hold_keeps_its_value_until_unhold() -> None:
    interner = Interner()
    a = interner.acquire("a")
    interner.hold()
    interner.release(a)
    assert interner.acquire("b") != a  # not reused while held
    assert interner.values()[a] == "a"
    assert interner.acquire("a") == a  # taken up again: the same code
    interner.release(a)  # gone twice during the hold: forgotten once
    interner.unhold()
    assert interner.values()[a] is None and interner.code("a") is None
    assert interner.acquire("c") == a  # free again after the hold


async def test_a_journal_that_cannot_be_written_is_logged_and_restarted_by_the_next_save(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    state = tmp_path / "live.json"
    store = MemoryLiveStore(state_file=state)
    await store.start(T0)
    await store.ingest(ENV, [start("v1", viewer="c1")], T0)
    journal = journal_path(state, journal_generations(state)[-1])
    size = journal.stat().st_size
    # A real write error: the file may not grow past its size (as on a full disk, EFBIG
    # instead of ENOSPC); the signal the kernel sends with it is ignored, as by a server.
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        with caplog.at_level(logging.ERROR, logger="headcount.live"):
            result = await store.ingest(ENV, [start("v2", viewer="c2")], T0 + 1)
            await store.ingest(ENV, [start("v3", viewer="c3")], T0 + 2)  # not even tried
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert result.applied == 1 and await video(store) == (3, 3)  # counting goes on
    assert caplog.text.count("not written") == 1
    await store.save(T0 + 3)  # the snapshot holds everything; a fresh journal starts
    await store.ingest(ENV, [start("v4", viewer="c4")], T0 + 4)
    del store
    restored = MemoryLiveStore(state_file=state)
    await restored.start(T0 + 5)
    assert await video(restored) == (4, 4)
