"""env_key -> Environment, cached in memory in front of the (synchronous) ControlStore.

Every beacon names its environment by ``env_key``; looking it up in the database per event
would put a query on the collector's hot path. Found environments are kept for ``ttl`` seconds
(environments are never deleted, so this only bounds how long a renamed key lingers); unknown
keys are remembered for ``negative_ttl`` seconds, so a client posting garbage keys cannot
hammer the database, and a freshly created environment is seen within that time. A miss runs
the store query off the event loop, and concurrent misses for one key share a single query.
The cache holds at most ``max_entries`` keys (oldest evicted first).
"""

from __future__ import annotations

import asyncio
import enum
from typing import Final, Literal

from headcount.stores.control import ControlStore, Environment

__all__ = ["MISS", "EnvironmentCache"]


class _Miss(enum.Enum):
    MISS = enum.auto()


MISS: Final = _Miss.MISS  # what :meth:`EnvironmentCache.cached` returns when it must ask

_DEFAULT_TTL: Final[float] = 60.0
_DEFAULT_NEGATIVE_TTL: Final[float] = 5.0
_DEFAULT_MAX_ENTRIES: Final[int] = 10_000


class EnvironmentCache:
    def __init__(
        self,
        control: ControlStore,
        *,
        ttl: float = _DEFAULT_TTL,
        negative_ttl: float = _DEFAULT_NEGATIVE_TTL,
        max_entries: int = _DEFAULT_MAX_ENTRIES,
    ) -> None:
        self._control = control
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._entries: dict[str, tuple[float, Environment | None]] = {}  # key -> (expires, env)
        self._pending: dict[str, asyncio.Future[Environment | None]] = {}

    def cached(self, env_key: str, now: float) -> Environment | Literal[_Miss.MISS] | None:
        """The cached answer while fresh (no coroutine: the collector's per-request path),
        else :data:`MISS`, and :meth:`resolve` asks the store."""
        entry = self._entries.get(env_key)
        if entry is not None and entry[0] > now:
            return entry[1]
        return MISS

    async def resolve(self, env_key: str, now: float) -> Environment | None:
        entry = self._entries.get(env_key)
        if entry is not None and entry[0] > now:
            return entry[1]
        pending = self._pending.get(env_key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Environment | None] = asyncio.get_running_loop().create_future()
        self._pending[env_key] = future
        try:
            environment = await asyncio.to_thread(self._control.environment_for_env_key, env_key)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters get it; no "never retrieved" warning
            raise
        finally:
            del self._pending[env_key]
        future.set_result(environment)
        self._remember(env_key, environment, now)
        return environment

    def _remember(self, env_key: str, environment: Environment | None, now: float) -> None:
        self._entries.pop(env_key, None)
        if len(self._entries) >= self._max_entries:
            del self._entries[next(iter(self._entries))]
        ttl = self._ttl if environment is not None else self._negative_ttl
        self._entries[env_key] = (now + ttl, environment)
