"""The tracker's rules are written once (``headcount.core.tracker``); both live stores apply
them with rules of their own around them (the liveness window, sequence numbers, the Redis
store's packed states and compare-and-set writes, its sweep in Lua). One table of cases
(``tests/stores/step_cases.py``) proves they agree. Every case runs, independently, through

* ``core``: the pure core alone — :func:`~headcount.core.tracker.step`,
  :func:`~headcount.core.tracker.accept_sequence`, :func:`~headcount.core.tracker.is_happening`,
  :func:`~headcount.core.tracker.counter_ids` — with the liveness rule as the memory store
  applies it (a view silent for more than the window is gone: a sweep drops it, an event
  starts a new one);
* ``redis``: the Redis adapter on a real standalone Redis (ingest, then counts and stats);
* ``memory``: the memory adapter (the other user of the core),

and each result is compared to the case's own expected values, never to another twin's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from headcount.core import tracker
from headcount.core.events import ViewEvent
from headcount.core.identity import view_key
from headcount.core.ids import ID_TYPES
from headcount.core.tracker import (
    NEW_VIEW,
    ViewState,
    accept_sequence,
    counter_ids,
    event_effects,
    is_happening,
    step,
)
from headcount.stores.live import LiveStore
from headcount.stores.memory import MemoryLiveStore
from headcount.stores.redis_connect import parse_redis_url
from headcount.stores.redis_live import RedisLiveStore
from tests.redis_servers import RedisServer, new_key_prefix
from tests.stores.step_cases import CASES, WINDOW, Case, Key

pytestmark = pytest.mark.anyio

T0 = 1_800_000_000.0
ENV = "env-twins"


# -- the twins -----------------------------------------------------------------------------


@dataclass
class _CoreView:
    state: ViewState
    highest: int
    seen: int
    last_seen: float


class CoreTwin:
    """The core's functions and the memory store's liveness rule, nothing else."""

    def __init__(self, count_paused: bool) -> None:
        self.count_paused = count_paused
        self.views: dict[str, _CoreView] = {}

    def ingest(self, events: tuple[ViewEvent, ...], now: float) -> int:
        duplicates = 0
        for event in events:
            view = self.views.get(event.view_id)
            if view is not None and now - view.last_seen > WINDOW:
                view = None  # silent too long: gone, even before a sweep
            if view is None:
                highest, seen = 0, 0
                if event.sequence is not None:
                    _, highest, seen = accept_sequence(0, 0, event.sequence)
                state = step(NEW_VIEW, event, first_seen=True)
                self.views[event.view_id] = _CoreView(state, highest, seen, now)
                continue
            view.last_seen = now
            if event.sequence is not None:
                fresh, view.highest, view.seen = accept_sequence(
                    view.highest, view.seen, event.sequence
                )
                if not fresh:
                    duplicates += 1
                    continue
            view.state = step(view.state, event)
        return duplicates

    def sweep(self, now: float) -> None:
        for view_id in [v for v, view in self.views.items() if now - view.last_seen > WINDOW]:
            del self.views[view_id]

    def happening(self) -> list[tuple[str, _CoreView]]:
        return [
            (view_id, view)
            for view_id, view in self.views.items()
            if is_happening(view.state.flags, self.count_paused)
        ]

    def counts(self, key: Key) -> tuple[int, int]:
        views, viewers = 0, set()
        for view_id, view in self.happening():
            ids = {(ID_TYPES[index], value) for index, value in counter_ids(view.state)}
            if key in ids:
                views += 1
                viewers.add(view.state.viewer or ("self", view_key(ENV, view_id)))
        return views, len(viewers)

    def stats(self) -> tuple[int, int]:
        return len(self.views), len(self.happening())


@dataclass
class Outcome:
    counts: dict[Key, tuple[int, int]]
    held: int
    happening: int
    duplicates: int


def expected(case: Case) -> Outcome:
    return Outcome(
        {key: case.counts.get(key, (0, 0)) for key in case.counter_keys()},
        case.held,
        case.happening,
        case.duplicates,
    )


def run_core(case: Case) -> Outcome:
    twin = CoreTwin(case.count_paused)
    twin.ingest(case.given.events, T0)
    if case.given.events:
        assert twin.views["v"].state.flags == case.given.flags, case.given.name
    duplicates = 0
    for t, what in case.steps:
        if isinstance(what, str):
            twin.sweep(T0 + t)
        else:
            duplicates += twin.ingest(what, T0 + t)
    held, happening = twin.stats()
    return Outcome(
        {key: twin.counts(key) for key in case.counter_keys()}, held, happening, duplicates
    )


async def run_store(case: Case, store: LiveStore) -> Outcome:
    await store.start(T0)
    try:
        if case.given.events:
            await store.ingest(ENV, case.given.events, T0)
        duplicates = 0
        now = T0
        for t, what in case.steps:
            now = T0 + t
            if isinstance(what, str):
                await store.sweep(now)
            else:
                duplicates += (await store.ingest(ENV, what, now)).duplicates
        counts = {}
        for key in case.counter_keys():
            read = await store.counts(ENV, key[0], key[1], now)
            counts[key] = (read.views, read.viewers)
        stats = await store.stats()
        return Outcome(counts, stats.views, stats.happening, duplicates)
    finally:
        await store.close(now)


Twin = Callable[[Case], Awaitable[Outcome]]


@pytest.fixture(params=["core", "lua", "memory"])
async def twin(request: pytest.FixtureRequest) -> AsyncIterator[Twin]:
    if request.param == "core":

        async def core(case: Case) -> Outcome:
            return run_core(case)

        yield core
    elif request.param == "memory":

        async def memory(case: Case) -> Outcome:
            store = MemoryLiveStore(liveness_window=WINDOW, count_paused=case.count_paused)
            return await run_store(case, store)

        yield memory
    else:
        server: RedisServer = request.getfixturevalue("redis_standalone")

        async def lua(case: Case) -> Outcome:
            store = RedisLiveStore(
                parse_redis_url(f"{server.url}?prefix={new_key_prefix()}"),
                liveness_window=WINDOW,
                count_paused=case.count_paused,
                partitions=2,
                subpartitions=2,
                counter_shards=2,
                snapshot_interval=0.0,
            )
            return await run_store(case, store)

        yield lua


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_twins_apply_the_same_rules(twin: Twin, case: Case) -> None:
    assert await twin(case) == expected(case)


# -- the table itself ----------------------------------------------------------------------


def test_case_names_are_unique() -> None:
    names = [case.name for case in CASES]
    assert len(names) == len(set(names))


def test_the_table_exercises_every_effect_bit() -> None:
    bits = {name: getattr(tracker, name) for name in tracker.__all__ if name.startswith("EFFECT_")}
    assert len(bits) == 5
    seen = 0
    for case in CASES:
        for event in case.events():
            seen |= event_effects(event)
    missing = [name for name, bit in bits.items() if not seen & bit]
    assert not missing


def _naive_duplicates(sent: list[int], probes: list[int]) -> int:
    """Duplicates among ``probes`` after ``sent``, by a set of every number seen: a number is
    a duplicate if seen before or 64 or more below the highest seen."""
    seen: set[int] = set()
    duplicates = 0
    for index, number in enumerate([*sent, *probes]):
        old = number in seen or (bool(seen) and number <= max(seen) - 64)
        if index >= len(sent):
            duplicates += old
        seen.add(number)
    return duplicates


def test_scan_expectations() -> None:
    """The duplicates expected by the scan cases, derived again without any bitmap."""
    assert _naive_duplicates([1, 2, 3, 4, 5, 35], list(range(36))) == 6
    assert _naive_duplicates([1, 37, 67, 68, 69, 99, 100], list(range(1, 101))) == 42
    assert _naive_duplicates([50, 20, 49, 13, 14, 80], list(range(81))) == 21
