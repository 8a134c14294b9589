"""The ``LiveStore`` port: views and the counters kept from their transitions.

Adapters, chosen by URL in :func:`headcount.stores.live_url.open_live_store`: memory (default,
one process) and Redis / Redis Cluster (any number of stateless nodes). See DESIGN.md "Ports
and adapters" and "Scale-out".

Every call names the environment and carries the server time (``now``) as an argument, events
arrive already checked (:class:`~headcount.core.events.ViewEvent`), and nothing returns live
objects, so an adapter may run each method as scripts on a server.

**Whether a store answers without I/O is decided once**, when the app is built, by
:meth:`LiveStore.immediate`: the memory store returns its synchronous face
(:class:`ImmediateLiveStore`), which the server's hot paths call in the parser callback; a
network store returns ``None`` and every hot path awaits it. Nothing tries one way and falls
back to the other per request.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from headcount.core.events import ViewEvent
from headcount.history.reads import HistorySource

__all__ = ["Counts", "ImmediateLiveStore", "IngestResult", "LiveStats", "LiveStore"]


@dataclass(frozen=True, slots=True)
class Counts:
    views: int
    viewers: int


class IngestResult(NamedTuple):  # not a frozen dataclass: one is built per collector request
    applied: int  # events that were new to the store
    duplicates: int  # events already seen: same view and view_sequence_number


@dataclass(frozen=True, slots=True)
class LiveStats:
    views: int  # views held: happening, paused, not yet started, or ended (tombstones)
    happening: int  # views happening now


class LiveStore(Protocol):
    @property
    def updated_at(self) -> float:
        """Epoch seconds when the counters were last brought up to date (the last sweep)."""
        ...

    @property
    def ready(self) -> bool:
        """Whether the store can answer now (a network store not yet reached is not)."""
        ...

    @property
    def history(self) -> HistorySource:
        """Where this store keeps the history of its counts (headcount.history)."""
        ...

    def immediate(self) -> ImmediateLiveStore | None:
        """This store's synchronous face when it answers without I/O, else ``None``. Asked
        once, when the app is built."""
        ...

    async def counts(self, environment_id: str, id_type: str, id_value: str, now: float) -> Counts:
        """The counts of one counter key as of ``now``; an id nobody watches reads 0/0."""
        ...

    async def ingest(
        self, environment_id: str, events: Sequence[ViewEvent], now: float
    ) -> IngestResult:
        """Apply events of one environment, in order, received at ``now`` (epoch seconds).
        Returns only once they are stored: the collector acknowledges nothing else. Raises
        :class:`~headcount.errors.StoreUnavailable` when the store cannot be reached."""
        ...

    async def sweep(self, now: float) -> int:
        """Drop views silent longer than the liveness window; returns how many. Idempotent:
        each view is removed, and its transitions applied, exactly once."""
        ...

    async def save(self, now: float) -> None:
        """Persist live state where the adapter keeps it (no-op when it has nowhere to)."""
        ...

    async def stats(self) -> LiveStats: ...

    async def start(self, now: float) -> None: ...

    async def close(self, now: float) -> None: ...


class ImmediateLiveStore(LiveStore, Protocol):
    """A live store that never waits for I/O (memory): the same reads and writes, without a
    coroutine, for the hot paths answered in the parser callback."""

    def counts_now(self, environment_id: str, id_type: str, id_value: str) -> Counts: ...

    def ingest_now(
        self, environment_id: str, events: Sequence[ViewEvent], now: float
    ) -> IngestResult: ...
