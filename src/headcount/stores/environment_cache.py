"""env_key -> Environment, cached in memory in front of the (synchronous) ControlStore.

Every beacon names its environment by ``env_key``; looking it up in the database per event
would put a query on the collector's hot path. Found environments are kept for ``ttl`` seconds
(environments are never deleted, so this only bounds how long a renamed key lingers), at most
``max_entries`` of them.

Unknown keys cost nothing twice: anyone can post a body full of made-up keys. They are kept
apart from the found ones (a flood of them never evicts a real environment), at most
``max_unknown`` of them (oldest out first), for ``negative_ttl`` seconds (default 5): **an
environment created after its env_key was looked up is seen within that time** (its events
meanwhile are rejected as ``unknown_env_key``, like those of any unknown key).

The keys a body names that are not cached are looked up together, in one query
(:meth:`EnvironmentCache.resolve_many`; 10,000 unknown keys once cost 10,000 queries and 4.2 s).
A lookup shares the one already in flight for the same key, and runs off the event loop through
:class:`~headcount.stores.lookups.BoundedLookups`: past its queue the collector answers 503.
"""

from __future__ import annotations

import asyncio
import enum
from collections import OrderedDict
from collections.abc import Iterable
from typing import Final, Literal

from headcount.stores.control import ControlStore, Environment
from headcount.stores.lookups import BoundedLookups

__all__ = ["LOOKUPS_QUEUED", "LOOKUP_CONCURRENCY", "MISS", "EnvironmentCache"]


class _Miss(enum.Enum):
    MISS = enum.auto()


MISS: Final = _Miss.MISS  # what :meth:`EnvironmentCache.cached` returns when it must ask

_DEFAULT_TTL: Final[float] = 60.0
_DEFAULT_NEGATIVE_TTL: Final[float] = 5.0
_DEFAULT_MAX_ENTRIES: Final[int] = 10_000
_DEFAULT_MAX_UNKNOWN: Final[int] = 10_000
# Lookups (each one query for all the keys of one body) at a time, and waiting.
LOOKUP_CONCURRENCY: Final = 4
LOOKUPS_QUEUED: Final = 256

_Batch = asyncio.Future[dict[str, Environment]]


class EnvironmentCache:
    def __init__(
        self,
        control: ControlStore,
        *,
        ttl: float = _DEFAULT_TTL,
        negative_ttl: float = _DEFAULT_NEGATIVE_TTL,
        max_entries: int = _DEFAULT_MAX_ENTRIES,
        max_unknown: int = _DEFAULT_MAX_UNKNOWN,
    ) -> None:
        self._control = control
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._max_unknown = max_unknown
        # Oldest first (popitem(last=False) is O(1), where next(iter(dict)) after many
        # deletions from the front walks their holes: see auth/token_cache.py).
        self._found: OrderedDict[str, tuple[float, Environment]] = OrderedDict()
        self._unknown: OrderedDict[str, float] = OrderedDict()  # key -> expires
        self._pending: dict[str, _Batch] = {}  # key -> the lookup in flight that asks for it
        self.lookups = BoundedLookups(
            concurrency=LOOKUP_CONCURRENCY,
            queued=LOOKUPS_QUEUED,
            busy_message="Too many env_keys not yet known here are being looked up; "
            "send the beacons again shortly.",
        )
        self.store_queries = 0  # how often the store was asked (observability and tests)

    def cached(self, env_key: str, now: float) -> Environment | Literal[_Miss.MISS] | None:
        """The cached answer while fresh (no coroutine: the collector's per-request path),
        else :data:`MISS`, and :meth:`resolve_many` asks the store."""
        found = self._found.get(env_key)
        if found is not None and found[0] > now:
            return found[1]
        until = self._unknown.get(env_key)
        if until is not None and until > now:
            return None
        return MISS

    async def resolve(self, env_key: str, now: float) -> Environment | None:
        return (await self.resolve_many((env_key,), now))[env_key]

    async def resolve_many(
        self, env_keys: Iterable[str], now: float
    ) -> dict[str, Environment | None]:
        """Every key's environment (``None``: unknown), asking the store once for all those
        not cached and not already asked for; raises
        :class:`~headcount.errors.StoreUnavailable` when the lookups' queue is full."""
        answers: dict[str, Environment | None] = {}
        waits: list[tuple[str, _Batch]] = []
        ask: list[str] = []
        for env_key in env_keys:
            cached = self.cached(env_key, now)
            if cached is not MISS:
                answers[env_key] = cached
            elif (pending := self._pending.get(env_key)) is not None:
                waits.append((env_key, pending))
            else:
                ask.append(env_key)
        if ask:
            answers.update(await self._ask(ask, now))
        for env_key, batch in waits:
            # Shielded: a request that goes away does not cancel a lookup others wait for.
            answers[env_key] = (await asyncio.shield(batch)).get(env_key)
        return answers

    async def _ask(self, env_keys: list[str], now: float) -> dict[str, Environment | None]:
        # Admitted or refused (a 503) before anything is registered.
        lookup = self.lookups.call(self._control.environments_for_env_keys, env_keys)
        self.store_queries += 1
        batch: _Batch = asyncio.get_running_loop().create_future()
        for env_key in env_keys:
            self._pending[env_key] = batch
        try:
            found = await lookup
        except BaseException as exc:
            batch.set_exception(exc)
            batch.exception()  # retrieved: waiters get it; no "never retrieved" warning
            raise
        finally:
            for env_key in env_keys:
                if self._pending.get(env_key) is batch:
                    del self._pending[env_key]
        batch.set_result(found)
        for env_key in env_keys:
            self._remember(env_key, found.get(env_key), now)
        return {env_key: found.get(env_key) for env_key in env_keys}

    def _remember(self, env_key: str, environment: Environment | None, now: float) -> None:
        if environment is None:
            self._unknown.pop(env_key, None)
            if len(self._unknown) >= self._max_unknown:
                self._unknown.popitem(last=False)
            self._unknown[env_key] = now + self._negative_ttl
            return
        self._unknown.pop(env_key, None)
        self._found.pop(env_key, None)
        if len(self._found) >= self._max_entries:
            self._found.popitem(last=False)
        self._found[env_key] = (now + self._ttl, environment)
