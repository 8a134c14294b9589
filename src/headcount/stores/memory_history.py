"""The memory live store's counters, telling its history where they move.

:class:`RecordedCounters` is :class:`~headcount.stores.memory_counters.Counters` keyed by the
store's interned ``(environment, id type index, content)`` codes, plus each environment's own
key (id type index :data:`ENVIRONMENT_INDEX`, content 0), which every happening view counts
under. After a transition it hands each key it touched, with its new counts, to the
:class:`~headcount.history.memory.MemoryHistory` under the keys' strings (codes are released
and reused; history outlives them). Nothing here runs per heartbeat: only transitions do.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from headcount.core.counters import counter_changes
from headcount.core.ids import ID_TYPES
from headcount.history.memory import MemoryHistory, restore_history
from headcount.history.model import ENVIRONMENT
from headcount.stores.interning import Interner
from headcount.stores.memory_counters import Counters

__all__ = ["ENVIRONMENT_INDEX", "CounterKey", "RecordedCounters"]

log = logging.getLogger("headcount.live")

CounterKey = tuple[int, int, int]  # (environment code, index into ID_TYPES, content code)

ENVIRONMENT_INDEX: Final = len(ID_TYPES)
_TYPE_NAMES: Final = (*ID_TYPES, ENVIRONMENT)


class RecordedCounters(Counters[CounterKey]):
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
        """:meth:`Counters.transition`, then the history of every key it touched."""
        removed, added = counter_changes(before, before_viewer, after, after_viewer)
        for key in removed:
            self.remove(key, before_viewer)
        for key in added:
            self.add(key, after_viewer)
        if self.recording:
            for key in removed:
                self._record(key, now)
            for key in added:
                if key not in removed:
                    self._record(key, now)

    def _record(self, key: CounterKey, now: float) -> None:
        env, type_index, content = key
        environment_id = self._environments.value(env)
        assert environment_id is not None
        views, viewers = self.counts(key)
        if type_index == ENVIRONMENT_INDEX:
            self.history.observe(environment_id, ENVIRONMENT, environment_id, views, viewers, now)
            return
        id_value = self._contents.value(content)
        assert id_value is not None
        self.history.observe(environment_id, _TYPE_NAMES[type_index], id_value, views, viewers, now)

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
        for key in list(self):
            self._record(key, now)  # keys the file had no history for (observe skips the same)
