"""Every Redis key name of the live store, built here and nowhere else.

Two kinds of records, each with its own hash tag so that a script touches one slot only:

* **Partition groups** ``<prefix>:{p<g>}:...`` (``g = view_key mod partitions``): the views of the
  group, in ``subpartitions`` small state hashes and last-seen zsets (small so Redis keeps
  them in its compact listpack encoding), a due zset (which sub-partitions may hold a view
  past the liveness window) and a stats hash. The view step and the sweep of a group run in
  ``partition.lua``.
* **Counter sub-keys** ``<prefix>:{c<content>.<s>}`` (and its ``:l``): the memberships of one
  counter key (:func:`headcount.core.identity.content_key`) whose viewer hashes to shard ``s`` of
  ``counter_shards`` (``counter_apply.lua``). A hot video spreads over ``counter_shards`` slots.

* **History records** ``<prefix>:{h<content>}`` (and its ``:m`` minutes ring): one counter
  key's peaks and minutes (``history.lua``), and **rankings** ``<prefix>:{t<environment>}:<id
  type>`` (and ``:all``): sorted sets of an environment's ids by views now, one slot per
  environment (:mod:`headcount.history.redis`).

Nothing on a request path lists keys (no ``KEYS``, no ``SCAN``): every name is computed.
"""

from __future__ import annotations

from typing import Final

from headcount.core.ids import ID_TYPES

__all__ = ["DEFAULT_PREFIX", "KeyLayout", "Location", "check_prefix"]

DEFAULT_PREFIX: Final = "hc"

Location = tuple[int, int]  # (partition group, sub-partition)


def check_prefix(prefix: str) -> None:
    """Refuse a key prefix that would break key names or their hash tags (ValueError)."""
    if not prefix or any(c in prefix for c in "{}: "):
        raise ValueError(f"a key prefix is letters, digits, - and _, not {prefix!r}")


class KeyLayout:
    __slots__ = (
        "_groups",
        "_subs",
        "counter_shards",
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

    def counter(self, content: int, shard: int) -> tuple[str, str]:
        """(membership hash, lease zset) of one counter sub-key."""
        tag = f"{self.prefix}:{{c{content:015x}.{shard}}}"
        return tag, tag + ":l"
