"""One partition of the memory live store: views as compact columns (DESIGN: ≤ 250 B/view).

A view is a row across typed arrays (``array`` module, no per-field Python objects); a dict maps
the view's 60-bit key (:func:`headcount.core.identity.view_key`) to its row. Per view that is a
dict entry (~40 B), the key int (32 B; row ints are shared, see below) and 49 B of columns:

    last_seen  f64   server receive time of the last event (epoch seconds)
    env        u32   interned environment id
    video, asset, playback, live   u32 each   interned content ids (0: none)
    viewer     u64   viewer identity hash (0: the view is its own viewer)
    flags      u8    tracker flags (started, paused, ended, viewer kind...)
    highest    u32   highest view_sequence_number seen
    seen       u64   bitmap of the sequence numbers seen just below ``highest``

Rows of removed views are reused, so columns never shrink but never grow past the peak.

Row numbers are Python ints (the dict's values), and every int above 256 is its own 32-byte
object. Partitions number their rows alike (0, 1, 2...), so the tables of one store share one
list of row-number objects (``row_numbers``): row 5 of every partition is the same object, and
a million views cost ~60 000 of them instead of a million.
"""

from __future__ import annotations

from array import array

__all__ = ["ViewTable"]


class ViewTable:
    __slots__ = (
        "asset",
        "env",
        "flags",
        "free",
        "highest",
        "index",
        "last_seen",
        "live",
        "playback",
        "row_numbers",
        "seen",
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
        if self.free:
            row = self.free.pop()
            self.last_seen[row] = last_seen
            self.env[row] = env
            self.video[row], self.asset[row], self.playback[row], self.live[row] = ids
            self.viewer[row] = viewer
            self.flags[row] = flags
            self.highest[row] = highest
            self.seen[row] = seen
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
        self.index[key] = row
        return row

    def ids(self, row: int) -> tuple[int, int, int, int]:
        return self.video[row], self.asset[row], self.playback[row], self.live[row]

    def set_ids(self, row: int, ids: tuple[int, int, int, int]) -> None:
        self.video[row], self.asset[row], self.playback[row], self.live[row] = ids

    def delete(self, key: int, row: int) -> None:
        del self.index[key]
        self.free.append(row)

    def rows(self) -> int:
        """Rows allocated (in use or free): the length of every column."""
        return len(self.last_seen)
