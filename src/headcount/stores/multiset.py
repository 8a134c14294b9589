"""A multiset of viewer hashes: a flat array of keys (open addressing, linear probing).

Each counter key keeps one: viewer -> number of its happening views under that key. A Python
``dict[int, int]`` would cost ~80 bytes per viewer (a 32-byte int object plus the entry). Here
a viewer is one 8-byte slot of an ``array('Q')`` at a load factor kept below 0.7 and, once
grown, above 0.46: capacities step by ~1.5x (:data:`_CAPACITIES`), not 2x, so a grown table
holds 11-17 bytes per viewer (with 2x steps, 11-23; an environment's own key holds every viewer
of the environment, so this is per view). Almost every viewer has one view per id, so a count
is stored only when it is 2 or more, in a small dict beside the array (two tabs of one viewer,
or a shared ``viewer_user_id``). The multiset is only touched on transitions (a view starts or
stops happening, or changes ids), never per heartbeat, so pure-Python probing is cheap enough.

Keys are 60-bit hashes from :mod:`headcount.core.identity`, never 0 (0 marks an empty slot);
they are uniform, so the slot is ``hash % capacity``. Deletion shifts the following run
back (no tombstones), so lookups never slow down with churn.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Iterator
from typing import Final

__all__ = ["ViewerMultiset"]


def _capacities(first: int, last: int) -> tuple[int, ...]:
    sizes = [first]
    while sizes[-1] < last:
        sizes.append(sizes[-1] * 3 // 2)
    return tuple(sizes)


_CAPACITIES: Final[tuple[int, ...]] = _capacities(8, 1 << 40)  # 8, 12, 18, 27, 40, 60...
_MIN_CAPACITY: Final[int] = _CAPACITIES[0]


class ViewerMultiset:
    __slots__ = ("_capacity", "_keys", "_more", "_size")

    def __init__(self) -> None:
        self._allocate(_MIN_CAPACITY)
        self._size = 0
        self._more: dict[int, int] = {}  # viewer -> count, only for counts >= 2

    def _allocate(self, capacity: int) -> None:
        self._keys = array("Q", bytes(8 * capacity))
        self._capacity = capacity

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
        keys, capacity = self._keys, self._capacity
        i = viewer % capacity
        while True:
            key = keys[i]
            if key == viewer or key == 0:
                return i
            i = (i + 1) % capacity

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
        capacity = self._capacity
        if (self._size + 1) * 10 > capacity * 7:
            self._resize(_CAPACITIES[bisect_left(_CAPACITIES, capacity) + 1])
            i = self._slot(viewer)
        self._keys[i] = viewer
        self._size += 1
        return True

    def remove(self, viewer: int) -> bool:
        """Count one view of ``viewer`` less; True when that was its last one."""
        keys, capacity = self._keys, self._capacity
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
            j = (j + 1) % capacity
            key = keys[j]
            if key == 0:
                break
            home = key % capacity
            if (i < j and (home <= i or home > j)) or (i > j and home <= i and home > j):
                keys[i] = key
                i = j
        keys[i] = 0
        self._size -= 1
        if capacity > _MIN_CAPACITY and self._size * 8 < capacity:
            self._resize(_CAPACITIES[bisect_left(_CAPACITIES, capacity) - 1])
        return True

    def _resize(self, capacity: int) -> None:
        # Straight from the old array: a list of its keys would be a transient Python int per
        # viewer (32 bytes each, 40 MB for an environment's million viewers) that the
        # allocator may keep as resident memory after the resize.
        old = self._keys
        self._allocate(capacity)
        keys = self._keys
        for key in old:
            if not key:
                continue
            i = key % capacity
            while keys[i]:
                i = (i + 1) % capacity
            keys[i] = key
