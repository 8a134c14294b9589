"""The ``LiveStore`` port: views and the counters kept from their transitions.

Adapters: memory (default, one process). See DESIGN.md "Ports and adapters".

The port is shaped so a Redis adapter can run each method as Lua scripts: every call names the
environment and carries the server time (``now``) as an argument, events arrive already checked
(:class:`~headcount.core.events.ViewEvent`), and nothing reads a clock or returns live objects.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from headcount.core.events import ViewEvent

__all__ = ["Counts", "IngestResult", "LiveStats", "LiveStore"]


@dataclass(frozen=True, slots=True)
class Counts:
    views: int
    viewers: int


@dataclass(frozen=True, slots=True)
class IngestResult:
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

    async def counts(self, environment_id: str, id_type: str, id_value: str) -> Counts: ...

    def counts_now(self, environment_id: str, id_type: str, id_value: str) -> Counts | None:
        """:meth:`counts` without a coroutine, for the server's hot path; ``None`` when this
        adapter has to wait for I/O to answer (the caller then awaits :meth:`counts`)."""
        ...

    async def ingest(
        self, environment_id: str, events: Sequence[ViewEvent], now: float
    ) -> IngestResult:
        """Apply events of one environment, in order, received at ``now`` (epoch seconds)."""
        ...

    def ingest_now(
        self, environment_id: str, events: Sequence[ViewEvent], now: float
    ) -> IngestResult | None:
        """:meth:`ingest` without a coroutine, for the server's hot path; ``None``, having
        changed nothing, when this adapter has to wait for I/O (the caller then awaits
        :meth:`ingest`). An adapter answers ``None`` always or never."""
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
