"""What the LiveStore contract suite shares (``test_live_contract_events.py``,
``test_live_contract_views.py``): its time, environment and window, event helpers, and the
``open_store`` fixture (``tests/stores/conftest.py`` re-exports it).

Each test opens its stores with ``open_store`` (started at ``T0``, closed at teardown, so no
connection outlives a test). Time is always a parameter: nothing sleeps.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from headcount.core.events import ViewEvent
from headcount.stores.live import LiveStore
from tests.live_adapters import LiveStoreFactory

__all__ = ["ENV", "T0", "WINDOW", "OpenStore", "ev", "open_store", "start", "video"]

T0 = 1_800_000_000.0
ENV = "env-1"
WINDOW = 30.0

OpenStore = Callable[..., Awaitable[LiveStore]]


def ev(view: str, name: str, seq: int | None = None, **fields: Any) -> ViewEvent:
    return ViewEvent(name=name, view_id=view, sequence=seq, **fields)


def start(view: str, video: str = "vid", viewer: str | None = None, seq: int = 1) -> ViewEvent:
    return ev(view, "viewstart", seq, starts=True, video_id=video, mux_viewer_id=viewer)


async def video(
    store: LiveStore, vid: str = "vid", env: str = ENV, now: float = T0
) -> tuple[int, int]:
    counts = await store.counts(env, "video_id", vid, now)
    return counts.views, counts.viewers


@pytest.fixture
async def open_store(live_store_factory: LiveStoreFactory) -> AsyncIterator[OpenStore]:
    """``await open_store(**settings)``: a started store of the adapter under test, closed at
    the end of the test whatever happens."""
    opened: list[LiveStore] = []

    async def open_(**settings: Any) -> LiveStore:
        settings.setdefault("liveness_window", WINDOW)
        store = live_store_factory(**settings)
        opened.append(store)
        await store.start(T0)
        return store

    try:
        yield open_
    finally:
        for store in opened:
            await store.close(T0)
