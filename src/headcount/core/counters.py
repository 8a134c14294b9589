"""Counter arithmetic: which counter keys one view's transition touches (pure).

A view counts under each of its content ids (a counter key ``(environment, id_type, id)``) as
its viewer identity. When it moves from counting under ``before`` as ``before_viewer`` to
counting under ``after`` as ``after_viewer`` (either side may be empty: it starts or stops
happening), :func:`counter_changes` says which memberships end and which begin; keys on both
sides with the same viewer are left alone. Every live store applies exactly these changes:
the memory store to its counters (:mod:`headcount.stores.memory_counters`), the Redis store to
its counter sub-keys.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

__all__ = ["counter_changes"]

K = TypeVar("K", bound=Hashable)


def counter_changes(
    before: tuple[K, ...], before_viewer: object, after: tuple[K, ...], after_viewer: object
) -> tuple[tuple[K, ...], tuple[K, ...]]:
    """``(removed, added)``: the keys the view stops counting under (as ``before_viewer``)
    and starts counting under (as ``after_viewer``)."""
    if before_viewer != after_viewer:
        return before, after
    return (
        tuple(key for key in before if key not in after),
        tuple(key for key in after if key not in before),
    )
