"""Fixtures shared by the whole suite.

``control`` is the in-memory ControlStore (the SQL adapters have their own contract tests);
``app``/``client`` drive the real ASGI app in-process with httpx, with a fake clock the test
moves by hand (time is a parameter: no sleeps).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from headcount.http.app import HeadcountApp
from headcount.runtime import Runtime
from headcount.settings import Settings, load_settings
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.memory import MemoryLiveStore
from tests.live_adapters import live_store_factory  # noqa: F401
from tests.redis_cluster import own_redis_cluster, redis_cluster  # noqa: F401
from tests.redis_servers import redis_standalone, unique_prefix  # noqa: F401


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            "database_url": f"sqlite:///{tmp_path / 'headcount.db'}",
            "state_file": str(tmp_path / "live-state.json"),
        },
        environ={},
    )


@pytest.fixture
def control() -> MemoryControlStore:
    return MemoryControlStore()


@pytest.fixture
def runtime(settings: Settings, control: MemoryControlStore, clock: FakeClock) -> Runtime:
    return Runtime(settings=settings, control=control, live=MemoryLiveStore(), clock=clock)


@pytest.fixture
async def app(runtime: Runtime, clock: FakeClock) -> AsyncIterator[HeadcountApp]:
    application = HeadcountApp(runtime, clock=clock)
    await runtime.start()
    try:
        yield application
    finally:
        await runtime.stop()


@pytest.fixture
async def client(app: HeadcountApp) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
