"""History kept in process memory (the memory live store's): one
:class:`~headcount.history.record.KeyHistory` per key that was live within the window.

* Keys with views are listed per environment, so "top ids now" looks only at the environment's
  live keys (a heap of them: O(live ids of the environment) per read, in memory).
* Keys at 0 views wait in the order they reached 0; :meth:`MemoryHistory.sweep` forgets those
  a whole window old, oldest first, stopping at the first younger one: O(expired).
* Memory: ~20 bytes per minute in which a key moved, plus ~250 bytes per key (bench: history).
* Saved in the live state file (:func:`history_document`, :func:`restore_history`).
"""

from __future__ import annotations

import base64
import heapq
from array import array
from typing import Any

from headcount.history.model import ENVIRONMENT
from headcount.history.reads import Ranked
from headcount.history.record import KeyHistory, expired, observe

__all__ = ["HistoryKey", "MemoryHistory", "history_document", "restore_history"]

HistoryKey = tuple[str, str, str]  # (environment id, id type, id)


class MemoryHistory:
    def __init__(self, retention: float) -> None:
        if retention <= 0:
            raise ValueError("retention must be positive")
        self._retention = retention
        self.records: dict[HistoryKey, KeyHistory] = {}
        # environment -> its keys with views now
        self._live: dict[str, dict[HistoryKey, KeyHistory]] = {}
        self._idle: dict[HistoryKey, None] = {}  # insertion order: when each reached 0

    @property
    def retention(self) -> float:
        return self._retention

    def __len__(self) -> int:
        return len(self.records)

    def clear(self) -> None:
        self.records.clear()
        self._live.clear()
        self._idle.clear()

    def observe(
        self, environment_id: str, id_type: str, id: str, views: int, viewers: int, now: float
    ) -> None:
        key = (environment_id, id_type, id)
        history = self.records.get(key)
        if history is None:
            history = self.records[key] = KeyHistory()
            observe(history, views, viewers, now, self._retention)
            self._place(key, history)
        else:
            self.observe_held(key, history, views, viewers, now)

    def observe_held(
        self, key: HistoryKey, history: KeyHistory, views: int, viewers: int, now: float
    ) -> None:
        """:meth:`observe` for a caller that holds the key's record (from :meth:`held`): no
        lookup. A record with views is never forgotten, so it stays the key's own."""
        if history.views == views and history.viewers == viewers:
            return
        was_live = history.views > 0
        observe(history, views, viewers, now, self._retention)
        if was_live is not (views > 0):  # it started or stopped being watched
            self._place(key, history)

    def held(self, environment_id: str, id_type: str, id: str) -> tuple[HistoryKey, KeyHistory]:
        """The key and its record, for :meth:`observe_held` (the key must have been observed)."""
        key = (environment_id, id_type, id)
        return key, self.records[key]

    def _place(self, key: HistoryKey, history: KeyHistory) -> None:
        environment_id = key[0]
        if history.views:
            self._idle.pop(key, None)
            self._live.setdefault(environment_id, {})[key] = history
        else:
            live = self._live.get(environment_id)
            if live is not None:
                live.pop(key, None)
                if not live:
                    del self._live[environment_id]
            self._idle.pop(key, None)
            self._idle[key] = None

    def sweep(self, now: float) -> int:
        """Forget the keys with nothing left inside the window; returns how many."""
        forgotten = 0
        while self._idle:
            key = next(iter(self._idle))
            history = self.records[key]
            if not expired(history, now, self._retention):
                break
            del self._idle[key]
            del self.records[key]
            forgotten += 1
        return forgotten

    async def record(
        self, environment_id: str, id_type: str, id: str, now: float
    ) -> KeyHistory | None:
        return self.records.get((environment_id, id_type, id))

    async def ranked(
        self, environment_id: str, id_type: str | None, limit: int, offset: int, now: float
    ) -> list[Ranked]:
        live = self._live.get(environment_id)
        if not live:
            return []
        items = (
            (kind, id_value, history)
            for (_, kind, id_value), history in live.items()
            if (kind == id_type if id_type is not None else kind != ENVIRONMENT)
        )
        best = heapq.nsmallest(
            offset + limit, items, key=lambda item: (-item[2].views, -item[2].viewers, item[1])
        )
        return best[offset:]


_FIELDS = (
    "views",
    "viewers",
    "changed_at",
    "peak_views",
    "peak_views_at",
    "peak_viewers",
    "peak_viewers_at",
    "base_views",
    "base_viewers",
)


def history_document(history: MemoryHistory) -> dict[str, Any]:
    """A copy of the history for the live state file, taken on the event loop (minutes as
    bytes: :func:`encode_history` makes it JSON, in the thread that writes the file)."""
    return {
        "retention": history.retention,
        "keys": [
            [*key, *(getattr(h, name) for name in _FIELDS), h.minutes.tobytes()]
            for key, h in history.records.items()
        ],
    }


def encode_history(document: Any) -> Any:
    """:func:`history_document`'s copy as JSON (minutes as base64); None stays None."""
    if document is None:
        return None
    return {
        "retention": document["retention"],
        "keys": [
            [*row[:-1], base64.b64encode(row[-1]).decode("ascii")] for row in document["keys"]
        ],
    }


def restore_history(history: MemoryHistory, document: Any) -> int:
    """Load a saved section into an empty history; returns how many keys. Raises ValueError
    (or KeyError, TypeError, IndexError) on a malformed one: the caller refuses the section."""
    if not isinstance(document, dict):
        raise ValueError("the history section is not an object")
    loaded = 0
    rows = sorted(document["keys"], key=lambda row: float(row[5]))  # by changed_at: idle order
    for row in rows:
        environment_id, id_type, id, *values, minutes = row
        if len(values) != len(_FIELDS):
            raise ValueError("a history row has the wrong number of fields")
        h = KeyHistory()
        for name, value in zip(_FIELDS, values, strict=True):
            setattr(h, name, value)
        h.minutes = array("I")
        h.minutes.frombytes(base64.b64decode(minutes, validate=True))
        key = (str(environment_id), str(id_type), str(id))
        history.records[key] = h
        history._place(key, h)
        loaded += 1
    return loaded
