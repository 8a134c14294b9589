"""Memory adapter of the LiveStore port: one process, partitioned, counters by transitions.

* Views live in ``partitions`` :class:`~headcount.stores.view_table.ViewTable` s, chosen by
  ``view_key(environment, view_id) mod P``; a heartbeat touches only its partition's row (a
  dict lookup, a dedupe check and a float store).
* The tracker (:mod:`headcount.core.tracker`) decides what an event does to a view; this store
  turns the change into counter transitions (:mod:`headcount.stores.memory_counters`) keyed by
  ``(environment code, id type index, content code)``.
* Liveness: a view silent longer than the window is gone, whether a sweep removed it already or
  an event finds it so (the event then starts a fresh view: first-seen rules apply). The
  sweeper removes each such view, with its transitions, exactly once, and marks ``updated_at``.
  Each partition keeps its views in last-seen order (:class:`ViewTable`'s list), so a sweep
  looks only at the views it removes plus one live view per partition: O(expired), not a scan.
  After the clock steps back a view may wait behind newer ones and go up to that step late;
  never early.
* Persistence (:mod:`headcount.stores.memory_persistence`): a snapshot every ``save_interval``
  and on :meth:`close`, and between snapshots a journal of every change that matters, written
  before :meth:`ingest_now` returns; :meth:`start` puts both back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from headcount.core.events import ViewEvent
from headcount.core.identity import view_key
from headcount.core.ids import ID_TYPES
from headcount.core.tracker import (
    ENDED,
    NEW_VIEW,
    SEQUENCE_MEMORY,
    STATE_EVENTS,
    ViewState,
    accept_sequence,
    event_effects,
    is_happening,
    step,
    step_flags,
)
from headcount.history.memory import MemoryHistory
from headcount.settings import Settings
from headcount.stores.interning import Interner
from headcount.stores.live import Counts, IngestResult, LiveStats
from headcount.stores.memory_history import RecordedCounters, counter_keys
from headcount.stores.memory_journal import Journal, JournalRecord, encode_record
from headcount.stores.memory_persistence import open_state, save_state
from headcount.stores.view_table import NIL, ViewTable

__all__ = ["MemoryLiveStore"]

Codes = tuple[int, int, int, int]

_ID_TYPE_INDEX: Final[dict[str, int]] = {name: i for i, name in enumerate(ID_TYPES)}
_ZERO: Final[Counts] = Counts(0, 0)
_SEEN_MASK: Final[int] = (1 << SEQUENCE_MEMORY) - 1
# The result when every event was new (nearly every batch), built once per count.
_new_tuple = tuple.__new__
_ALL_NEW: Final = tuple(IngestResult(applied=n, duplicates=0) for n in range(256))


class MemoryLiveStore:
    def __init__(
        self,
        *,
        liveness_window: float = 60.0,
        count_paused: bool = False,
        partitions: int = 16,
        state_file: str | Path | None = None,
        history_retention: float = 86_400.0,
    ) -> None:
        if partitions < 1:
            raise ValueError("partitions must be at least 1")
        if liveness_window <= 0:
            raise ValueError("liveness_window must be positive")
        self.liveness_window = liveness_window
        self.count_paused = count_paused
        self.state_file = Path(state_file) if state_file else None
        self.partitions = partitions
        row_numbers: list[int] = []  # shared by the partitions (see ViewTable)
        self.tables = [ViewTable(row_numbers) for _ in range(partitions)]
        self.environments = Interner()
        self.contents = Interner()
        self.history = MemoryHistory(history_retention)
        self._counters = RecordedCounters(self.environments, self.contents, self.history)
        self._happening = 0
        self._updated_at = 0.0
        self.last_sweep_visited = 0  # rows the last sweep looked at: removed + ≤ 1 per partition
        self._save_lock = asyncio.Lock()
        self._journal: Journal | None = None  # open from start() to close()

    @classmethod
    def from_settings(cls, settings: Settings) -> MemoryLiveStore:
        return cls(
            liveness_window=settings.liveness_window,
            count_paused=settings.count_paused,
            partitions=settings.partitions,
            state_file=settings.state_file or None,
            history_retention=settings.history_retention,
        )

    # -- reads ---------------------------------------------------------------------------

    @property
    def updated_at(self) -> float:
        return self._updated_at

    @property
    def ready(self) -> bool:
        return True

    def immediate(self) -> MemoryLiveStore:
        return self  # memory never waits

    async def counts(self, environment_id: str, id_type: str, id_value: str, now: float) -> Counts:
        return self.counts_now(environment_id, id_type, id_value)

    def counts_now(self, environment_id: str, id_type: str, id_value: str) -> Counts:
        """:meth:`counts` without the coroutine (the counters are always up to date)."""
        env = self.environments.code(environment_id)
        type_index = _ID_TYPE_INDEX.get(id_type)
        content = self.contents.code(id_value)
        if env is None or type_index is None or content is None:
            return _ZERO
        views, viewers = self._counters.counts((env, type_index, content))
        return Counts(views, viewers) if views else _ZERO

    async def stats(self) -> LiveStats:
        return LiveStats(views=sum(len(t) for t in self.tables), happening=self._happening)

    # -- events --------------------------------------------------------------------------

    async def ingest(
        self, environment_id: str, events: Sequence[ViewEvent], now: float
    ) -> IngestResult:
        return self.ingest_now(environment_id, events, now)

    def ingest_now(
        self, environment_id: str, events: Sequence[ViewEvent], now: float
    ) -> IngestResult:
        """:meth:`ingest` without the coroutine: memory never waits."""
        window = self.liveness_window
        partitions = self.partitions
        tables = self.tables
        contents = self.contents.by_code()
        duplicates = 0
        last_view_id = None
        key = 0
        table = tables[0]
        row = 0
        for event in events:
            view_id = event.view_id
            if view_id != last_view_id:
                # A batch is mostly one view's events: its row is found, timed and moved to
                # the tail once. The events after it find it there, seen at the same ``now``.
                last_view_id = view_id
                key = view_key(environment_id, view_id)
                table = tables[key % partitions]
                found = table.index.get(key)
                if found is not None and now - table.last_seen[found] > window:
                    self.remove_view(table, key, found, now)  # silent too long: gone, swept or not
                    found = None
                if found is None:
                    row = self._insert(table, key, environment_id, event, now)
                    continue
                row = found
                table.last_seen[row] = now
                if row != table.tail:
                    table.touch(row)
            sequence = event.sequence
            if sequence is not None:
                seen = table.seen[row]
                shift = sequence - table.highest[row]
                if seen and 0 < shift < SEQUENCE_MEMORY:
                    # The next numbers of a known view (nearly every event): accept_sequence's
                    # first branch, inline.
                    table.highest[row] = sequence
                    table.seen[row] = ((seen << shift) | 1) & _SEEN_MASK
                else:
                    fresh, highest, seen = accept_sequence(table.highest[row], seen, sequence)
                    if not fresh:
                        duplicates += 1
                        continue
                    table.highest[row] = highest
                    table.seen[row] = seen
            flags = table.flags[row]
            if flags & ENDED:
                continue
            if (
                event.playback_id is None
                and event.source_url is None
                and event.viewer_user_id is None
                and event.mux_viewer_id is None
            ):
                # Only content ids and flags can change (step's rules): most events carry no
                # content id, or repeat the ones kept (mux-embed sends video_id in each).
                video_id, asset_id, live_stream_id = (
                    event.video_id,
                    event.asset_id,
                    event.live_stream_id,
                )
                if (
                    (video_id is None or video_id == contents[table.video[row]])
                    and (asset_id is None or asset_id == contents[table.asset[row]])
                    and (live_stream_id is None or live_stream_id == contents[table.live[row]])
                ):
                    if not (event.starts or event.name in STATE_EVENTS):
                        continue  # nothing can change
                    if step_flags(flags, event_effects(event)) == flags:
                        continue  # a play of a playing view, a pause of a paused one...
            before = self._state(table, row)
            after = step(before, event)
            if after != before:
                self._change(table, row, before, after, now)
        journal = self._journal
        if journal is not None and journal.pending:
            journal.write()  # before the collector answers: a killed process loses none of it
        if not duplicates and len(events) < len(_ALL_NEW):
            return _ALL_NEW[len(events)]
        return IngestResult(applied=len(events) - duplicates, duplicates=duplicates)

    async def sweep(self, now: float) -> int:
        """Remove the views silent longer than the window, oldest first in each partition,
        stopping at the first live one (see the module docstring for a clock stepping back)."""
        window = self.liveness_window
        removed = visited = 0
        for table in self.tables:
            last_seen, keys = table.last_seen, table.key
            row = table.head
            while row != NIL:
                visited += 1
                if now - last_seen[row] <= window:
                    break
                self.remove_view(table, keys[row], row, now)  # unlinks it: the next one is the head
                removed += 1
                row = table.head
            await asyncio.sleep(0)  # one partition at a time: requests run in between
        self.last_sweep_visited = visited
        self.history.sweep(now)
        self._updated_at = now
        return removed

    # -- transitions ---------------------------------------------------------------------

    def _state(self, table: ViewTable, row: int) -> ViewState:
        values = self.contents.by_code()
        return _new_tuple(  # not ViewState(...): one Python call less
            ViewState,
            (
                table.flags[row],
                values[table.video[row]],
                values[table.asset[row]],
                values[table.playback[row]],
                values[table.live[row]],
                table.viewer[row],
            ),
        )

    def _insert(
        self, table: ViewTable, key: int, environment_id: str, event: ViewEvent, now: float
    ) -> int:
        state = step(NEW_VIEW, event, first_seen=True)
        highest, seen = event.sequence or 0, 0 if event.sequence is None else 1
        row = self.add_view(table, key, now, environment_id, state, highest, seen)
        if self._journal is not None:
            record = JournalRecord(key, now, environment_id, state, highest, seen)
            self._journal.append(encode_record(record))
        return row

    def add_view(
        self,
        table: ViewTable,
        key: int,
        last_seen: float,
        environment_id: str,
        state: ViewState,
        highest: int,
        seen: int,
    ) -> int:
        """A new view's row (its counters moved if it is happening)."""
        env = self.environments.acquire(environment_id)
        acquire = self.contents.acquire
        codes = (
            acquire(state.video_id),
            acquire(state.asset_id),
            acquire(state.playback_id),
            acquire(state.live_stream_id),
        )
        row = table.insert(key, last_seen, env, codes, state.viewer, state.flags, highest, seen)
        if is_happening(state.flags, self.count_paused):
            self._counters.transition_at((), 0, counter_keys(env, codes), state.viewer, last_seen)
            self._happening += 1
        return row

    def _change(
        self, table: ViewTable, row: int, before: ViewState, after: ViewState, now: float
    ) -> None:
        env = table.env[row]
        old_codes = table.ids(row)
        new_codes = (
            old_codes if after[1:5] == before[1:5] else self._recode(old_codes, before, after)
        )
        was = is_happening(before.flags, self.count_paused)
        is_now = is_happening(after.flags, self.count_paused)
        if was or is_now:
            self._counters.transition_at(
                counter_keys(env, old_codes) if was else (),
                before.viewer,
                counter_keys(env, new_codes) if is_now else (),
                after.viewer,
                now,
            )
        if new_codes is not old_codes:
            release = self.contents.release
            for old, new in zip(old_codes, new_codes, strict=True):
                if old != new:
                    release(old)
            table.set_ids(row, new_codes)
        table.flags[row] = after.flags
        table.viewer[row] = after.viewer
        self._happening += is_now - was
        if self._journal is not None:
            self._journal.append(
                encode_record(
                    JournalRecord(
                        table.key[row],
                        table.last_seen[row],
                        self.environments.value(env) or "",
                        after,
                        table.highest[row],
                        table.seen[row],
                    )
                )
            )

    def _recode(self, codes: Codes, before: ViewState, after: ViewState) -> Codes:
        """Codes for ``after``'s content ids, acquiring only the ones that changed."""
        acquire = self.contents.acquire
        return (
            codes[0] if after.video_id == before.video_id else acquire(after.video_id),
            codes[1] if after.asset_id == before.asset_id else acquire(after.asset_id),
            codes[2] if after.playback_id == before.playback_id else acquire(after.playback_id),
            codes[3]
            if after.live_stream_id == before.live_stream_id
            else acquire(after.live_stream_id),
        )

    def remove_view(self, table: ViewTable, key: int, row: int, now: float) -> None:
        env = table.env[row]
        codes = table.ids(row)
        if is_happening(table.flags[row], self.count_paused):
            self._counters.transition_at(counter_keys(env, codes), table.viewer[row], (), 0, now)
            self._happening -= 1
        release = self.contents.release
        for code in codes:
            release(code)
        self.environments.release(env)
        table.delete(key, row)

    # -- persistence (memory_persistence.py) ----------------------------------------------

    async def start(self, now: float) -> None:
        if self.state_file is not None:
            with self._counters.rebuilding(now) as saved:  # counters rebuild; history reconciles
                self._journal, replayed, saved.document = await open_state(
                    self, self.state_file, now
                )
            if replayed:
                await self.save(now)  # compacted: the replayed journals are deleted
        self._updated_at = now

    async def close(self, now: float) -> None:
        await self.save(now)
        if self._journal is not None:
            await self._journal.close()
            self._journal = None

    async def save(self, now: float) -> None:
        if self.state_file is not None:
            async with self._save_lock:
                await save_state(self, self.state_file, self._journal, now)

    async def sync_journal(self, now: float) -> None:
        """Force the journal to disk (the ``journal_fsync_interval`` timer)."""
        if self._journal is not None:
            await self._journal.sync()
