"""What the Redis live store tests share: their time, environment and window, event
helpers, and the ``open_redis`` and ``private_redis`` fixtures (``tests/stores/conftest.py``
re-exports them).

Those tests (``test_redis_*.py``) are what only the Redis live store must do, against real
servers (DESIGN.md "Scale-out"). How it counts is the port's contract
(``test_live_contract_*.py``) and the tracker's rules are the core's (``test_step_twins.py``);
there: its URLs, reads that scale with ids rather than readers, outages and a Redis restarted
empty, lost scripts, healing after a node died between its two steps, cost that follows change,
and a real cluster: single-slot scripts, no hot shard, a slot migration and a failover under
traffic (on a cluster of their own, so the session cluster stays whole).

Time given to the store is a parameter (``T0 + ...``); wall-clock time is only measured, to
bound how long a failing call may take. Every wait is a bounded loop.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from headcount.core.events import ViewEvent
from headcount.stores.redis_connect import parse_redis_url
from headcount.stores.redis_live import RedisLiveStore
from tests.redis_servers import RedisServer, new_key_prefix

__all__ = [
    "DEADLINE",
    "ENV",
    "T0",
    "WINDOW",
    "OpenRedis",
    "ev",
    "fresh_url",
    "open_redis",
    "private_redis",
    "start",
    "video",
]

T0 = 1_800_000_000.0
ENV = "env-1"
WINDOW = 30.0
DEADLINE = 30.0  # seconds a topology change may take to stop hurting traffic

OpenRedis = Callable[..., Awaitable[RedisLiveStore]]


def ev(view: str, name: str, seq: int | None = None, **fields: Any) -> ViewEvent:
    return ViewEvent(name=name, view_id=view, sequence=seq, **fields)


def start(view: str, video: str = "vid", viewer: str | None = None, seq: int = 1) -> ViewEvent:
    return ev(view, "viewstart", seq, starts=True, video_id=video, mux_viewer_id=viewer)


def fresh_url(base: str) -> str:
    return f"{base}?prefix={new_key_prefix()}"


async def video(
    store: RedisLiveStore, now: float, vid: str = "vid", env: str = ENV
) -> tuple[int, int]:
    counts = await store.counts(env, "video_id", vid, now)
    return counts.views, counts.viewers


@pytest.fixture
async def open_redis() -> AsyncIterator[OpenRedis]:
    """``await open_redis(url, **options)``: a Redis live store, started at ``T0`` (unless
    ``start=False``) and closed at the end of the test whatever happens."""
    opened: list[RedisLiveStore] = []

    async def open_(url: str, *, start: bool = True, **options: Any) -> RedisLiveStore:
        options.setdefault("liveness_window", WINDOW)
        options.setdefault("snapshot_interval", 0.0)
        store = RedisLiveStore(parse_redis_url(url), **options)
        opened.append(store)
        if start:
            await store.start(T0)
        return store

    try:
        yield open_
    finally:
        for store in opened:
            await store.close(T0)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A standalone Redis of this test alone (it may be killed, restarted, flushed)."""
    server = RedisServer(tmp_path / "redis")
    server.start()
    try:
        yield server
    finally:
        server.kill()
