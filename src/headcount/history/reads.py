"""The read service (:class:`~headcount.history.model.LiveReads`) over any live store's
history: the store keeps the records (:class:`HistorySource`), this turns them into answers
with the same rules (:func:`~headcount.history.record.read`) whatever the store."""

from __future__ import annotations

from typing import Protocol

from headcount.history.model import ENVIRONMENT, LiveDetail, LiveEntry
from headcount.history.record import KeyHistory, read

__all__ = ["HistoryReads", "HistorySource", "Ranked"]

Ranked = tuple[str, str, KeyHistory]  # (id_type, id, its record)


class HistorySource(Protocol):
    """Where a live store keeps its history records."""

    @property
    def retention(self) -> float: ...

    async def record(
        self, environment_id: str, id_type: str, id: str, now: float
    ) -> KeyHistory | None:
        """The record of one key (``id_type`` may be :data:`ENVIRONMENT`), or None."""
        ...

    async def ranked(
        self, environment_id: str, id_type: str | None, limit: int, offset: int, now: float
    ) -> list[Ranked]:
        """Records of the keys with most views now, best first, from ``offset``; only keys
        with views."""
        ...


class _Updated(Protocol):
    @property
    def updated_at(self) -> float: ...


class HistoryReads:
    def __init__(self, source: HistorySource, live: _Updated) -> None:
        self.source = source
        self.live = live

    async def top(
        self, environment_id: str, id_type: str | None, limit: int, page: int, now: float
    ) -> list[LiveEntry]:
        ranked = await self.source.ranked(environment_id, id_type, limit, (page - 1) * limit, now)
        retention = self.source.retention
        entries = []
        for kind, id_value, history in ranked:
            got = read(history, now, retention, series=False)
            entries.append(
                LiveEntry(
                    kind,
                    id_value,
                    history.views,
                    history.viewers,
                    got.peak_views,
                    got.peak_viewers,
                    got.peak_views_at,
                    got.peak_viewers_at,
                )
            )
        return entries

    async def detail(self, environment_id: str, id_type: str, id: str, now: float) -> LiveDetail:
        history = await self.source.record(environment_id, id_type, id, now)
        got = read(history, now, self.source.retention)
        return LiveDetail(
            id_type,
            id,
            history.views if history else 0,
            history.viewers if history else 0,
            self.live.updated_at,
            got.peak_views,
            got.peak_views_at,
            got.peak_viewers,
            got.peak_viewers_at,
            got.series,
        )

    async def environment(self, environment_id: str, now: float) -> LiveDetail:
        return await self.detail(environment_id, ENVIRONMENT, environment_id, now)
