"""One partition of the memory live store: views as compact columns (DESIGN: ≤ 250 B/view).

A view is a row across typed arrays (``array`` module, no per-field Python objects); a dict maps
the view's 60-bit key (:func:`headcount.core.identity.view_key`) to its row. Per view that is a
dict entry (~40 B), the key int (32 B; row ints are shared, see below) and 65 B of columns:

    last_seen  f64   server receive time of the last event (epoch seconds)
    env        u32   interned environment id
    video, asset, playback, live   u32 each   interned content ids (0: none)
    viewer     u64   viewer identity hash (0: the view is its own viewer)
    flags      u8    tracker flags (started, paused, ended, viewer kind...)
    highest    u32   highest view_sequence_number seen
    seen       u64   bitmap of the sequence numbers seen just below ``highest``
    key        u64   the view's key again, so a row found by walking the list can be deleted
    prev, next u32   the last-seen list (below)

Rows of removed views are reused, so columns never shrink but never grow past the peak.

**The last-seen list.** The rows in use form a doubly linked list through ``prev``/``next``
(:data:`NIL` ends it), least recently touched at ``head``: :meth:`insert` appends at ``tail``,
:meth:`touch` moves a row there, :meth:`delete` unlinks it, each in O(1). Receive times only
grow, so the list is in ``last_seen`` order and the sweeper finds every silent view by walking
from ``head`` to the first live one, without looking at the others. If the clock steps back, a
view touched after the step sits behind views with later times and expires only when they
have (late by at most the step, never early: each row's own time is checked). :meth:`relink`
rebuilds the order from ``last_seen`` (a restore adds rows in file order). The list is not
saved: it follows from ``last_seen``.

Row numbers are Python ints (the dict's values), and every int above 256 is its own 32-byte
object. Partitions number their rows alike (0, 1, 2...), so the tables of one store share one
list of row-number objects (``row_numbers``): row 5 of every partition is the same object, and
a million views cost ~60 000 of them instead of a million.
"""

from __future__ import annotations

from array import array
from typing import Final

__all__ = ["NIL", "ViewTable"]

NIL: Final[int] = 0xFFFF_FFFF  # no row: before the head, after the tail


class ViewTable:
    __slots__ = (
        "asset",
        "env",
        "flags",
        "free",
        "head",
        "highest",
        "index",
        "key",
        "last_seen",
        "live",
        "next",
        "playback",
        "prev",
        "row_numbers",
        "seen",
        "tail",
        "video",
        "viewer",
    )

    def __init__(self, row_numbers: list[int] | None = None) -> None:
        self.row_numbers = [] if row_numbers is None else row_numbers
        self.index: dict[int, int] = {}
        self.last_seen = array("d")
        self.env = array("I")
        self.video = array("I")
        self.asset = array("I")
        self.playback = array("I")
        self.live = array("I")
        self.viewer = array("Q")
        self.flags = array("B")
        self.highest = array("I")
        self.seen = array("Q")
        self.key = array("Q")
        self.prev = array("I")
        self.next = array("I")
        self.head = NIL
        self.tail = NIL
        self.free: list[int] = []

    def __len__(self) -> int:
        return len(self.index)

    def insert(
        self,
        key: int,
        last_seen: float,
        env: int,
        ids: tuple[int, int, int, int],
        viewer: int,
        flags: int,
        highest: int,
        seen: int,
    ) -> int:
        """A new row for ``key``, at the tail of the last-seen list."""
        tail = self.tail
        if self.free:
            row = self.free.pop()
            self.last_seen[row] = last_seen
            self.env[row] = env
            self.video[row], self.asset[row], self.playback[row], self.live[row] = ids
            self.viewer[row] = viewer
            self.flags[row] = flags
            self.highest[row] = highest
            self.seen[row] = seen
            self.key[row] = key
            self.prev[row] = tail
            self.next[row] = NIL
        else:
            row = len(self.last_seen)
            row_numbers = self.row_numbers
            if row < len(row_numbers):
                row = row_numbers[row]  # the shared object for this number
            else:
                row_numbers.append(row)
            self.last_seen.append(last_seen)
            self.env.append(env)
            self.video.append(ids[0])
            self.asset.append(ids[1])
            self.playback.append(ids[2])
            self.live.append(ids[3])
            self.viewer.append(viewer)
            self.flags.append(flags)
            self.highest.append(highest)
            self.seen.append(seen)
            self.key.append(key)
            self.prev.append(tail)
            self.next.append(NIL)
        if tail == NIL:
            self.head = row
        else:
            self.next[tail] = row
        self.tail = row
        self.index[key] = row
        return row

    def touch(self, row: int) -> None:
        """Move ``row``, which must not be the tail already, to the tail of the list."""
        prev, next_ = self.prev, self.next
        before, after = prev[row], next_[row]  # after is a row: ``row`` is not the tail
        if before == NIL:
            self.head = after
        else:
            next_[before] = after
        prev[after] = before
        tail = self.tail
        next_[tail] = row
        prev[row] = tail
        next_[row] = NIL
        self.tail = row

    def ids(self, row: int) -> tuple[int, int, int, int]:
        return self.video[row], self.asset[row], self.playback[row], self.live[row]

    def set_ids(self, row: int, ids: tuple[int, int, int, int]) -> None:
        self.video[row], self.asset[row], self.playback[row], self.live[row] = ids

    def delete(self, key: int, row: int) -> None:
        del self.index[key]
        before, after = self.prev[row], self.next[row]
        if before == NIL:
            self.head = after
        else:
            self.next[before] = after
        if after == NIL:
            self.tail = before
        else:
            self.prev[after] = before
        self.free.append(row)

    def relink(self) -> None:
        """Rebuild the last-seen list from the ``last_seen`` column, oldest first."""
        order = sorted(self.index.values(), key=self.last_seen.__getitem__)
        prev, next_ = self.prev, self.next
        before = NIL
        for row in order:
            prev[row] = before
            if before != NIL:
                next_[before] = row
            before = row
        if order:
            next_[before] = NIL
            self.head, self.tail = order[0], before
        else:
            self.head = self.tail = NIL

    def order(self) -> list[int]:
        """Rows in use, least recently touched first (a walk of the whole list: for tests)."""
        rows = []
        row = self.head
        while row != NIL:
            rows.append(row)
            row = self.next[row]
        return rows

    def rows(self) -> int:
        """Rows allocated (in use or free): the length of every column."""
        return len(self.last_seen)
