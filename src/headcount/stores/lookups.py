"""Store lookups an anonymous request can cause, bounded: at most ``concurrency`` at a time
and ``queued`` more waiting; past that a lookup is refused at once with
:class:`~headcount.errors.StoreUnavailable` (a 503 envelope), rather than queued without bound.

Who uses it: the collector's env_key lookups (:mod:`~headcount.stores.environment_cache`) and
the ``kid`` lookups of ``/counts`` tokens (:mod:`~headcount.auth.keyring`). Both remember what
they found and what the store did not know (a short negative cache), and share one lookup
among the requests waiting for the same key, so only a flood of keys never seen before fills
the queue. A 503 is what the callers retry: mux-embed re-sends the batch, the widget and the
CLI poll again, where a refusal would make them stop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import TypeVar

from headcount.errors import StoreUnavailable

__all__ = ["BoundedLookups"]

T = TypeVar("T")


class BoundedLookups:
    def __init__(self, *, concurrency: int, queued: int, busy_message: str) -> None:
        self._running = asyncio.Semaphore(concurrency)
        self._limit = concurrency + queued
        self._busy_message = busy_message
        self.admitted = 0  # lookups running or waiting (observability and tests)
        self.refused = 0  # lookups refused because the queue was full

    def call(self, lookup: Callable[..., T], *args: object) -> Coroutine[None, None, T]:
        """``lookup(*args)`` in a thread once a slot is free. Admitted (or refused with
        :class:`StoreUnavailable`) now, when called, not when the coroutine first runs: a
        burst of requests in one loop round sees the queue fill."""
        if self.admitted >= self._limit:
            self.refused += 1
            raise StoreUnavailable(self._busy_message)
        self.admitted += 1
        return self._run(lookup, args)

    async def _run(self, lookup: Callable[..., T], args: tuple[object, ...]) -> T:
        try:
            async with self._running:
                return await asyncio.to_thread(lookup, *args)
        finally:
            self.admitted -= 1
