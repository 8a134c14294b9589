"""The audience model: viewers watching videos in simulated time, and the counts they should make.

N viewers arrive during the first half of the run and watch M videos whose popularity follows a
Zipf law (rank r is picked with weight ``1 / r**skew``). Each tab loads a page (events before the
view), starts a view (``viewstart``, full state), plays with heartbeats, pauses (and sends
nothing while paused), seeks, and then ends the view one of four ways: the tab closes (``viewend``
twice, the unload pair), the content plays to its end first (``pause``+``ended``, then the unload
pair), the player switches to another video (``viewend`` by fetch, then a new view in the same
player), or the tab is abandoned (it goes silent and the server must expire it). Some POSTs fail
and are re-sent whole. Some viewers open a second tab (half the time on the same video), so views
and viewers differ. Viewers are logged in (``viewer_user_id``), anonymous with mux-embed's cookie
(``mux_viewer_id``) or cookieless (the view is its own viewer).

Decisions the issue left open:

- **Only abandoned views go silent.** Pauses are at most ``liveness_window - 35`` s long and two
  POSTs never fail in a row, so a view's longest silence (a pause, plus the 10 s send timer, plus
  one 10-20 s retry) stays under the window: no live view ever expires, so no view comes back
  "first seen through a delta" with a weaker identity than the oracle expects.
- **The end of a run is unambiguous.** An abandoned view whose expiry would fall within
  ``settle`` seconds of the end is abandoned a little later instead, and no POST fails in the
  last 40 s, so every view counted at the end was heard from in its last 10 s and keeps
  counting for ``liveness_window - 10`` s after it. The counts the model prints therefore stay
  exactly right from ``settle`` before the end to ``settle`` after it: time to read
  ``/counts`` and compare.

Pure and deterministic: a seed gives the same bodies and counts; time only moves through
:meth:`Audience.advance`.
"""

from __future__ import annotations

import hashlib
import heapq
import random
from dataclasses import dataclass, field
from itertools import accumulate, count
from typing import Literal

from headcount.sim.beacons import PageSetup, PlayerBeacons, VideoSetup, new_uuid
from headcount.sim.expected import ExpectedCounts
from headcount.sim.player import SEND_INTERVAL, Player, Post
from headcount.stores.live import Counts

__all__ = ["MIN_LIVENESS_WINDOW", "Audience", "AudiencePlan", "AudienceStats"]

# Below this (in simulated seconds) a playing view with one failed POST could be dropped.
MIN_LIVENESS_WINDOW = 40.0
# The longest silence of a live view besides its pause: the send timer plus one retry.
_SILENCE_BESIDES_PAUSE = 35.0
# No POST fails this close to the end (see "The end of a run is unambiguous").
_RELIABLE_TAIL = 40.0

Action = Literal["load", "start", "pause", "resume", "seek", "finish", "leave", "switch", "abandon"]


@dataclass(frozen=True)
class AudiencePlan:
    """Everything that shapes an audience. Times are simulated seconds."""

    env_key: str
    viewers: int
    videos: int
    duration: float
    seed: int = 0
    liveness_window: float = 60.0
    settle: float = 10.0
    beacon_domain: str = "localhost:8000"
    video_prefix: str = "sim-video-"
    epoch_ms: int = 1_800_000_000_000
    popularity_skew: float = 1.1
    second_tab_share: float = 0.2
    logged_in_share: float = 0.6
    cookieless_share: float = 0.1
    failure_rate: float = 0.03
    count_paused: bool = False
    mean_watch: float | None = None  # mean length of a view; default: the run's, at least 30 s

    def __post_init__(self) -> None:
        if not self.env_key:
            raise ValueError("env_key must not be empty")
        if self.viewers < 0:
            raise ValueError("viewers must be 0 or more")
        if self.videos < 1:
            raise ValueError("videos must be 1 or more")
        if self.duration <= 0:
            raise ValueError("duration must be positive")
        if self.liveness_window < MIN_LIVENESS_WINDOW:
            raise ValueError(
                f"the liveness window is {self.liveness_window:g} simulated seconds; at least "
                f"{MIN_LIVENESS_WINDOW:g} are needed so that a playing view with 10 s heartbeats "
                "and one failed POST is never dropped"
            )
        # A view counted at the end posted within its last 10 s (nothing is lost in the last
        # 40 s), so it counts for at least ``liveness_window - 10`` s after the end.
        if not 0 <= self.settle <= self.liveness_window - 10:
            raise ValueError("settle must be between 0 and liveness_window - 10")
        if self.mean_watch is not None and self.mean_watch <= 0:
            raise ValueError("mean_watch must be positive")
        for name in ("second_tab_share", "logged_in_share", "cookieless_share", "failure_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1")

    @property
    def max_pause(self) -> float:
        return min(40.0, self.liveness_window - _SILENCE_BESIDES_PAUSE)

    def video_id(self, rank: int) -> str:
        # Not zero-padded: `sim-video-1` whatever --videos is, as the docs write it.
        return f"{self.video_prefix}{rank}"


@dataclass
class AudienceStats:
    tabs: int = 0
    views_started: int = 0
    posts: int = 0
    events: int = 0
    unacknowledged: int = 0
    lost: int = 0
    abandons_postponed: int = 0


@dataclass(order=True, frozen=True, slots=True)
class _Step:
    at: float
    order: int
    player: int = field(compare=False)
    action: Action | None = field(compare=False)  # None: the player's own timer
    video: VideoSetup | None = field(compare=False, default=None)
    version: int = field(compare=False, default=0)


class Audience:
    def __init__(self, plan: AudiencePlan) -> None:
        self.plan = plan
        self.stats = AudienceStats()
        self.expected = ExpectedCounts(plan.liveness_window, count_paused=plan.count_paused)
        self.now = 0.0
        self._mean_watch = plan.mean_watch or max(30.0, plan.duration)
        rng = random.Random(f"headcount-sim/{plan.seed}")
        self.videos = [self._video(rng, rank) for rank in range(1, plan.videos + 1)]
        self._playback_ids = {
            v.video_id: v.source_url.rsplit("/", 1)[1].split(".", 1)[0] for v in self.videos
        }
        self._cumulative = list(
            accumulate(1.0 / rank**plan.popularity_skew for rank in range(1, plan.videos + 1))
        )
        self.players: list[Player] = []
        self._heap: list[_Step] = []
        self._order = count()
        self._timer_version: list[int] = []
        self._timer_at: list[float | None] = []
        for viewer in range(plan.viewers):
            self._add_viewer(viewer)

    # -- building the audience ------------------------------------------------------------

    def _video(self, rng: random.Random, rank: int) -> VideoSetup:
        video_id = self.plan.video_id(rank)
        playback_id = "SIM" + hashlib.sha256(video_id.encode()).hexdigest()[:16]
        return VideoSetup(
            video_id=video_id,
            title=f"Simulated video {rank}",
            source_url=f"https://stream.example.com/{playback_id}.m3u8",
            duration_ms=rng.randrange(10, 90) * 60_000,
        )

    def playback_id(self, video_id: str) -> str:
        """The playback id a collector derives from the video's Mux-style source URL."""
        return self._playback_ids[video_id]

    def _pick_video(self, rng: random.Random) -> VideoSetup:
        point = rng.random() * self._cumulative[-1]
        low, high = 0, len(self._cumulative) - 1
        while low < high:  # first rank whose cumulative weight passes the point
            middle = (low + high) // 2
            if self._cumulative[middle] < point:
                low = middle + 1
            else:
                high = middle
        return self.videos[low]

    def _add_viewer(self, viewer: int) -> None:
        plan = self.plan
        rng = random.Random(f"headcount-sim/{plan.seed}/viewer/{viewer}")
        arrival = rng.uniform(0.0, plan.duration * 0.5)
        logged_in = rng.random() < plan.logged_in_share
        cookieless = rng.random() < plan.cookieless_share
        user_id = f"sim-user-{viewer:06d}" if logged_in else None
        mux_viewer_id = None if cookieless else new_uuid(rng)
        session_id = new_uuid(rng)
        first = self._pick_video(rng)
        tabs = [(arrival, first)]
        if rng.random() < plan.second_tab_share:
            second = first if rng.random() < 0.5 else self._pick_video(rng)
            tabs.append((arrival + rng.uniform(5.0, max(6.0, plan.duration / 3)), second))
        for tab, (opened, video) in enumerate(tabs):
            page = PageSetup(
                env_key=plan.env_key,
                beacon_domain=plan.beacon_domain,
                page_url=f"https://www.example.com/watch/{video.video_id}",
                player_name="headcount-simulator",
                viewer_user_id=user_id,
                mux_viewer_id=mux_viewer_id,
                session_id=session_id,
                session_start_ms=plan.epoch_ms + round(arrival * 1000),
                sample_number=rng.random(),
            )
            tab_rng = random.Random(f"headcount-sim/{plan.seed}/viewer/{viewer}/tab/{tab}")
            opened_ms = plan.epoch_ms + round(opened * 1000)
            player = Player(
                len(self.players),
                PlayerBeacons(tab_rng, page, video, init_ms=opened_ms),
                tab_rng,
                epoch_ms=plan.epoch_ms,
                failure_rate=plan.failure_rate,
                reliable_from=plan.duration - _RELIABLE_TAIL,
            )
            self.players.append(player)
            self._timer_version.append(0)
            self._timer_at.append(None)
            self.stats.tabs += 1
            self._script(player.index, tab_rng, opened)

    def _script(self, player: int, rng: random.Random, opened: float) -> None:
        """Schedule what one tab's viewer does, view after view, until the tab goes away."""
        end_of_run = self.plan.duration
        self._schedule(opened, player, "load")
        t = opened
        while t < end_of_run:
            start = t + rng.uniform(0.5, 3.0)
            self._schedule(start, player, "start")
            view_end = start + rng.expovariate(1.0 / self._mean_watch)
            s = start
            while True:
                s += rng.expovariate(1.0 / 45.0)
                if s >= min(view_end, end_of_run):
                    break
                if rng.random() < 0.4 and self.plan.max_pause >= 3.0:
                    self._schedule(s, player, "pause")
                    s += rng.uniform(3.0, self.plan.max_pause)
                    if s >= view_end:  # the viewer leaves while paused
                        break
                    self._schedule(s, player, "resume")
                else:
                    self._schedule(s, player, "seek")
            if view_end >= end_of_run:
                return  # still watching when the run ends
            exit_roll = rng.random()
            if exit_roll < 0.45:
                self._schedule(view_end, player, "leave")
            elif exit_roll < 0.6:
                self._schedule(view_end, player, "finish")
                self._schedule(view_end + rng.uniform(1.0, 8.0), player, "leave")
            elif exit_roll < 0.8:
                self._schedule(view_end, player, "switch", self._pick_video(rng))
                t = view_end
                continue
            else:
                self._schedule(view_end, player, "abandon")
            return

    def _schedule(
        self, at: float, player: int, action: Action, video: VideoSetup | None = None
    ) -> None:
        heapq.heappush(self._heap, _Step(at, next(self._order), player, action, video))

    def _schedule_timer(self, player: Player, now: float) -> None:
        at = player.next_timer()
        if at == self._timer_at[player.index]:
            return
        self._timer_version[player.index] += 1
        self._timer_at[player.index] = at
        if at is not None:
            version = self._timer_version[player.index]
            heapq.heappush(
                self._heap,
                _Step(max(at, now), next(self._order), player.index, None, version=version),
            )

    # -- running it -----------------------------------------------------------------------

    def next_time(self) -> float | None:
        """When the audience next does something (None: nothing more before the end)."""
        while self._heap:
            step = self._heap[0]
            if step.at > self.plan.duration:
                return None
            if step.action is None and step.version != self._timer_version[step.player]:
                heapq.heappop(self._heap)
                continue
            return step.at
        return None

    def advance(self, until: float) -> list[Post]:
        """Everything the pages POST up to simulated time ``until`` (never past the end of the
        run), in order; the oracle learns each POST as delivered at its time."""
        until = min(until, self.plan.duration)
        posts: list[Post] = []
        while self._heap and self._heap[0].at <= until:
            step = heapq.heappop(self._heap)
            player = self.players[step.player]
            if step.action is None:
                if step.version != self._timer_version[step.player]:
                    continue
                self._timer_at[step.player] = None
                made = player.fire_timer(step.at)
            elif player.done:
                continue
            elif step.action == "abandon" and self._abandon_blurs_the_end(player):
                self.stats.abandons_postponed += 1
                self._schedule(step.at + SEND_INTERVAL, step.player, "abandon")
                continue
            else:
                made = self._act(player, step)
            for post in made:
                self.expected.deliver(post.events, post.at)
                self.stats.posts += 1
                self.stats.events += len(post.events)
                self.stats.unacknowledged += not post.acknowledged
            posts.extend(made)
            self._schedule_timer(player, step.at)
        self.now = max(self.now, until)
        self.stats.lost = sum(p.lost_posts for p in self.players)
        return posts

    def _act(self, player: Player, step: _Step) -> list[Post]:
        t = step.at
        match step.action:
            case "load":
                return player.load(t)
            case "start":
                self.stats.views_started += 1
                return player.start(t)
            case "pause":
                return player.pause(t)
            case "resume":
                return player.resume(t)
            case "seek":
                return player.seek(t)
            case "finish":
                return player.finish(t)
            case "leave":
                return player.leave(t)
            case "switch":
                assert step.video is not None
                return player.switch(t, step.video)
            case "abandon":
                return player.abandon(t)
        raise AssertionError(step.action)  # pragma: no cover

    def _abandon_blurs_the_end(self, player: Player) -> bool:
        expiry = self.expected.counted_until(self.plan.env_key, player.beacons.view_id)
        return expiry is not None and abs(expiry - self.plan.duration) <= self.plan.settle

    # -- what the server should show ---------------------------------------------------------

    def expected_counts(self, now: float | None = None) -> dict[str, Counts]:
        """Every video's expected ``views``/``viewers`` at ``now`` (default: the model's time),
        most watched first; videos nobody watches read 0/0."""
        at = self.now if now is None else now
        live = self.expected.by_video(at)
        zero = Counts(0, 0)
        ranked = sorted(
            self.videos,
            key=lambda v: (-live.get(v.video_id, zero).views, -live.get(v.video_id, zero).viewers),
        )
        return {v.video_id: live.get(v.video_id, zero) for v in ranked}
