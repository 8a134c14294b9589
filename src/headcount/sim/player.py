"""mux-embed's client behaviour for one monitored player in one tab, in simulated time.

It queues every event, POSTs the queue every 10 s from the first queued event, flushes at once on
``viewstart``/``ended``/``viewend``, emits ``hb`` 10 s after the latest event while playing and
nothing while paused, re-sends a failed batch whole (with everything queued after it) after the
SDK's backoff ``(1 + random * 2^(failures-1)) * 10 s``, and on page unload sends the final batch
twice (``sendBeacon`` + keepalive ``fetch``). See ``reference/beacons.md`` §1.3, §3.3 and §3.5.

Time is a parameter: every method takes the simulated time ``t`` in seconds since the start of the
run; client timestamps are ``epoch_ms + t * 1000``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from headcount.sim.beacons import PlayerBeacons, VideoSetup, encode_body

__all__ = ["FailureMode", "Player", "Post"]

SEND_INTERVAL = 10.0  # s: mux-embed's send timer
HEARTBEAT_INTERVAL = 10.0  # s: ``hb`` after the latest event while playing
MAX_EVENTS_PER_POST = 300
FLUSH_EVENTS = frozenset({"viewstart", "ended", "error", "viewend"})

# "lost": the POST never reaches the server (network error); "unacknowledged": it arrives, but
# the page sees a failure (no CORS header, a 5xx) and re-sends the same events later (capture D).
FailureMode = Literal["lost", "unacknowledged"]
Transport = Literal["fetch", "sendBeacon"]


@dataclass(frozen=True, slots=True)
class Post:
    """One POST a page makes: when (simulated seconds), from which player, and what it carries."""

    at: float
    player: int
    transport: Transport
    events: tuple[dict[str, Any], ...]
    transmission_ms: int
    rtt_ms: int | None
    acknowledged: bool

    def body(self) -> bytes:
        return encode_body(self.events, transmission_ms=self.transmission_ms, rtt_ms=self.rtt_ms)


class Player:
    """One tab's ``mux.monitor``: its queue, its two timers and its playhead."""

    def __init__(
        self,
        index: int,
        beacons: PlayerBeacons,
        rng: random.Random,
        *,
        epoch_ms: int,
        failure_rate: float,
        reliable_from: float = float("inf"),
    ) -> None:
        self.index = index
        self.beacons = beacons
        self.rng = rng
        self.epoch_ms = epoch_ms
        self.failure_rate = failure_rate
        # From this simulated time on, no POST fails.
        self.reliable_from = reliable_from
        self.queue: list[dict[str, Any]] = []
        self.send_at: float | None = None
        self.hb_at: float | None = None
        self.failures = 0
        self.paused = True
        self.started = False
        self.done = False
        self.abandoned = False
        self.lost_posts = 0
        self._last_rtt: int | None = None
        self._playhead_ms = 0.0
        self._playing_ms = 0.0
        self._clock = 0.0

    # -- timers ----------------------------------------------------------------------------

    def next_timer(self) -> float | None:
        """When this player next does something on its own (a heartbeat or a send), if ever."""
        if self.done:
            return None
        times = [t for t in (self.hb_at, self.send_at if self.queue else None) if t is not None]
        return min(times) if times else None

    def fire_timer(self, t: float) -> list[Post]:
        """Run the timer due at ``t`` (the one :meth:`next_timer` named)."""
        send_at = self.send_at if self.queue else None
        if (
            self.hb_at is not None
            and self.hb_at <= t
            and (send_at is None or self.hb_at <= send_at)
        ):
            self._emit("hb", t)
            return []
        if send_at is not None and send_at <= t:
            return self._send(t, "fetch")
        return []

    # -- what the viewer does -------------------------------------------------------------

    def load(self, t: float) -> list[Post]:
        """The page loads and calls ``mux.monitor``: the events before the view starts."""
        self._clock = t
        for event in ("networkchange", "playerready", "loadstart"):
            self._emit(event, t)
        return []

    def start(self, t: float) -> list[Post]:
        """The first play: ``view_start`` is set and ``viewstart`` flushes the queue."""
        self._advance(t)
        self.started = True
        self.paused = False
        self.beacons.start_view(self._ms(t))
        self._emit("playbackmodechange", t, player_is_paused=False)
        posts = self._emit("viewstart", t)
        for event in ("renditionchange", "play", "playing"):
            self._emit(event, t)
        return posts

    def pause(self, t: float) -> list[Post]:
        self._advance(t)
        self.paused = True
        return self._emit("pause", t, player_is_paused=True)

    def resume(self, t: float) -> list[Post]:
        self._advance(t)
        self.paused = False
        self._emit("play", t, player_is_paused=False)
        return self._emit("playing", t)

    def seek(self, t: float) -> list[Post]:
        self._advance(t)
        self._playhead_ms = min(
            self._duration_ms() - 1.0, self._playhead_ms + self.rng.uniform(5e3, 60e3)
        )
        for event in ("seeking", "waiting", "seeked"):
            self._emit(event, t)
        return self._emit("playing", t)

    def finish(self, t: float) -> list[Post]:
        """The content plays to its end: ``pause`` then ``ended`` (which flushes)."""
        self._advance(t)
        self.paused = True
        self._emit("pause", t, player_is_paused=True)
        return self._emit("ended", t)

    def leave(self, t: float) -> list[Post]:
        """The tab closes or navigates away: the final batch goes by sendBeacon and by fetch."""
        self._advance(t)
        self.done = True
        self.hb_at = None
        if not self.started:
            return self._send(t, "fetch", may_fail=False) if self.queue else []
        self._emit("viewend", t, flush=False)
        batch = tuple(self.queue[-MAX_EVENTS_PER_POST:])
        self.queue.clear()
        pair = [self._post(t, "sendBeacon", batch), self._post(t, "fetch", batch)]
        if self.rng.random() < 0.5:  # the unload pair can arrive in either order (§5.5)
            pair.reverse()
        return pair

    def switch(self, t: float, video: VideoSetup) -> list[Post]:
        """``videochange``: ``viewend`` for this view by fetch, then a new view of ``video``."""
        self._advance(t)
        posts = self._emit("viewend", t) if self.started else []
        self.beacons.new_view(video)
        self.started = False
        self.paused = True
        self.hb_at = None
        self._playhead_ms = 0.0
        self._playing_ms = 0.0
        self._emit("loadstart", t)
        return posts

    def abandon(self, t: float) -> list[Post]:
        """The tab crashes or the network goes: nothing more is ever sent."""
        self.done = True
        self.abandoned = True
        self.queue.clear()
        self.hb_at = None
        self.send_at = None
        return []

    # -- the SDK's machinery --------------------------------------------------------------

    def _ms(self, t: float) -> int:
        return self.epoch_ms + round(t * 1000)

    def _duration_ms(self) -> float:
        return float(self.beacons.state_value("video_source_duration"))

    def _advance(self, t: float) -> None:
        if not self.paused and self.started:
            elapsed = (t - self._clock) * 1000
            self._playhead_ms = min(self._playhead_ms + elapsed, self._duration_ms())
            self._playing_ms += elapsed
        self._clock = t

    def _emit(self, event: str, t: float, *, flush: bool = True, **changes: Any) -> list[Post]:
        self._advance(t)
        playhead = round(self._playhead_ms)
        if self.started:
            changes.setdefault("view_watch_time", round(self._playing_ms) + 20)
            changes.setdefault("view_playing_time_ms_cumulative", round(self._playing_ms))
        self.queue.append(
            self.beacons.emit(
                event,
                self._ms(t),
                player_playhead_time=playhead,
                view_max_playhead_position=max(
                    playhead, int(self.beacons.state_value("view_max_playhead_position") or 0)
                ),
                **changes,
            )
        )
        if self.send_at is None:
            self.send_at = t + SEND_INTERVAL
        elif self.send_at < t and len(self.queue) == 1:
            # The repeating timer kept ticking while the queue was empty.
            ticks = int((t - self.send_at) // SEND_INTERVAL) + 1
            self.send_at += ticks * SEND_INTERVAL
        self.hb_at = None if self.paused else t + HEARTBEAT_INTERVAL
        if flush and event in FLUSH_EVENTS:
            return self._send(t, "fetch")
        return []

    def _send(self, t: float, transport: Transport, *, may_fail: bool = True) -> list[Post]:
        batch = tuple(self.queue[:MAX_EVENTS_PER_POST])
        failing = (
            may_fail
            and self.failures == 0  # never two failures in a row: see Audience's silence bound
            and self.rng.random() < self.failure_rate
            and t < self.reliable_from
        )
        if failing:
            self.failures += 1
            self.send_at = t + (1 + self.rng.random() * 2 ** (self.failures - 1)) * SEND_INTERVAL
            if self.rng.random() < 0.5:
                self.lost_posts += 1
                return []
            return [self._post(t, transport, batch, acknowledged=False)]
        del self.queue[: len(batch)]
        self.failures = 0
        self.send_at = t + SEND_INTERVAL
        post = self._post(t, transport, batch)
        self._last_rtt = self.rng.randint(8, 40)
        return [post]

    def _post(
        self,
        t: float,
        transport: Transport,
        batch: Sequence[dict[str, Any]],
        *,
        acknowledged: bool = True,
    ) -> Post:
        return Post(
            at=t,
            player=self.index,
            transport=transport,
            events=tuple(batch),
            transmission_ms=self._ms(t),
            rtt_ms=self._last_rtt,
            acknowledged=acknowledged,
        )
