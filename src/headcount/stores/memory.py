"""Memory adapter of the LiveStore port — placeholder: every id reads 0/0 until the collector
issue lands."""

from __future__ import annotations

from headcount.stores.live import Counts

_ZERO = Counts(0, 0)


class MemoryLiveStore:
    def __init__(self) -> None:
        self._updated_at = 0.0

    @property
    def updated_at(self) -> float:
        return self._updated_at

    async def counts(self, environment_id: str, id_type: str, id_value: str) -> Counts:
        return _ZERO

    async def start(self, now: float) -> None:
        self._updated_at = now

    async def close(self, now: float) -> None:
        return None
