"""EnvironmentCache: answers from memory only while an entry is fresh; unknown keys cost one
lookup for many, then none for the negative TTL; and the lookups' queue is bounded."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from headcount.errors import StoreUnavailable
from headcount.stores.control import Environment
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.environment_cache import MISS, EnvironmentCache
from headcount.stores.lookups import BoundedLookups
from headcount.stores.sql import SqlControlStore, open_control_store

pytestmark = pytest.mark.anyio


async def test_cached_is_a_miss_until_resolved_and_after_the_ttl() -> None:
    control = MemoryControlStore()
    environment = control.create_environment("e", "key1", 0)
    cache = EnvironmentCache(control, ttl=10.0, negative_ttl=2.0)
    assert cache.cached("key1", 100.0) is MISS
    assert await cache.resolve("key1", 100.0) == environment
    found = cache.cached("key1", 109.0)
    assert isinstance(found, Environment) and found == environment
    assert cache.cached("key1", 110.0) is MISS  # expired: resolve asks the store again


async def test_cached_remembers_unknown_keys_for_the_negative_ttl() -> None:
    cache = EnvironmentCache(MemoryControlStore(), ttl=10.0, negative_ttl=2.0)
    assert await cache.resolve("nope", 100.0) is None
    assert cache.cached("nope", 101.0) is None
    assert cache.cached("nope", 102.0) is MISS


# -- bounded work for unknown keys (issue: 10,000 unknown keys in one body cost 4.2 s) -------


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[SqlControlStore]:
    store = open_control_store(f"sqlite:///{tmp_path / 'control.db'}")
    assert isinstance(store, SqlControlStore)
    yield store
    store.close()


def count_selects(store: SqlControlStore) -> list[str]:
    """The SELECTs the real store sends to SQLite, as they are sent."""
    selects: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(store.engine, "before_cursor_execute", seen)
    return selects


async def test_many_unknown_keys_cost_one_lookup_and_then_none(sqlite: SqlControlStore) -> None:
    known = sqlite.create_environment("known", "known1", 0)
    selects = count_selects(sqlite)
    cache = EnvironmentCache(sqlite, negative_ttl=5.0)
    keys = [f"nosuch{i}" for i in range(10_000)] + ["known1"]
    answers = await cache.resolve_many(keys, 100.0)
    assert answers["known1"] == known
    assert sum(answer is None for answer in answers.values()) == 10_000
    assert cache.store_queries == 1
    assert len(selects) <= 11  # one lookup: an IN (...) of at most 999 keys per statement
    again = await cache.resolve_many(keys, 104.9)  # all cached, known and unknown
    assert again == answers and cache.store_queries == 1 and len(selects) <= 11
    for key in keys:
        assert cache.cached(key, 104.9) is not MISS


async def test_a_key_created_after_it_was_unknown_works_within_the_negative_ttl(
    sqlite: SqlControlStore,
) -> None:
    cache = EnvironmentCache(sqlite, negative_ttl=5.0)
    assert await cache.resolve("latecomer", 100.0) is None
    created = sqlite.create_environment("late", "latecomer", 100)
    assert cache.cached("latecomer", 104.9) is None  # still remembered as unknown
    assert cache.cached("latecomer", 105.0) is MISS
    assert await cache.resolve("latecomer", 105.0) == created


async def test_a_flood_of_unknown_keys_evicts_no_known_environment() -> None:
    control = MemoryControlStore()
    environment = control.create_environment("e", "real", 0)
    cache = EnvironmentCache(control, max_entries=10, max_unknown=100)
    assert await cache.resolve("real", 0.0) == environment
    for start in range(0, 1000, 250):
        await cache.resolve_many([f"junk{i}" for i in range(start, start + 250)], 1.0)
    assert cache.cached("real", 2.0) == environment
    remembered = [i for i in range(1000) if cache.cached(f"junk{i}", 2.0) is None]
    assert remembered == list(range(900, 1000))  # bounded: the newest 100


async def test_concurrent_bodies_share_the_lookup_of_a_key() -> None:
    control = MemoryControlStore()
    cache = EnvironmentCache(control)
    first, second = await asyncio.gather(
        cache.resolve_many(["a", "b", "c"], 0.0), cache.resolve_many(["b", "c", "d"], 0.0)
    )
    assert first == {"a": None, "b": None, "c": None}
    assert second == {"b": None, "c": None, "d": None}
    assert cache.store_queries == 2  # the second asked only for "d"


async def test_past_its_queue_a_lookup_is_refused_at_once() -> None:
    gate = threading.Event()

    def slow(value: int) -> int:
        assert gate.wait(5.0)
        return value

    lookups = BoundedLookups(concurrency=2, queued=3, busy_message="busy")
    admitted = [asyncio.ensure_future(lookups.call(slow, i)) for i in range(5)]
    assert lookups.admitted == 5  # when called: two will run, three wait
    with pytest.raises(StoreUnavailable, match="busy"):
        lookups.call(slow, 99)
    assert lookups.refused == 1
    gate.set()
    assert await asyncio.wait_for(asyncio.gather(*admitted), 5.0) == [0, 1, 2, 3, 4]
    assert lookups.admitted == 0
    assert await lookups.call(slow, 7) == 7
