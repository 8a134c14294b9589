"""The memory live store's counters, kept by transitions only (DESIGN.md "The way data flows").

A counter key is ``(environment, id_type, id)`` — any hashable value here; the memory store
uses interned integers. For each key, ``views`` is the number of happening views with that id
and ``viewers`` the number of distinct viewer identities among them. Viewers are a multiset
(viewer -> how many of its views are happening with that id), so ``viewers`` moves only when a
viewer's count goes 0 -> 1 or 1 -> 0; it is a :class:`~headcount.stores.multiset.ViewerMultiset`
(a flat array, ~16 B per viewer). A view that is its own viewer (viewer ``0``: no viewer id
known) is distinct from every other by definition, so it is only counted (``solo``) and costs
no multiset entry.

Nothing here runs per heartbeat: only a view starting or stopping to happen, or changing its
ids, calls :meth:`Counters.transition`. A key whose ``views`` reaches 0 is forgotten, so the
table holds only ids someone is watching.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator
from typing import ClassVar, Generic, TypeVar

from headcount.core.counters import counter_changes
from headcount.stores.multiset import ViewerMultiset

__all__ = ["CounterRecord", "CounterUnderflow", "Counters"]

K = TypeVar("K", bound=Hashable)


class CounterUnderflow(RuntimeError):
    """A view was taken out of a counter it was never added to: a bug, never bad input."""


class CounterRecord:
    __slots__ = ("solo", "viewers", "views")

    def __init__(self) -> None:
        self.views = 0
        self.solo = 0
        self.viewers = ViewerMultiset()

    @property
    def viewer_count(self) -> int:
        return len(self.viewers) + self.solo


class Counters(Generic[K]):
    record_type: ClassVar[type[CounterRecord]] = CounterRecord  # a subclass may keep more

    def __init__(self) -> None:
        self._records: dict[K, CounterRecord] = {}

    def __len__(self) -> int:
        return len(self._records)

    def __iter__(self) -> Iterator[K]:
        return iter(self._records)

    def counts(self, key: K) -> tuple[int, int]:
        """``(views, viewers)``; a key nobody watches reads ``(0, 0)``."""
        record = self._records.get(key)
        return (0, 0) if record is None else (record.views, record.viewer_count)

    def add(self, key: K, viewer: int) -> CounterRecord:
        """Count one more happening view under ``key``; returns the key's record."""
        record = self._records.get(key)
        if record is None:
            record = self._records[key] = self.record_type()
        record.views += 1
        if viewer == 0:
            record.solo += 1
        else:
            record.viewers.add(viewer)
        return record

    def remove(self, key: K, viewer: int) -> CounterRecord:
        """Count one happening view less under ``key``; returns the key's record (forgotten
        already when its views reached 0)."""
        record = self._records.get(key)
        if record is None:
            raise CounterUnderflow(f"no happening view under {key!r}")
        if viewer == 0:
            if record.solo == 0:
                raise CounterUnderflow(f"no solo viewer under {key!r}")
            record.solo -= 1
        else:
            try:
                record.viewers.remove(viewer)
            except KeyError:
                raise CounterUnderflow(f"viewer not counted under {key!r}") from None
        record.views -= 1
        if record.views == 0:
            del self._records[key]
        return record

    def transition(
        self,
        before: tuple[K, ...],
        before_viewer: int,
        after: tuple[K, ...],
        after_viewer: int,
        touched: Callable[[K, CounterRecord], None] | None = None,
    ) -> tuple[tuple[K, ...], tuple[K, ...]]:
        """One view moves from counting under ``before`` (as ``before_viewer``) to counting
        under ``after`` (as ``after_viewer``); either side may be empty
        (:func:`~headcount.core.counters.counter_changes` decides what is touched). Returns
        ``(removed, added)``: the keys touched. ``touched``, when given, is called once for
        each of them with its record after the whole transition."""
        removed, added = counter_changes(before, before_viewer, after, after_viewer)
        for key in removed:
            record = self.remove(key, before_viewer)
            if touched is not None and key not in added:  # else once it is added again
                touched(key, record)
        for key in added:
            record = self.add(key, after_viewer)
            if touched is not None:
                touched(key, record)
        return removed, added
