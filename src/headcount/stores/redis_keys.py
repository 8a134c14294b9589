"""Every Redis key name of the live store, built here and nowhere else.

Two kinds of records, each with its own hash tag so that a script touches one slot only:

* **Partition groups** ``<prefix>:{p<g>}:...`` (``g = view_key mod partitions``): the views of the
  group, in ``subpartitions`` small state hashes and last-seen zsets (small so Redis keeps
  them in its compact listpack encoding), a due zset (which sub-partitions may hold a view
  past the liveness window) and a stats hash. A node's view steps are stored by
  ``view_write.lua`` and a group's sweep runs in ``partition.lua``.
* **Counter sub-keys** ``<prefix>:{<tag>}:m<content>.<s>`` (and its ``:l``): the memberships
  of one counter key (:func:`headcount.core.identity.content_key`) whose viewer hashes to
  shard ``s`` of ``counter_shards`` (``counter_apply.lua``). A hot video spreads over
  ``counter_shards`` slots, and evenly: the tag of shard ``s`` is one that Redis hashes to the
  slot ``content + s * 16384 / counter_shards`` (:func:`slot_tag`), so the sub-keys of one
  counter stand at equal distances over the slot space, and a cluster whose masters hold
  equal ranges of slots (as ``redis-cli --cluster create`` makes them) gets an equal share of
  every hot counter, whatever its name hashes to.
* **The environment's own counter** (every happening view counts under it: the environment's
  totals and history) holds the whole audience, so it is split as finely as the views are:
  ``environment_shards = partitions x subpartitions`` sub-keys (16,384 by default, one per
  slot), so that its sub-keys stay in Redis's compact listpack encoding as long as the
  views' own records do (up to ~2 M views of one environment; past that both grow into
  hashtables). A viewer's environment shard is its viewer hash modulo that, as its content
  shard is the hash modulo ``counter_shards``: one viewer, one sub-key, exact sums. Nothing
  reads that counter whole: its history record keeps the sums of what its sub-keys answered
  (``history.lua``).

Nothing on a request path lists keys (no ``KEYS``, no ``SCAN``): every name is computed.
"""

from __future__ import annotations

import functools
from itertools import count
from typing import Final

from redis.crc import REDIS_CLUSTER_HASH_SLOTS, key_slot

from headcount.core.ids import ID_TYPES

__all__ = [
    "DEFAULT_PREFIX",
    "KeyLayout",
    "Location",
    "check_prefix",
    "slot_tag",
]

DEFAULT_PREFIX: Final = "hc"

Location = tuple[int, int]  # (partition group, sub-partition)


@functools.cache
def _slot_tags() -> tuple[str, ...]:
    """For every hash slot, the shortest of ``0``, ``1``, ... (base 36) that hashes to it:
    found once per process (about 0.1 s), then only indexed."""
    tags: list[str | None] = [None] * REDIS_CLUSTER_HASH_SLOTS
    missing = REDIS_CLUSTER_HASH_SLOTS
    for number in count():
        tag = _base36(number)
        slot = key_slot(tag.encode())
        if tags[slot] is None:
            tags[slot] = tag
            missing -= 1
            if not missing:
                return tuple(t for t in tags if t is not None)
    raise AssertionError("unreachable")  # pragma: no cover


def _base36(number: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    text = digits[number % 36]
    while number >= 36:
        number //= 36
        text = digits[number % 36] + text
    return text


def slot_tag(slot: int) -> str:
    """A hash tag that Redis (Cluster) puts in ``slot``."""
    return _slot_tags()[slot % REDIS_CLUSTER_HASH_SLOTS]


def check_prefix(prefix: str) -> None:
    """Refuse a key prefix that would break key names or their hash tags (ValueError)."""
    if not prefix or any(c in prefix for c in "{}: "):
        raise ValueError(f"a key prefix is letters, digits, - and _, not {prefix!r}")


class KeyLayout:
    __slots__ = (
        "_groups",
        "_subs",
        "counter_shards",
        "environment_shards",
        "partitions",
        "prefix",
        "subpartitions",
    )

    def __init__(
        self, prefix: str, *, partitions: int, subpartitions: int, counter_shards: int
    ) -> None:
        check_prefix(prefix)
        if min(partitions, subpartitions, counter_shards) < 1:
            raise ValueError("partitions, sub-partitions and counter shards must be at least 1")
        self.prefix = prefix
        self.partitions = partitions
        self.subpartitions = subpartitions
        self.counter_shards = counter_shards
        self.environment_shards = partitions * subpartitions  # see the module's docstring
        _slot_tags()  # built now, at start, not on the first request that needs one
        # Names built once: the hot path only indexes these lists.
        self._groups = [
            (f"{prefix}:{{p{g}}}:due", f"{prefix}:{{p{g}}}:n") for g in range(partitions)
        ]
        self._subs = [
            [(f"{prefix}:{{p{g}}}:s{r}", f"{prefix}:{{p{g}}}:t{r}") for r in range(subpartitions)]
            for g in range(partitions)
        ]

    def locate(self, view_key: int) -> Location:
        return view_key % self.partitions, (view_key // self.partitions) % self.subpartitions

    def group(self, group: int) -> tuple[str, str]:
        """(due zset, stats hash) of a partition group."""
        return self._groups[group]

    def sub(self, group: int, sub: int) -> tuple[str, str]:
        """(state hash, last-seen zset) of one sub-partition."""
        return self._subs[group][sub]

    def history(self, content: int) -> tuple[str, str]:
        """(record hash, minutes ring) of one counter key's history."""
        tag = f"{self.prefix}:{{h{content:015x}}}"
        return tag, tag + ":m"

    def ranking(self, environment: int) -> dict[str, str]:
        """Id type (and ``all``) -> the sorted set of an environment's ids by views now."""
        tag = f"{self.prefix}:{{t{environment:015x}}}"
        return {kind: f"{tag}:{kind}" for kind in (*ID_TYPES, "all")}

    def counter(self, content: int, shard: int, shards: int | None = None) -> tuple[str, str]:
        """(membership hash, lease zset) of one counter sub-key, in the slot of its shard of
        ``shards`` (``counter_shards``; ``environment_shards`` for an environment's own key)."""
        slot = content + shard * REDIS_CLUSTER_HASH_SLOTS // (shards or self.counter_shards)
        # 'm': memberships that name their viewer. The earlier layout's 'c' keys (keyed by view
        # alone) are never read by this one and expire by their TTL; refreshes fill the new
        # keys within half a liveness window.
        name = f"{self.prefix}:{{{slot_tag(slot)}}}:m{content:015x}.{shard}"
        return name, name + ":l"
