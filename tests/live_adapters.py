"""Every LiveStore adapter, for the one contract suite (as limits' ``all_storage``).

``live_store_factory`` is parametrized over ``memory``, ``redis`` (a standalone redis-server
the suite started) and ``redis-cluster`` (a real 3-master Redis Cluster): a test asks it for a
store with the settings it needs and gets the same behaviour from each. Redis stores get a
fresh key prefix each, so tests share the servers without clearing them, and read counts
straight from Redis (no per-node read cache) unless a test asks for one.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest

from headcount.stores.live import LiveStore
from headcount.stores.memory import MemoryLiveStore
from headcount.stores.redis_connect import parse_redis_url
from headcount.stores.redis_live import RedisLiveStore
from tests.redis_cluster import RedisCluster
from tests.redis_servers import RedisServer, new_key_prefix

__all__ = ["ADAPTERS", "LiveStoreFactory", "live_store_factory", "redis_url_of"]

ADAPTERS = ("memory", "redis", "redis-cluster")


class LiveStoreFactory(Protocol):
    adapter: str

    def __call__(
        self,
        *,
        liveness_window: float = 60.0,
        count_paused: bool = False,
        partitions: int = 4,
        snapshot_interval: float = 0.0,
    ) -> LiveStore: ...


def redis_url_of(adapter: str, request: pytest.FixtureRequest) -> str:
    """The live-store URL of a Redis adapter, with a fresh key prefix."""
    if adapter == "redis":
        server: RedisServer = request.getfixturevalue("redis_standalone")
        return f"{server.url}?prefix={new_key_prefix()}"
    cluster: RedisCluster = request.getfixturevalue("redis_cluster")
    return f"{cluster.seed_url}?prefix={new_key_prefix()}"


class _Factory:
    def __init__(self, adapter: str, request: pytest.FixtureRequest) -> None:
        self.adapter = adapter
        self._request = request
        self.made: list[LiveStore] = []

    def __call__(
        self,
        *,
        liveness_window: float = 60.0,
        count_paused: bool = False,
        partitions: int = 4,
        snapshot_interval: float = 0.0,
    ) -> LiveStore:
        store: LiveStore
        if self.adapter == "memory":
            store = MemoryLiveStore(
                liveness_window=liveness_window, count_paused=count_paused, partitions=partitions
            )
        else:
            store = RedisLiveStore(
                parse_redis_url(redis_url_of(self.adapter, self._request)),
                liveness_window=liveness_window,
                count_paused=count_paused,
                partitions=partitions,
                subpartitions=2,  # more than one, so the sub-partition paths run
                counter_shards=2,
                snapshot_interval=snapshot_interval,
            )
        self.made.append(store)
        return store


@pytest.fixture(params=ADAPTERS)
def live_store_factory(request: pytest.FixtureRequest) -> Iterator[LiveStoreFactory]:
    factory = _Factory(request.param, request)
    yield factory
