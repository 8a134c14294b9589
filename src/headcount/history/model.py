"""What the history reads answer, and the port every live store's history implements.

:class:`LiveReads` is what the System API (``/system/v1/live``), the Monitoring API, the CLI's
``headcount top`` and the dashboard read; ``runtime.history`` is the running one. Times are
epoch seconds (server clock); a peak nobody reached yet (0 views) has no time (``None``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final, Protocol

__all__ = ["ENVIRONMENT", "LiveDetail", "LiveEntry", "LiveReads", "Minute", "iso_time"]

# The id type of an environment's own totals (all its happening views, whatever their ids);
# its id is the environment id. Not an ``aud``: no viewer token reads it.
ENVIRONMENT: Final = "environment"


@dataclass(frozen=True, slots=True)
class Minute:
    minute_start: float  # epoch seconds, a multiple of 60
    views: int  # at the minute's end (or now, for the current minute)
    viewers: int
    max_views: int  # the most during the minute
    max_viewers: int


@dataclass(frozen=True, slots=True)
class LiveEntry:
    id_type: str
    id: str
    views: int
    viewers: int
    peak_views: int  # the most within the retention window
    peak_viewers: int
    peak_views_at: float | None
    peak_viewers_at: float | None


@dataclass(frozen=True, slots=True)
class LiveDetail:
    id_type: str
    id: str
    views: int
    viewers: int
    updated_at: float  # when the live counters were last brought up to date (the last sweep)
    peak_views: int
    peak_views_at: float | None
    peak_viewers: int
    peak_viewers_at: float | None
    series: list[Minute]  # oldest first, one per minute, within the retention window


class LiveReads(Protocol):
    async def top(
        self, environment_id: str, id_type: str | None, limit: int, page: int, now: float
    ) -> list[LiveEntry]:
        """The ids with most views now (then most viewers, then id), ``limit`` per page,
        ``page`` from 1; ``id_type`` None: every id type. Ids nobody watches are not listed."""
        ...

    async def detail(self, environment_id: str, id_type: str, id: str, now: float) -> LiveDetail:
        """One counter key: now, its peaks and its series (an id never seen reads all 0)."""
        ...

    async def environment(self, environment_id: str, now: float) -> LiveDetail:
        """The environment's totals: every happening view, whatever its ids (id_type
        :data:`ENVIRONMENT`, id the environment id)."""
        ...


def iso_time(seconds: float | None) -> str | None:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds), as the counts API writes times."""
    if seconds is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(seconds)))
