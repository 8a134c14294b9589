"""Counter arithmetic by transitions, and the viewer multiset underneath it."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from headcount.stores.memory_counters import Counters, CounterUnderflow
from headcount.stores.multiset import _CAPACITIES, ViewerMultiset

A, B, C = ("env", "video_id", "a"), ("env", "video_id", "b"), ("env", "playback_id", "c")


def test_unknown_key_reads_zero() -> None:
    assert Counters[tuple[str, str, str]]().counts(A) == (0, 0)


def test_viewers_move_only_when_a_viewer_count_crosses_zero() -> None:
    counters: Counters[tuple[str, str, str]] = Counters()
    counters.add(A, 11)
    counters.add(A, 11)  # the same viewer in two tabs
    counters.add(A, 22)
    assert counters.counts(A) == (3, 2)
    counters.remove(A, 11)
    assert counters.counts(A) == (2, 2)
    counters.remove(A, 11)
    assert counters.counts(A) == (1, 1)
    counters.remove(A, 22)
    assert counters.counts(A) == (0, 0)
    assert len(counters) == 0  # forgotten at zero


def test_views_that_are_their_own_viewer_are_always_distinct() -> None:
    counters: Counters[tuple[str, str, str]] = Counters()
    counters.add(A, 0)
    counters.add(A, 0)
    counters.add(A, 5)
    assert counters.counts(A) == (3, 3)
    counters.remove(A, 0)
    assert counters.counts(A) == (2, 2)


def test_transition_touches_only_what_changed() -> None:
    counters: Counters[tuple[str, str, str]] = Counters()
    counters.transition((), 0, (A, C), 7)  # starts happening
    assert (counters.counts(A), counters.counts(C)) == ((1, 1), (1, 1))
    counters.transition((A, C), 7, (B, C), 7)  # video id changes, playback id stays
    assert (counters.counts(A), counters.counts(B), counters.counts(C)) == ((0, 0), (1, 1), (1, 1))
    counters.add(B, 8)
    counters.transition((B, C), 7, (B, C), 8)  # identity upgrade to a viewer already there
    assert (counters.counts(B), counters.counts(C)) == ((2, 1), (1, 1))
    counters.transition((B, C), 8, (), 0)  # stops happening
    assert (counters.counts(B), counters.counts(C)) == ((1, 1), (0, 0))


def test_underflow_is_a_bug_not_a_negative_count() -> None:
    counters: Counters[tuple[str, str, str]] = Counters()
    with pytest.raises(CounterUnderflow):
        counters.remove(A, 1)
    counters.add(A, 1)
    with pytest.raises(CounterUnderflow):
        counters.remove(A, 2)
    with pytest.raises(CounterUnderflow):
        counters.remove(A, 0)
    assert counters.counts(A) == (1, 1)


def test_multiset_against_a_counter_under_random_churn() -> None:
    """Many adds and removes with colliding home slots (forcing long probe runs and wrap-around
    deletions), checked against collections.Counter after every operation."""
    rnd = random.Random(7)
    multiset = ViewerMultiset()
    reference: Counter[int] = Counter()
    # For each capacity the table passes through: keys whose home is one of its first slots,
    # and keys whose home is one of its last (their runs wrap around to slot 0).
    pool = []
    for capacity in _CAPACITIES[:12]:
        pool += [capacity * rnd.getrandbits(48) + rnd.choice([1, 2, 3]) for _ in range(25)]
        pool += [capacity * rnd.getrandbits(48) + capacity - rnd.choice([1, 2]) for _ in range(25)]
    pool += [rnd.getrandbits(60) | 1 for _ in range(300)]
    for _ in range(20_000):
        viewer = rnd.choice(pool)
        if reference[viewer] and rnd.random() < 0.5:
            assert multiset.remove(viewer) == (reference[viewer] == 1)
            reference[viewer] -= 1
            if not reference[viewer]:
                del reference[viewer]
        else:
            assert multiset.add(viewer) == (viewer not in reference)
            reference[viewer] += 1
        assert len(multiset) == len(reference)
        assert multiset.count(viewer) == reference[viewer]
    assert dict(multiset) == dict(reference)
    for viewer, count in list(reference.items()):
        for _ in range(count):
            multiset.remove(viewer)
    assert len(multiset) == 0
    assert len(multiset._keys) == 8  # shrank back


def test_multiset_remove_of_an_absent_viewer_raises() -> None:
    multiset = ViewerMultiset()
    multiset.add(3)
    with pytest.raises(KeyError):
        multiset.remove(11)  # same home slot (3 % 8 == 11 % 8), not present
    assert multiset.count(3) == 1
