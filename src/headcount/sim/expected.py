"""The counts a correct server shows for the beacons it received, recomputed from scratch.

This is the simulator's oracle, written from DESIGN.md's words and independent of the collector's
code: a view is identified by ``(env_key, view_id)``; it is **happening** from ``viewstart`` (or
any event carrying ``view_start``) until ``viewend``, while not paused (``pause``/``ended`` leave,
``play``/``playing`` return; ``count_paused`` turns that off) and while the last POST that carried
one of its events arrived within the liveness window (receive time, never the client's clock).
Its viewer is ``viewer_user_id``, else ``mux_viewer_id``, else the view itself; both ids arrive
only in full-state events and are remembered. Events are deduped by ``(view_id,
view_sequence_number)``.

A view silent for longer than the window is forgotten, as the server's sweeper forgets it; if it
speaks again it is a new view known only through its deltas (``revived`` counts those, and the
audience is built so that only abandoned views ever go silent: see ``audience.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from headcount.stores.live import Counts

__all__ = ["ExpectedCounts"]

LEAVE_EVENTS = frozenset({"pause", "ended"})
RETURN_EVENTS = frozenset({"play", "playing"})


@dataclass(slots=True)
class _View:
    video_id: str | None
    last_heard: float
    started: bool = False
    paused: bool = False
    viewer_user_id: str | None = None
    mux_viewer_id: str | None = None
    sequences: set[int] = field(default_factory=set)


def _identity(view_id: str, view: _View) -> str:
    # Tagged, so that a user id and a cookie id that happen to be equal stay two viewers.
    if view.viewer_user_id is not None:
        return "user:" + view.viewer_user_id
    if view.mux_viewer_id is not None:
        return "cookie:" + view.mux_viewer_id
    return "view:" + view_id


class ExpectedCounts:
    def __init__(self, liveness_window: float, *, count_paused: bool = False) -> None:
        self.liveness_window = liveness_window
        self.count_paused = count_paused
        self._open: dict[tuple[str, str], _View] = {}
        self._ended: set[tuple[str, str]] = set()
        self.revived = 0
        self.duplicates = 0

    def deliver(self, events: Iterable[Mapping[str, Any]], at: float) -> None:
        """The server received a POST carrying ``events`` at time ``at``."""
        for event in events:
            view_id = event.get("view_id")
            env_key = event.get("env_key")
            if not isinstance(view_id, str) or not isinstance(env_key, str):
                continue
            key = (env_key, view_id)
            if key in self._ended:
                self.duplicates += 1
                continue
            view = self._open.get(key)
            if view is not None and at - view.last_heard > self.liveness_window:
                del self._open[key]  # the sweeper dropped it meanwhile
                view = None
                self.revived += 1
            if view is None:
                view = self._open[key] = _View(video_id=None, last_heard=at)
            sequence = event.get("view_sequence_number")
            if isinstance(sequence, int):
                if sequence in view.sequences:
                    self.duplicates += 1
                    continue
                view.sequences.add(sequence)
            self._apply(key, view, event, at)

    def _apply(
        self, key: tuple[str, str], view: _View, event: Mapping[str, Any], at: float
    ) -> None:
        view.last_heard = at
        name = event.get("event")
        if isinstance(event.get("video_id"), str):
            view.video_id = event["video_id"]
        if isinstance(event.get("viewer_user_id"), str):
            view.viewer_user_id = event["viewer_user_id"]
        if isinstance(event.get("mux_viewer_id"), str):
            view.mux_viewer_id = event["mux_viewer_id"]
        if name == "viewstart" or "view_start" in event:
            view.started = True
        if name in LEAVE_EVENTS:
            view.paused = True
        elif name in RETURN_EVENTS:
            view.paused = False
        if name == "viewend":
            del self._open[key]
            self._ended.add(key)

    def happening(self, now: float) -> list[tuple[str, str]]:
        """``(video_id, viewer identity)`` of every view happening at ``now``."""
        out: list[tuple[str, str]] = []
        for (_, view_id), view in self._open.items():
            if (
                view.started
                and view.video_id is not None
                and (self.count_paused or not view.paused)
                and now - view.last_heard <= self.liveness_window
            ):
                out.append((view.video_id, _identity(view_id, view)))
        return out

    def by_video(self, now: float) -> dict[str, Counts]:
        """``video_id`` -> views happening and distinct viewers among them, at ``now``."""
        views: dict[str, int] = {}
        viewers: dict[str, set[str]] = {}
        for video_id, viewer in self.happening(now):
            views[video_id] = views.get(video_id, 0) + 1
            viewers.setdefault(video_id, set()).add(viewer)
        return {v: Counts(views[v], len(viewers[v])) for v in views}

    def totals(self, now: float) -> Counts:
        """Views happening at ``now`` across all videos, and distinct viewers among them."""
        happening = self.happening(now)
        return Counts(len(happening), len({viewer for _, viewer in happening}))

    def counted_until(self, env_key: str, view_id: str) -> float | None:
        """Until when the view counts if nothing more arrives (None: it does not count now)."""
        view = self._open.get((env_key, view_id))
        if view is None or not view.started or (view.paused and not self.count_paused):
            return None
        return view.last_heard + self.liveness_window

    def silent_views(self, now: float) -> set[str]:
        """Ids of started, unfinished views the server has not heard from within the window."""
        return {
            view_id
            for (_, view_id), view in self._open.items()
            if view.started and now - view.last_heard > self.liveness_window
        }
