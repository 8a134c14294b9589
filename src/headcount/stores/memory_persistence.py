"""How the memory live store gets its state onto disk and back: snapshot plus journal.

**Save** (:func:`save_state`, every ``save_interval`` and at shutdown). On the event loop: the
journal moves to its next generation, then the store's arrays are copied one partition at a
time, requests running in between (:func:`capture`: memory copies only, well
under a millisecond per partition). A change made meanwhile is in the new journal, and in the
copy too if its partition was copied after it: replaying a row is idempotent and the journal's
last record of a view is its latest state, so a start gets the same rows either way. Interned
codes keep their meaning until the copy is done (:meth:`Interner.hold`). In a thread: the old
journal is synced, the copy is written as the new snapshot (naming the new generation), and
the journals before it are deleted. Nothing that takes the GIL for long runs in the thread, so
requests keep being answered while the file is written (``python -m bench snapshot``).

**Start** (:func:`open_state`). The snapshot's rows are put back, then every journal from the
generation it names, oldest first, each record replacing the view's row. Rows past the
liveness window are left out. **Last-seen after a restart**: a row keeps the later of its
snapshot time and its latest journal record; heartbeats since then were not journaled, so a
view heard only through heartbeats since the snapshot counts from its snapshot time (it may
expire up to ``save_interval`` early if it says nothing more, never late; a playing view
posts every 10 s and is refreshed at once). An unreadable snapshot is logged and skipped (the
journals still replay over an empty store); a torn journal tail is ignored
(:mod:`headcount.stores.memory_journal`). When journals were replayed, the store saves at once,
so the next start reads one snapshot again.

A second process must never write these files: ``headcount serve`` holds the state file's
lock (``cli/claim.py``), which covers the snapshot, its temporary file and every journal, all
named from the state file.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from headcount.core.tracker import ViewState
from headcount.history.memory import encode_history, history_document
from headcount.stores.memory_journal import (
    Journal,
    JournalRecord,
    delete_journals,
    journal_generations,
    read_journal,
    retire,
)
from headcount.stores.memory_snapshot import (
    Snapshot,
    SnapshotError,
    read_snapshot,
    snapshot_table,
    write_snapshot,
)

if TYPE_CHECKING:
    from headcount.stores.memory import MemoryLiveStore

__all__ = ["open_state", "save_state"]

log = logging.getLogger("headcount.live")


async def capture(store: MemoryLiveStore, now: float, journal: int) -> Snapshot:
    """A copy of the whole state, one partition at a time (array copies only), requests
    running in between; codes keep their meaning until the strings are copied too."""
    interners = (store.environments, store.contents)
    for interner in interners:
        interner.hold()
    try:
        partitions = []
        for table in store.tables:
            partitions.append(snapshot_table(table))
            await asyncio.sleep(0)
        return Snapshot(
            now,
            journal,
            store.environments.values(),
            store.contents.values(),
            partitions,
            history=history_document(store.history),  # copies; encoded in the thread
        )
    finally:
        for interner in interners:
            interner.unhold()


def restore_row(store: MemoryLiveStore, saved: JournalRecord, now: float) -> bool:
    """Put back one saved or journaled row, replacing the view's earlier row (keeping the
    later last-seen time); False when it is past the window (and so left out)."""
    key, last_seen = saved.key, saved.last_seen
    table = store.tables[key % store.partitions]
    row = table.index.get(key)
    if row is not None:
        last_seen = max(last_seen, table.last_seen[row])
        store.remove_view(table, key, row, now)
    if now - last_seen > store.liveness_window:
        return False
    store.add_view(
        table, key, last_seen, saved.environment_id, saved.state, saved.highest, saved.seen
    )
    return True


def _restore_snapshot(store: MemoryLiveStore, snapshot: Snapshot, now: float) -> int:
    environments, contents = snapshot.environments, snapshot.contents
    restored = 0
    for part in snapshot.partitions:
        c = part.columns
        keys, last_seen, env = c["key"], c["last_seen"], c["env"]
        video, asset, playback, live = c["video"], c["asset"], c["playback"], c["live"]
        viewer, flags, highest, seen = c["viewer"], c["flags"], c["highest"], c["seen"]
        for row in part.rows_in_use():
            environment_id = environments[env[row]]
            if environment_id is None:
                continue
            state = ViewState(
                flags[row],
                contents[video[row]],
                contents[asset[row]],
                contents[playback[row]],
                contents[live[row]],
                viewer[row],
            )
            saved = JournalRecord(
                keys[row], last_seen[row], environment_id, state, highest[row], seen[row]
            )
            restored += restore_row(store, saved, now)
    return restored


async def open_state(
    store: MemoryLiveStore, state_file: Path, now: float
) -> tuple[Journal, int, Any]:
    """Restore the snapshot and replay the journals after it; the journal to write from now
    on, how many journal records were replayed, and the snapshot's history section (None
    without one: history is saved with each snapshot, not journaled)."""
    try:
        snapshot = await asyncio.to_thread(read_snapshot, state_file)
    except (OSError, SnapshotError) as exc:
        # Refusing to start would turn a bad file into an outage; counts rebuild themselves
        # within one liveness window from live traffic.
        log.error("live state not restored from %s: %s", state_file, exc)
        snapshot = None
    restored = 0 if snapshot is None else _restore_snapshot(store, snapshot, now)
    first = 0 if snapshot is None else snapshot.journal
    generations = await asyncio.to_thread(journal_generations, state_file)
    replayed = 0
    spent = []  # journals nothing needs any more: in the snapshot already, or empty
    for generation in generations:
        if generation < first:
            spent.append(generation)  # left over from a save cut short before its deletes
            continue
        try:
            records = await asyncio.to_thread(read_journal, state_file, generation)
        except OSError as exc:
            log.error("journal generation %d not replayed: %s", generation, exc)
            continue
        if not records:
            spent.append(generation)
        for r in records:
            restore_row(store, r, now)
            replayed += 1
    await asyncio.to_thread(delete_journals, state_file, spent)
    for table in store.tables:
        table.relink()  # restored in file order; the sweeper needs last-seen order
    if snapshot is not None or replayed:
        log.info(
            "restored %d live views from %s and replayed %d journal records",
            restored,
            state_file,
            replayed,
        )
    state_file.parent.mkdir(parents=True, exist_ok=True)
    journal = Journal(state_file, max([first, *generations], default=0) + 1)
    return journal, replayed, None if snapshot is None else snapshot.history


def _write(state_file: Path, snapshot: Snapshot, previous: int | None) -> None:
    """In a thread: the previous journal to disk, the snapshot, then the journals it holds
    are deleted (kept if the snapshot could not be written: a start still replays them)."""
    snapshot = dataclasses.replace(snapshot, history=encode_history(snapshot.history))
    if previous is None:
        write_snapshot(state_file, snapshot)
        retire(state_file, None, snapshot.journal)
        return
    try:
        os.fdatasync(previous)
        write_snapshot(state_file, snapshot)
    except BaseException:
        os.close(previous)
        raise
    retire(state_file, previous, snapshot.journal)


async def save_state(
    store: MemoryLiveStore, state_file: Path, journal: Journal | None, now: float
) -> None:
    if journal is None:  # not started (a store used without start(), in tests and tools)
        generations = await asyncio.to_thread(journal_generations, state_file)
        previous, generation = None, max(generations, default=0) + 1
    else:
        previous, generation = await journal.rotate()
    try:
        snapshot = await capture(store, now, generation)
    except BaseException:
        if previous is not None:
            os.close(previous)  # the journal stays: the next start replays it
        raise
    await asyncio.to_thread(_write, state_file, snapshot, previous)
