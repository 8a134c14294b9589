"""Assemble a :class:`~headcount.runtime.Runtime` from settings: open the stores by URL and
register the background work that belongs to them."""

from __future__ import annotations

from headcount.runtime import Runtime
from headcount.settings import Settings
from headcount.stores.live import LiveStore
from headcount.stores.memory import MemoryLiveStore
from headcount.stores.sql import open_control_store

__all__ = ["build_runtime", "open_live_store"]


def open_live_store(settings: Settings) -> LiveStore:
    if settings.live_url.startswith("memory://"):
        return MemoryLiveStore()
    raise ValueError(f"unsupported live store URL: {settings.live_url!r} (use memory://)")


def build_runtime(settings: Settings) -> Runtime:
    control = open_control_store(settings.database_url)
    live = open_live_store(settings)
    return Runtime(settings=settings, control=control, live=live)
