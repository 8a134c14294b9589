"""The memory store's sweep: exactly the silent views, in O(expired), restored in order, never
early when the clock steps back. Views are observed through counts (each view watches a video
of its own), sweeps through their results and ``last_sweep_visited``."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headcount.core.events import ViewEvent
from headcount.stores.memory import MemoryLiveStore
from headcount.stores.view_table import NIL, ViewTable

T0 = 1_800_000_000.0
ENV = "env-1"
WINDOW = 60.0


def hb(view: str) -> ViewEvent:
    """A heartbeat naming the view's own video: a view seen first through it counts."""
    return ViewEvent(name="hb", view_id=view, video_id=f"video-{view}")


def present(store: MemoryLiveStore, view: str) -> bool:
    return store.counts_now(ENV, "video_id", f"video-{view}").views == 1


def sweep(store: MemoryLiveStore, now: float) -> int:
    return asyncio.run(store.sweep(now))


def views_held(store: MemoryLiveStore) -> int:
    return asyncio.run(store.stats()).views


# -- the last-seen list of one partition ---------------------------------------------------


@given(st.lists(st.tuples(st.sampled_from("itd"), st.integers(0, 15)), max_size=80))
def test_the_list_follows_inserts_touches_and_deletes(ops: list[tuple[str, int]]) -> None:
    table = ViewTable()
    model: list[int] = []  # keys, least recently touched first
    for op, key in ops:
        if op == "i" and key not in table.index:
            table.insert(key, 0.0, 1, (0, 0, 0, 0), 0, 0, 0, 0)
            model.append(key)
        elif op == "t" and key in table.index:
            row = table.index[key]
            if row != table.tail:
                table.touch(row)
            model.remove(key)
            model.append(key)
        elif op == "d" and key in table.index:
            table.delete(key, table.index[key])
            model.remove(key)
        forward = table.order()
        assert [table.key[row] for row in forward] == model
        backward = []
        row = table.tail
        while row != NIL:
            backward.append(row)
            row = table.prev[row]
        assert backward == forward[::-1]
        assert table.rows() <= 16  # rows are reused


def test_relink_orders_rows_by_last_seen() -> None:
    table = ViewTable()
    for key, seen in enumerate([5.0, 1.0, 3.0, 2.0, 4.0]):
        table.insert(key, seen, 1, (0, 0, 0, 0), 0, 0, 0, 0)
    table.relink()
    assert [table.last_seen[row] for row in table.order()] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert table.last_seen[table.tail] == 5.0 and table.prev[table.index[1]] == NIL
    empty = ViewTable()
    empty.relink()
    assert empty.head == empty.tail == NIL


# -- exactly the expired views ------------------------------------------------------------

# A step: a batch of heartbeats for some views after `dt` seconds, or a sweep after `dt`.
VIEWS = [f"v{i}" for i in range(8)]
steps = st.lists(
    st.tuples(
        st.sampled_from([0.0, 0.5, 1.0, 10.0, 30.0, WINDOW, WINDOW + 0.5, 2 * WINDOW]),
        st.none() | st.lists(st.sampled_from(VIEWS), min_size=1, max_size=4),
    ),
    max_size=40,
)


@settings(max_examples=300, deadline=None)
@given(steps, st.integers(1, 3))
def test_a_sweep_removes_exactly_the_views_silent_past_the_window(
    plan: list[tuple[float, list[str] | None]], partitions: int
) -> None:
    store = MemoryLiveStore(liveness_window=WINDOW, partitions=partitions)
    last_seen: dict[str, float] = {}  # the naive model: every view, looked at by every sweep
    now = T0
    for dt, batch in plan:
        now += dt
        if batch is None:
            expired = {v for v, seen in last_seen.items() if now - seen > WINDOW}
            assert sweep(store, now) == len(expired)
            for view in expired:
                del last_seen[view]
            assert views_held(store) == len(last_seen)
            assert {v for v in VIEWS if present(store, v)} == set(last_seen)
            assert store.last_sweep_visited <= len(expired) + partitions
        else:
            store.ingest_now(ENV, [hb(v) for v in batch], now)
            last_seen.update(dict.fromkeys(batch, now))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(-2 * WINDOW, 2 * WINDOW), st.booleans(), st.sampled_from(VIEWS)),
        max_size=40,
    )
)
def test_with_the_clock_stepping_back_no_view_ever_expires_early(
    plan: list[tuple[float, bool, str]],
) -> None:
    store = MemoryLiveStore(liveness_window=WINDOW, partitions=2)
    last_seen: dict[str, float] = {}
    latest = T0  # the latest time seen when each view was last touched (how late it may go)
    latest_at_touch: dict[str, float] = {}
    now = T0
    for dt, sweeping, view in plan:
        now += dt
        latest = max(latest, now)
        if sweeping:
            sweep(store, now)
            for v, seen in list(last_seen.items()):
                if now - seen <= WINDOW:
                    assert present(store, v), "expired early"
                elif now - latest_at_touch[v] > WINDOW:
                    assert not present(store, v), "later than the clock's step"
                if not present(store, v):
                    del last_seen[v]
        else:
            store.ingest_now(ENV, [hb(view)], now)
            last_seen[view] = now
            latest_at_touch[view] = latest
    assert sweep(store, latest + WINDOW + 1) == len(last_seen)
    assert views_held(store) == 0


def test_a_view_behind_a_newer_one_waits_and_an_event_still_finds_it_gone() -> None:
    store = MemoryLiveStore(liveness_window=WINDOW, partitions=1)
    store.ingest_now(ENV, [hb("new")], T0 + 100)
    # The clock steps back 100 s: "back" is touched after "new", with an earlier time.
    store.ingest_now(
        ENV,
        [
            ViewEvent(name="viewstart", view_id="back", sequence=1, starts=True),
            ViewEvent(name="hb", view_id="back", sequence=2, video_id="video-back"),
            ViewEvent(name="pause", view_id="back", sequence=3),
        ],
        T0,
    )
    assert sweep(store, T0 + WINDOW) == 0  # exactly the window: alive
    assert sweep(store, T0 + WINDOW + 1) == 0  # expired, but waits behind "new": late
    # Silent too long is gone even before a sweep: the heartbeat starts a fresh view, which
    # counts (a first-seen heartbeat), where the paused old view would not.
    assert views_held(store) == 2 and not present(store, "back")  # held, paused
    store.ingest_now(
        ENV, [ViewEvent(name="hb", view_id="back", sequence=4, video_id="video-back")], T0 + 62
    )
    assert present(store, "back")
    assert sweep(store, T0 + 100 + WINDOW) == 0
    assert sweep(store, T0 + 100 + WINDOW + 1) == 2  # both at the first sweep after "new"
    assert views_held(store) == 0


# -- O(expired) ----------------------------------------------------------------------------


def test_a_sweep_looks_at_the_expired_views_and_one_live_view_per_partition() -> None:
    store = MemoryLiveStore(liveness_window=WINDOW, partitions=16)
    views = [f"view-{i}" for i in range(10_000)]
    for i in range(0, len(views), 500):
        store.ingest_now(ENV, [hb(v) for v in views[i : i + 500]], T0)
    silent = set(random.Random(7).sample(views, 10))
    heard = [v for v in views if v not in silent]
    random.Random(8).shuffle(heard)
    for i in range(0, len(heard), 500):
        store.ingest_now(ENV, [hb(v) for v in heard[i : i + 500]], T0 + 30)

    assert sweep(store, T0 + WINDOW) == 0  # nothing expired: only the 16 heads looked at
    assert store.last_sweep_visited == 16
    assert sweep(store, T0 + WINDOW + 1) == 10
    assert store.last_sweep_visited <= 10 + 16
    assert not any(present(store, v) for v in silent)
    assert views_held(store) == 9_990
    assert sweep(store, T0 + WINDOW + 1) == 0
    assert store.last_sweep_visited == 16


def test_a_sweep_of_an_empty_store_looks_at_nothing() -> None:
    store = MemoryLiveStore(partitions=4)
    assert sweep(store, T0) == 0
    assert store.last_sweep_visited == 0


# -- restore -------------------------------------------------------------------------------


@pytest.mark.parametrize("partitions", [4, 7])
def test_a_restore_rebuilds_the_last_seen_order(tmp_path: Path, partitions: int) -> None:
    state = tmp_path / "live.json"
    first = MemoryLiveStore(liveness_window=WINDOW, partitions=4, state_file=state)
    views = [f"view-{i}" for i in range(200)]
    for i, view in enumerate(views):
        first.ingest_now(ENV, [hb(view)], T0 + i * 0.1)  # file order: first seen
    # Touched again in another order: last-seen order is no longer the file's order.
    touched = views[:150]
    random.Random(3).shuffle(touched)
    last_seen = {v: T0 + i * 0.1 for i, v in enumerate(views)}
    for i, view in enumerate(touched):
        first.ingest_now(ENV, [hb(view)], T0 + 20 + i * 0.1)
        last_seen[view] = T0 + 20 + i * 0.1
    asyncio.run(first.save(T0 + 40))

    second = MemoryLiveStore(liveness_window=WINDOW, partitions=partitions, state_file=state)
    asyncio.run(second.start(T0 + 40))
    assert views_held(second) == 200
    for now in (T0 + 65, T0 + 75, T0 + 80.05, T0 + 85, T0 + 100):
        expired = {v for v, seen in last_seen.items() if now - seen > WINDOW}
        assert sweep(second, now) == len(expired)
        assert second.last_sweep_visited <= len(expired) + partitions
        for view in expired:
            del last_seen[view]
        assert {v for v in views if present(second, v)} == set(last_seen)
