"""EnvironmentCache.cached answers from memory only while an entry is fresh."""

from __future__ import annotations

import pytest

from headcount.stores.control import Environment
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.environment_cache import MISS, EnvironmentCache

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
