"""The running service: settings, the two stores, and the background work they own.

Nothing starts in a constructor: :meth:`Runtime.start` and :meth:`Runtime.stop` are called from
the app's ASGI ``lifespan`` (uvicorn runs it at start-up and on a graceful shutdown).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from headcount.errors import StoreUnavailable
from headcount.history.model import LiveReads
from headcount.history.reads import HistoryReads
from headcount.metrics import Metrics
from headcount.settings import Settings
from headcount.stores.control import ControlStore
from headcount.stores.live import LiveStore

__all__ = ["Clock", "Periodic", "Runtime"]

log = logging.getLogger("headcount")

Clock = Callable[[], float]


@dataclass(frozen=True)
class Periodic:
    """Background work: ``run(now)`` every ``interval`` seconds while the runtime is up."""

    name: str
    interval: float
    run: Callable[[float], Awaitable[None]]


@dataclass
class Runtime:
    settings: Settings
    control: ControlStore
    live: LiveStore
    clock: Clock = time.time
    periodic: list[Periodic] = field(default_factory=list)
    on_stop: list[Callable[[float], Awaitable[None]]] = field(default_factory=list)
    # Called with a key id whenever this process deletes a signing key, so caches of verified
    # tokens and public keys forget it at once (other nodes learn it by polling the store).
    on_signing_key_deleted: list[Callable[[str], None]] = field(default_factory=list)
    # Counters every surface adds to; served at GET /metrics.
    metrics: Metrics = field(default_factory=Metrics)
    # Set when the server begins to stop (uvicorn's first shutdown call, then stop()): /readyz
    # answers 503 from then on, so a balancer sends no new traffic while requests drain.
    shutting_down: bool = field(default=False, init=False)
    # The history reads (peaks, series, top ids) over the live store's history.
    history: LiveReads = field(init=False)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list, init=False, repr=False)

    def __post_init__(self) -> None:
        self.history = HistoryReads(self.live.history, self.live)

    def every(self, name: str, interval: float, run: Callable[[float], Awaitable[None]]) -> None:
        self.periodic.append(Periodic(name, interval, run))

    def signing_key_deleted(self, key_id: str) -> None:
        for forget in self.on_signing_key_deleted:
            forget(key_id)

    async def start(self) -> None:
        await self.live.start(self.clock())
        for job in self.periodic:
            self._tasks.append(asyncio.create_task(self._loop(job), name=f"headcount:{job.name}"))

    async def stop(self) -> None:
        self.shutting_down = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        now = self.clock()
        for hook in self.on_stop:
            await hook(now)
        await self.live.close(now)
        self.control.close()
        # Operators (and tests/e2e) read this line as proof the shutdown hooks ran.
        log.info("Headcount stopped cleanly")

    async def _loop(self, job: Periodic) -> None:
        failing = False
        while True:
            await asyncio.sleep(job.interval)
            try:
                await job.run(self.clock())
            except StoreUnavailable as exc:
                # An outage, not a bug: one line when it starts, one when it ends, not a
                # traceback every interval.
                if not failing:
                    log.warning("background job %s paused: %s", job.name, exc.message)
                failing = True
                continue
            except Exception:  # keep the loop alive; the failure is logged, not swallowed
                log.exception("background job %s failed", job.name)
                continue
            if failing:
                log.info("background job %s running again", job.name)
                failing = False
