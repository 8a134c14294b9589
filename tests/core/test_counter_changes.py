"""The one rule of counter arithmetic every live store applies: what a transition touches."""

from __future__ import annotations

import pytest

from headcount.core.counters import counter_changes

A, B, C = "a", "b", "c"


@pytest.mark.parametrize(
    ("before", "before_viewer", "after", "after_viewer", "removed", "added"),
    [
        ((), 0, (A, C), 7, (), (A, C)),  # starts happening
        ((A, C), 7, (), 0, (A, C), ()),  # stops happening
        ((A, C), 7, (B, C), 7, (A,), (B,)),  # one id changes, the other stays
        ((B, C), 7, (B, C), 8, (B, C), (B, C)),  # identity upgrade: every key moves
        ((A,), 7, (A,), 7, (), ()),  # nothing changed
        ((), 0, (), 0, (), ()),
    ],
)
def test_counter_changes(
    before: tuple[str, ...],
    before_viewer: int,
    after: tuple[str, ...],
    after_viewer: int,
    removed: tuple[str, ...],
    added: tuple[str, ...],
) -> None:
    assert counter_changes(before, before_viewer, after, after_viewer) == (removed, added)
