"""The recording rules of history (pure: ``now`` is always an argument).

One :class:`KeyHistory` per counter key (and one per environment). A live store calls
:func:`observe` with a key's new ``(views, viewers)`` where it moves them — on a transition or
when the sweep applies one, never per heartbeat — and the rules here do the rest:

* **Minutes.** The minute holding ``now`` (``floor(now / 60)``) gets the value at its end (the
  last one observed) and its maximum. A minute starts with the value carried from before, so
  its maximum is at least that. Minutes without a change are not stored: a reader carries the
  previous value forward (:func:`read`). Entries are ``[minute, views, viewers, max_views,
  max_viewers]`` flat in one ``array('I')`` (20 bytes a minute).
* **Retention.** Minutes older than the window (``retention`` seconds) are dropped; the value
  of the last dropped one is kept (``base``) so the first minutes of the window still read
  right. A key whose views are 0 and that has not moved for a whole window has nothing left
  to say: :func:`expired` tells its owner to forget it.
* **Peaks** are the most views (viewers) within the window and when they were first reached,
  to the second. Once a peak ages out of the window, the next one is found in the kept minutes
  (then its time is the start of the minute it was reached in).

A clock stepping back never rewrites an older minute: the value goes into the last one kept.
"""

from __future__ import annotations

from array import array
from typing import Final

from headcount.history.model import Minute

__all__ = ["MINUTE", "STRIDE", "KeyHistory", "Reading", "expired", "observe", "read"]

MINUTE: Final = 60
STRIDE: Final = 5  # array items per kept minute


class KeyHistory:
    __slots__ = (
        "base_viewers",
        "base_views",
        "changed_at",
        "minutes",
        "peak_viewers",
        "peak_viewers_at",
        "peak_views",
        "peak_views_at",
        "viewers",
        "views",
    )

    def __init__(self) -> None:
        self.views = 0
        self.viewers = 0
        self.changed_at = 0.0
        self.peak_views = 0
        self.peak_views_at: float | None = None
        self.peak_viewers = 0
        self.peak_viewers_at: float | None = None
        self.base_views = 0  # the value carried into the window from dropped minutes
        self.base_viewers = 0
        self.minutes: array[int] = array("I")


def _first_kept(now: float, retention: float) -> int:
    """The oldest minute still inside the window ending at ``now``."""
    return int((now - retention) // MINUTE) + 1


def observe(history: KeyHistory, views: int, viewers: int, now: float, retention: float) -> None:
    """The key's counts are now ``(views, viewers)``."""
    m = history.minutes
    minute = int(now // MINUTE)
    if m and m[-STRIDE] >= minute:  # this minute again (or the clock stepped back)
        m[-4] = views
        m[-3] = viewers
        if views > m[-2]:
            m[-2] = views
        if viewers > m[-1]:
            m[-1] = viewers
    else:
        m.extend((minute, views, viewers, max(views, history.views), max(viewers, history.viewers)))
    history.views = views
    history.viewers = viewers
    history.changed_at = now
    if views > history.peak_views:
        history.peak_views, history.peak_views_at = views, now
    if viewers > history.peak_viewers:
        history.peak_viewers, history.peak_viewers_at = viewers, now
    _trim(history, now, retention)


def _trim(history: KeyHistory, now: float, retention: float) -> None:
    m = history.minutes
    first = _first_kept(now, retention)
    drop = 0
    while drop < len(m) and m[drop] < first:
        drop += STRIDE
    if drop:
        history.base_views, history.base_viewers = m[drop - 4], m[drop - 3]
        del m[:drop]
    start = float(first * MINUTE)
    if history.peak_views_at is not None and history.peak_views_at < start:
        history.peak_views, history.peak_views_at = _peak(history, 1, 3, start)
    if history.peak_viewers_at is not None and history.peak_viewers_at < start:
        history.peak_viewers, history.peak_viewers_at = _peak(history, 2, 4, start)


def _peak(history: KeyHistory, end: int, most: int, start: float) -> tuple[int, float | None]:
    """The highest value in the kept minutes (or carried into the window) and when."""
    m = history.minutes
    base = history.base_views if end == 1 else history.base_viewers
    best, at = base, (start if base else None)
    for i in range(0, len(m), STRIDE):
        if m[i + most] > best:
            best, at = m[i + most], float(max(m[i] * MINUTE, start))
    return best, at


def expired(history: KeyHistory, now: float, retention: float) -> bool:
    """Whether nothing about the key is left inside the window (its owner may forget it)."""
    return history.views == 0 and now - history.changed_at >= retention


class Reading:
    """A key's history as read at ``now``: its peaks within the window, and its series."""

    __slots__ = ("peak_viewers", "peak_viewers_at", "peak_views", "peak_views_at", "series")

    def __init__(
        self,
        peak_views: int,
        peak_views_at: float | None,
        peak_viewers: int,
        peak_viewers_at: float | None,
        series: list[Minute],
    ) -> None:
        self.peak_views = peak_views
        self.peak_views_at = peak_views_at
        self.peak_viewers = peak_viewers
        self.peak_viewers_at = peak_viewers_at
        self.series = series


def read(
    history: KeyHistory | None, now: float, retention: float, *, series: bool = True
) -> Reading:
    """Peaks and (with ``series``) one :class:`Minute` per minute from the first one the key
    has inside the window to the current one, gaps carried forward. Reads never change the
    record: a copy is trimmed when the window moved past some of it."""
    if history is None:
        return Reading(0, None, 0, None, [])
    first = _first_kept(now, retention)
    m = history.minutes
    if (m and m[0] < first) or _peak_aged(history, first * MINUTE):
        copy = KeyHistory()
        for name in KeyHistory.__slots__:
            setattr(copy, name, getattr(history, name))
        copy.minutes = array("I", m)
        _trim(copy, now, retention)
        history, m = copy, copy.minutes
    out: list[Minute] = []
    if series and (m or history.base_views or history.base_viewers):
        now_minute = int(now // MINUTE)
        carried = (history.base_views, history.base_viewers)
        minute = first if (history.base_views or history.base_viewers or not m) else m[0]
        i = 0
        while minute <= now_minute:
            if i < len(m) and m[i] == minute:
                v, u, mv, mu = m[i + 1], m[i + 2], m[i + 3], m[i + 4]
                carried = (v, u)
                i += STRIDE
            else:
                v, u = carried
                mv, mu = v, u
            out.append(Minute(float(minute * MINUTE), v, u, mv, mu))
            minute += 1
    return Reading(
        history.peak_views,
        history.peak_views_at,
        history.peak_viewers,
        history.peak_viewers_at,
        out,
    )


def _peak_aged(history: KeyHistory, start: float) -> bool:
    return any(
        at is not None and at < start for at in (history.peak_views_at, history.peak_viewers_at)
    )
