"""The memory live store's counters, telling its history where they move.

:class:`RecordedCounters` is :class:`~headcount.stores.memory_counters.Counters` keyed by the
store's interned ``(environment, id type index, content)`` codes, plus each environment's own
key (id type index :data:`ENVIRONMENT_INDEX`, content 0), which every happening view counts
under. After a transition it hands each key it touched, with its new counts, to the
:class:`~headcount.history.memory.MemoryHistory` under the keys' strings (codes are released
and reused; history outlives them). Nothing here runs per heartbeat: only transitions do.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any, Final

from headcount.core.ids import ID_TYPES
from headcount.history.memory import HistoryKey, MemoryHistory, restore_history
from headcount.history.model import ENVIRONMENT
from headcount.history.record import KeyHistory
from headcount.stores.interning import Interner
from headcount.stores.memory_counters import CounterRecord, Counters

__all__ = ["ENVIRONMENT_INDEX", "CounterKey", "RecordedCounters", "SavedHistory", "counter_keys"]

log = logging.getLogger("headcount.live")

CounterKey = tuple[int, int, int]  # (environment code, index into ID_TYPES, content code)

ENVIRONMENT_INDEX: Final = len(ID_TYPES)
assert ID_TYPES == ("video_id", "asset_id", "playback_id", "live_stream_id")  # counter_keys
_TYPE_NAMES: Final = (*ID_TYPES, ENVIRONMENT)


def counter_keys(env: int, codes: tuple[int, int, int, int]) -> tuple[CounterKey, ...]:
    """The keys a happening view counts under: its content ids' (code 0: absent; ``codes`` in
    ID_TYPES order), and its environment's own."""
    video, asset, playback, live = codes  # unrolled: half the time of a comprehension
    keys = []
    if video:
        keys.append((env, 0, video))
    if asset:
        keys.append((env, 1, asset))
    if playback:
        keys.append((env, 2, playback))
    if live:
        keys.append((env, 3, live))
    keys.append((env, ENVIRONMENT_INDEX, 0))
    return tuple(keys)


class _RecordedRecord(CounterRecord):
    """A counter record that holds its key's history record once it has observed it, so a
    transition records history without looking the key's strings up."""

    __slots__ = ("history", "history_key")

    def __init__(self) -> None:
        super().__init__()
        self.history_key: HistoryKey | None = None
        self.history: KeyHistory | None = None


class SavedHistory:
    """The history section a restore read (None: the file had none)."""

    __slots__ = ("document",)

    def __init__(self) -> None:
        self.document: Any = None


class RecordedCounters(Counters[CounterKey]):
    record_type = _RecordedRecord

    def __init__(self, environments: Interner, contents: Interner, history: MemoryHistory) -> None:
        super().__init__()
        self._environments = environments
        self._contents = contents
        self.history = history
        self.recording = True  # off while a restore rebuilds counters (then reconciled)

    def transition_at(
        self,
        before: tuple[CounterKey, ...],
        before_viewer: int,
        after: tuple[CounterKey, ...],
        after_viewer: int,
        now: float,
    ) -> None:
        """:meth:`Counters.transition`, then the history of every key it touched (each with
        its counts after the whole transition)."""
        if not self.recording:
            self.transition(before, before_viewer, after, after_viewer)
            return
        observe = self._observe
        self.transition(
            before, before_viewer, after, after_viewer, lambda key, rec: observe(key, rec, now)
        )

    def _observe(self, key: CounterKey, counter: CounterRecord, now: float) -> None:
        """Tell the history the key's counts, as ``counter`` holds them now."""
        assert isinstance(counter, _RecordedRecord)
        views = counter.views
        viewers = counter.viewer_count
        history_key, history = counter.history_key, counter.history
        if history_key is not None and history is not None:
            self.history.observe_held(history_key, history, views, viewers, now)
            return
        environment_id, id_type, id_value = self._strings(key)
        self.history.observe(environment_id, id_type, id_value, views, viewers, now)
        if views:  # a counter at 0 is forgotten: nothing to hold
            counter.history_key, counter.history = self.history.held(
                environment_id, id_type, id_value
            )

    def _strings(self, key: CounterKey) -> HistoryKey:
        """The history key of a counter key: its codes' strings."""
        env, type_index, content = key
        environment_id = self._environments.value(env)
        assert environment_id is not None
        if type_index == ENVIRONMENT_INDEX:
            return environment_id, ENVIRONMENT, environment_id
        id_value = self._contents.value(content)
        assert id_value is not None
        return environment_id, _TYPE_NAMES[type_index], id_value

    @contextlib.contextmanager
    def rebuilding(self, now: float) -> Iterator[SavedHistory]:
        """While a restore rebuilds the counters from saved views: no recording; then the
        saved history (the state file's section, which the restore puts in the yielded
        holder) and :meth:`reconcile`."""
        saved = SavedHistory()
        for counter in self._records.values():  # the history is replaced: hold none of it
            assert isinstance(counter, _RecordedRecord)
            counter.history_key = counter.history = None
        self.recording = False
        try:
            yield saved
        finally:
            self.recording = True
        self.restore_history(saved.document, now)

    def restore_history(self, document: Any, now: float) -> None:
        """Load the state file's history section (if any and sound), then :meth:`reconcile`."""
        if document is not None:
            try:
                loaded = restore_history(self.history, document)
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                self.history.clear()
                log.error("history not restored from the state file: %r", exc)
            else:
                log.info("restored the history of %d keys", loaded)
        self.reconcile(now)

    def reconcile(self, now: float) -> None:
        """After a restore: every key's history holds its rebuilt counts (a key whose views all
        expired while the server was down goes to 0 now)."""
        code_of_env = self._environments.code
        code_of_content = self._contents.code
        for (environment_id, id_type, id_value), history in list(self.history.records.items()):
            env = code_of_env(environment_id)
            if id_type == ENVIRONMENT:
                key = None if env is None else (env, ENVIRONMENT_INDEX, 0)
            else:
                content = code_of_content(id_value)
                index = ID_TYPES.index(id_type) if id_type in ID_TYPES else None
                key = (
                    None
                    if env is None or content is None or index is None
                    else (env, index, content)
                )
            views, viewers = (0, 0) if key is None else self.counts(key)
            if (views, viewers) != (history.views, history.viewers):
                self.history.observe(environment_id, id_type, id_value, views, viewers, now)
        for key, counter in self._records.items():
            self._observe(key, counter, now)  # keys the file had no history for (and holds)
