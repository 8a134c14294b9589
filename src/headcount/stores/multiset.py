"""A multiset of viewer hashes: a flat array of keys (open addressing, linear probing).

Each counter key keeps one: viewer -> number of its happening views under that key. A Python
``dict[int, int]`` would cost ~80 bytes per viewer (a 32-byte int object plus the entry). Here
a viewer is one 8-byte slot of an ``array('Q')`` at a load factor kept between 1/8 and 0.7,
about 16 bytes on average. Almost every viewer has one view per id, so a count is stored only
when it is 2 or more, in a small dict beside the array (two tabs of one viewer, or a shared
``viewer_user_id``). The multiset is only touched on transitions (a view starts or stops
happening, or changes ids), never per heartbeat, so pure-Python probing is cheap enough.

Keys are 60-bit hashes from :mod:`headcount.core.identity`, never 0 (0 marks an empty slot);
their low bits are uniform, so the slot is ``hash & mask``. Deletion shifts the following run
back (no tombstones), so lookups never slow down with churn.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from typing import Final

__all__ = ["ViewerMultiset"]

_MIN_CAPACITY: Final[int] = 8


class ViewerMultiset:
    __slots__ = ("_keys", "_mask", "_more", "_size")

    def __init__(self) -> None:
        self._allocate(_MIN_CAPACITY)
        self._size = 0
        self._more: dict[int, int] = {}  # viewer -> count, only for counts >= 2

    def _allocate(self, capacity: int) -> None:
        self._keys = array("Q", bytes(8 * capacity))
        self._mask = capacity - 1

    def __len__(self) -> int:
        """Distinct viewers."""
        return self._size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        """``(viewer, count)`` pairs."""
        more = self._more
        for key in self._keys:
            if key:
                yield key, more.get(key, 1)

    def _slot(self, viewer: int) -> int:
        """The slot holding ``viewer``, or the empty slot where it would go."""
        keys, mask = self._keys, self._mask
        i = viewer & mask
        while True:
            key = keys[i]
            if key == viewer or key == 0:
                return i
            i = (i + 1) & mask

    def count(self, viewer: int) -> int:
        if not self._keys[self._slot(viewer)]:
            return 0
        return self._more.get(viewer, 1)

    def add(self, viewer: int) -> bool:
        """Count one more view of ``viewer``; True when it was not there before."""
        i = self._slot(viewer)
        if self._keys[i]:
            self._more[viewer] = self._more.get(viewer, 1) + 1
            return False
        if (self._size + 1) * 10 > (self._mask + 1) * 7:
            self._resize((self._mask + 1) * 2)
            i = self._slot(viewer)
        self._keys[i] = viewer
        self._size += 1
        return True

    def remove(self, viewer: int) -> bool:
        """Count one view of ``viewer`` less; True when that was its last one."""
        keys, mask = self._keys, self._mask
        i = self._slot(viewer)
        if not keys[i]:
            raise KeyError(viewer)
        count = self._more.get(viewer)
        if count is not None:
            if count > 2:
                self._more[viewer] = count - 1
            else:
                del self._more[viewer]
            return False
        # Backward-shift deletion: pull later entries of the run into the hole when their
        # home slot is not cyclically inside (hole, j].
        j = i
        while True:
            j = (j + 1) & mask
            key = keys[j]
            if key == 0:
                break
            home = key & mask
            if (i < j and (home <= i or home > j)) or (i > j and home <= i and home > j):
                keys[i] = key
                i = j
        keys[i] = 0
        self._size -= 1
        capacity = mask + 1
        if capacity > _MIN_CAPACITY and self._size * 8 < capacity:
            self._resize(capacity // 2)
        return True

    def _resize(self, capacity: int) -> None:
        # Straight from the old array: a list of its keys would be a transient Python int per
        # viewer (32 bytes each, 40 MB for an environment's million viewers) that the
        # allocator may keep as resident memory after the resize.
        old = self._keys
        self._allocate(capacity)
        keys, mask = self._keys, self._mask
        for key in old:
            if not key:
                continue
            i = key & mask
            while keys[i]:
                i = (i + 1) & mask
            keys[i] = key
