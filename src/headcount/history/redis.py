"""History kept in Redis beside the counters (the Redis live store's). Not filled in yet:
reads answer as if nothing was recorded."""

from __future__ import annotations

from headcount.history.reads import Ranked
from headcount.history.record import KeyHistory

__all__ = ["RedisHistory"]


class RedisHistory:
    def __init__(self, retention: float) -> None:
        self._retention = retention

    @property
    def retention(self) -> float:
        return self._retention

    async def record(
        self, environment_id: str, id_type: str, id: str, now: float
    ) -> KeyHistory | None:
        return None

    async def ranked(
        self, environment_id: str, id_type: str | None, limit: int, offset: int, now: float
    ) -> list[Ranked]:
        return []
