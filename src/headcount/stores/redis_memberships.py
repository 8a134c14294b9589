"""Counter memberships of the Redis live store: the changes of view steps and sweeps turned into
one ``counter_apply.lua`` call per counter sub-key they touch.

A change (view, old viewer, old ids, new viewer, new ids: :mod:`headcount.stores.redis_views`
and ``partition.lua``'s sweep make them) removes the view's
memberships it no longer has (:func:`headcount.core.counters.counter_changes`) and sets every
one it has after the change. The sub-key of a membership is picked by the hash of the view's
viewer (:meth:`~headcount.stores.redis_keys.KeyLayout.counter`): modulo ``counter_shards`` for
a content id's counter, modulo ``environment_shards`` for the environment's own, so that a
viewer's views share one sub-key of each and distinct viewers stay exact as sums.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from headcount.core.counters import counter_changes
from headcount.stores.redis_codec import NONE, STATE_IDS
from headcount.stores.redis_keys import KeyLayout
from headcount.stores.redis_lua import COUNTER, Command

__all__ = ["CHANGE", "LEASE", "REFRESH", "Lease", "membership_commands"]

REFRESH: Final = 0.5  # x liveness window: how often a happening view re-sends its memberships
LEASE: Final = 1.5  # x liveness window: REFRESH + 1, so a refreshed membership never lapses early
CHANGE: Final = 5  # strings per change
# Where a change's ids (in the order of STATE_IDS, 8 bytes each) hold
# the environment's own counter key.
_AT: Final = 8 * STATE_IDS.index("env")
_ENVIRONMENT: Final = slice(_AT, _AT + 8)

Target = tuple[bytes, int]  # (content hash, shard): a counter sub-key


@dataclass(frozen=True)
class Lease:
    seconds: float  # how long a membership set now lasts
    ttl_ms: int  # the sub-keys' TTL: they outlive every lease in them

    @classmethod
    def of(cls, liveness_window: float) -> Lease:
        return cls(LEASE * liveness_window, int(2000 * LEASE * liveness_window) + 1000)


def _ids(packed: bytes) -> tuple[bytes, ...]:
    return tuple(packed[i : i + 8] for i in range(0, len(packed), 8) if packed[i : i + 8] != NONE)


def _viewer(view: bytes, viewer: bytes) -> tuple[bytes, int]:
    """(viewer field, hash) of a view's identity: its viewer hash, or the view itself when no
    viewer id is known (then distinct from every other by definition). A membership is the
    view and this field (``counter_apply.lua``): removing one names the viewer it was set
    with, which the change carries (its old viewer)."""
    if viewer == NONE:
        return b"s" + view, int.from_bytes(view, "little")
    return b"w" + viewer, int.from_bytes(viewer, "little")


def membership_commands(
    layout: KeyLayout, changes: Sequence[bytes], now: float, lapsed_before: float, lease: Lease
) -> tuple[list[Target], list[Command]]:
    """The sub-keys the changes touch, and one call for each (leases that ended before
    ``lapsed_before``, the last sweep, have lapsed)."""
    content_shards = layout.counter_shards
    environment_shards = layout.environment_shards
    ops: dict[tuple[bytes, int, int], list[bytes]] = {}

    def add(content: bytes, environment: bytes, hashed: int, op: bytes) -> None:
        shards = environment_shards if content == environment else content_shards
        ops.setdefault((content, hashed % shards, shards), []).append(op)

    for i in range(0, len(changes), CHANGE):
        view, old_viewer, old_ids, new_viewer, new_ids = changes[i : i + CHANGE]
        after = _ids(new_ids)
        removed, _ = counter_changes(_ids(old_ids), old_viewer, after, new_viewer)
        # Every membership the view has after the change is set, not only the new ones:
        # setting one again only renews its lease, and the view's refresh clock restarts
        # with this change (redis_views), so all of them must be renewed now.
        if removed:
            field, hashed = _viewer(view, old_viewer)
            for content in removed:
                add(content, old_ids[_ENVIRONMENT], hashed, b"-" + view + field)
        if after:
            field, hashed = _viewer(view, new_viewer)
            for content in after:
                add(content, new_ids[_ENVIRONMENT], hashed, b"+" + view + field)
    # Whole seconds, rounded up (never shorter): an integer score is 6 bytes in a listpack, a
    # fraction of a second 19.
    expiry = math.ceil(now + lease.seconds)
    return [(content, shard) for content, shard, _ in ops], [
        COUNTER.command(
            layout.counter(int.from_bytes(content, "little"), shard, shards),
            (lapsed_before, expiry, lease.ttl_ms, *sub_ops),
        )
        for (content, shard, shards), sub_ops in ops.items()
    ]
