"""Assemble a :class:`~headcount.runtime.Runtime` from settings: open the stores by URL and
register the background work that belongs to them."""

from __future__ import annotations

import time

from headcount.metrics import Histogram
from headcount.runtime import Runtime
from headcount.settings import Settings
from headcount.stores.live import LiveStore
from headcount.stores.memory import MemoryLiveStore
from headcount.stores.sql import open_control_store

__all__ = [
    "build_runtime",
    "check_live_url",
    "is_memory_url",
    "open_live_store",
    "register_live_jobs",
    "register_store_latencies",
]


def is_memory_url(url: str) -> bool:
    return url.startswith("memory://")


def check_live_url(url: str) -> None:
    """Refuse a live-store URL no adapter takes, with what to write instead (ValueError)."""
    if not is_memory_url(url):
        from headcount.stores.redis_connect import parse_redis_url

        parse_redis_url(url)


def open_live_store(settings: Settings) -> LiveStore:
    """The live store the URL names: the one place adapters are chosen by scheme."""
    if is_memory_url(settings.live_url):
        return MemoryLiveStore.from_settings(settings)
    from headcount.stores.redis_connect import parse_redis_url
    from headcount.stores.redis_live import RedisLiveStore

    return RedisLiveStore.from_settings(settings, parse_redis_url(settings.live_url))


def build_runtime(settings: Settings) -> Runtime:
    control = open_control_store(settings.database_url)
    live = open_live_store(settings)
    runtime = Runtime(settings=settings, control=control, live=live)
    register_live_jobs(runtime)
    register_store_latencies(runtime)
    return runtime


STORE_DURATION = "headcount_store_duration_seconds"


def register_store_latencies(runtime: Runtime) -> None:
    """Export the round trips of the stores that have them: an adapter that talks to a server
    keeps a ``latency`` :class:`~headcount.metrics.Histogram`, observed once per Redis
    pipeline (a batch of calls) or per control-store query or transaction; the memory
    adapters have none (nothing to wait for)."""
    help = (
        "Round trips to a store: one per Redis pipeline (every call of an event-loop turn "
        "together), one per control-store query or transaction."
    )
    settings = runtime.settings
    live_scheme = settings.live_url.partition(":")[0]
    for store, backend, adapter in (
        ("live", "redis_cluster" if "cluster" in live_scheme else "redis", runtime.live),
        ("control", settings.database_url.partition(":")[0].partition("+")[0], runtime.control),
    ):
        latency = getattr(adapter, "latency", None)
        if isinstance(latency, Histogram):
            runtime.metrics.add_histogram(
                STORE_DURATION, help, latency, store=store, backend=backend
            )


def register_live_jobs(runtime: Runtime) -> None:
    """The live store's background work: the sweeper (expires silent views, which moves
    ``updated_at``), periodic saves of live state (also saved on shutdown) and, for the memory
    store with a state file, the journal's fsync timer."""
    live = runtime.live
    metrics = runtime.metrics
    duration = metrics.histogram(
        "headcount_sweep_duration_seconds",
        "Time each sweep took (expiring silent views and moving updated_at).",
    )
    expired = metrics.counter(
        "headcount_sweep_expired_views_total", "Views expired by the sweeper (silent too long)."
    )

    async def sweep(now: float) -> None:
        started = time.perf_counter()
        expired.value += await live.sweep(now)
        duration.since(started)

    runtime.every("live-sweep", runtime.settings.sweep_interval, sweep)
    if runtime.settings.save_interval > 0:
        runtime.every("live-save", runtime.settings.save_interval, live.save)
    if isinstance(live, MemoryLiveStore) and live.state_file is not None:
        interval = runtime.settings.journal_fsync_interval
        runtime.every("live-journal-fsync", interval, live.sync_journal)
