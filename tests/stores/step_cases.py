"""The table of cases the tracker's twins must agree on (``test_step_twins.py``).

Each case starts from a named view state (a ``Given``: a new view, loaded, playing, paused,
ended...), reached by events sent at ``t = 0``, then applies steps (a batch of events, or a
sweep, each at a time ``t`` after ``T0``) and states the outcome: the counts of every id the
case mentions (unlisted ones read 0/0), the views held and happening, and the duplicates among
the steps' events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headcount.core.events import ViewEvent, playback_id_from_source_url
from headcount.core.identity import VIEWER_COOKIE, VIEWER_USER
from headcount.core.ids import ID_TYPES
from headcount.core.tracker import ENDED, KIND_SHIFT, PAUSED, STARTED

__all__ = ["CASES", "WINDOW", "Case", "Given", "Key", "Step"]

WINDOW = 30.0
EPS = 0.001  # well above the spacing of doubles near T0 (~2.4e-7)
VID = "vid"
MUX = "https://stream.mux.com/{}.m3u8"
NOT_MUX = "https://cdn.example.com/clip.mp4"
COOKIE = VIEWER_COOKIE << KIND_SHIFT
USER = VIEWER_USER << KIND_SHIFT

Key = tuple[str, str]  # (id type, id)


def e(name: str, seq: int | None = None, view: str = "v", **fields: Any) -> ViewEvent:
    return ViewEvent(name=name, view_id=view, sequence=seq, **fields)


@dataclass(frozen=True)
class Given:
    """A named state of view ``v``, reached by ``events`` (one batch at ``t = 0``); ``flags``
    are the tracker flags it leaves (checked on the core twin)."""

    name: str
    events: tuple[ViewEvent, ...]
    flags: int


NEW = Given("new view", (), 0)
LOADED = Given("loaded", (e("playerready", 1, video_id=VID, mux_viewer_id="c1"),), COOKIE)
PLAYING = Given(
    "playing", (e("viewstart", 1, starts=True, video_id=VID, mux_viewer_id="c1"),), STARTED | COOKIE
)
PAUSED_ = Given("paused", (*PLAYING.events, e("pause", 2)), STARTED | PAUSED | COOKIE)
ENDED_ = Given("ended", (*PLAYING.events, e("viewend", 2)), STARTED | ENDED | COOKIE)
AT_100 = Given("playing at sequence 100", (e("viewstart", 100, video_id=VID),), STARTED)

SWEEP = "sweep"
Step = tuple[float, tuple[ViewEvent, ...] | str]


@dataclass(frozen=True)
class Case:
    name: str
    given: Given
    steps: tuple[Step, ...]
    counts: dict[Key, tuple[int, int]]  # every other id the case mentions reads 0/0
    held: int
    happening: int
    duplicates: int = 0  # among the steps' events
    count_paused: bool = False

    def counter_keys(self) -> list[Key]:
        """Every counter key the case's events name, and the expected ones."""
        keys: set[Key] = set(self.counts)
        for event in self.events():
            for id_type in ID_TYPES:
                value = getattr(event, id_type)
                if value is not None:
                    keys.add((id_type, value))
            if event.source_url is not None:
                derived = playback_id_from_source_url(event.source_url)
                if derived is not None:
                    keys.add(("playback_id", derived))
        return sorted(keys)

    def events(self) -> list[ViewEvent]:
        found = list(self.given.events)
        for _, what in self.steps:
            if not isinstance(what, str):
                found.extend(what)
        return found


def at(t: float, *events: ViewEvent) -> Step:
    return (t, events)


def sweep(t: float) -> Step:
    return (t, SWEEP)


def playing(views: int = 1, viewers: int = 1) -> dict[Key, tuple[int, int]]:
    return {("video_id", VID): (views, viewers)}


NOTHING: dict[Key, tuple[int, int]] = {}

# fmt: off
CASES: list[Case] = [
    # -- each EFFECT_* bit ------------------------------------------------------------------
    Case("viewstart starts a new view", NEW, (at(1, e("viewstart", 1, video_id=VID)),),
         playing(), held=1, happening=1),
    Case("an event carrying view_start starts a loaded view", LOADED,
         (at(1, e("requestcompleted", 2, starts=True)),), playing(), held=1, happening=1),
    Case("viewstart does not resume a paused view", PAUSED_,
         (at(1, e("viewstart", 3, starts=True)),), NOTHING, held=1, happening=0),
    Case("play starts a loaded view", LOADED, (at(1, e("play", 2)),), playing(), 1, 1),
    Case("play resumes a paused view", PAUSED_, (at(1, e("play", 3)),), playing(), 1, 1),
    Case("playing resumes a paused view", PAUSED_, (at(1, e("playing", 3)),), playing(), 1, 1),
    Case("pause leaves", PLAYING, (at(1, e("pause", 2)),), NOTHING, 1, 0),
    Case("ended leaves", PLAYING, (at(1, e("ended", 2)),), NOTHING, 1, 0),
    Case("a paused view counts when paused views count", PLAYING, (at(1, e("pause", 2)),),
         playing(), 1, 1, count_paused=True),
    Case("an ended (not viewended) view counts when paused views count", PLAYING,
         (at(1, e("ended", 2)),), playing(), 1, 1, count_paused=True),
    Case("hb does not resume a paused view", PAUSED_, (at(1, e("hb", 3)),), NOTHING, 1, 0),
    Case("a leave then a resume in one batch", PLAYING, (at(1, e("pause", 2), e("play", 3)),),
         playing(), 1, 1),
    Case("a resume then a leave in one batch", PAUSED_, (at(1, e("play", 3), e("pause", 4)),),
         NOTHING, 1, 0),
    Case("viewend ends a playing view", PLAYING, (at(1, e("viewend", 2)),), NOTHING, 1, 0),
    Case("viewend ends a paused view that counts", PAUSED_, (at(1, e("viewend", 3)),), NOTHING,
         1, 0, count_paused=True),
    # -- first seen --------------------------------------------------------------------------
    Case("first seen through hb: started, playing", NEW, (at(0, e("hb", 7, video_id=VID)),),
         playing(), 1, 1),
    Case("first seen through pause: started, paused", NEW,
         (at(0, e("pause", 7, video_id=VID)),), NOTHING, 1, 0),
    Case("first seen through pause, then play", NEW,
         (at(0, e("pause", 7, video_id=VID)), at(1, e("play", 8))), playing(), 1, 1),
    Case("first seen through ended: started, paused", NEW,
         (at(0, e("ended", 7, video_id=VID)), at(1, e("hb", 8))), NOTHING, 1, 0),
    Case("first seen through ended, then playing", NEW,
         (at(0, e("ended", 7, video_id=VID)), at(1, e("playing", 8))), playing(), 1, 1),
    Case("first seen through pause counts when paused views count", NEW,
         (at(0, e("pause", 7, video_id=VID)),), playing(), 1, 1, count_paused=True),
    Case("playerready does not start a view", NEW, (at(0, e("playerready", 1, video_id=VID)),),
         NOTHING, 1, 0),
    Case("seeking first does not start a view", NEW, (at(0, e("seeking", 3, video_id=VID)),),
         NOTHING, 1, 0),
    Case("requestcompleted first does not start a view, even paused views counting", NEW,
         (at(0, e("requestcompleted", 3, video_id=VID)),), NOTHING, 1, 0, count_paused=True),
    Case("first seen through viewend: a tombstone", NEW,
         (at(0, e("viewend", 5, video_id=VID)), at(1, e("play", 6))), NOTHING, 1, 0),
    Case("hb of a known view that never started does not start it", LOADED,
         (at(1, e("hb", 2)),), NOTHING, 1, 0),
    Case("pause of a known view that never started does not start it", LOADED,
         (at(1, e("pause", 2)),), NOTHING, 1, 0, count_paused=True),
    Case("only the first event of a batch is first seen", NEW,
         (at(0, e("playerready", 1, video_id=VID), e("hb", 2), e("pause", 3)),), NOTHING, 1, 0),
    Case("first seen by hb, then a viewstart", NEW,
         (at(0, e("hb", 5, video_id=VID)), at(1, e("viewstart", 1))), playing(), 1, 1),
    # -- tombstones --------------------------------------------------------------------------
    Case("a tombstone ignores play, viewstart and view_start", ENDED_,
         (at(1, e("play", 3), e("viewstart", 4), e("hb", 5, starts=True)),), NOTHING, 1, 0),
    Case("a tombstone ignores new ids and viewers", ENDED_,
         (at(1, e("hb", 3, video_id="other", viewer_user_id="u1", source_url=MUX.format("P1"))),),
         NOTHING, 1, 0),
    Case("a tombstone still remembers sequence numbers", ENDED_,
         (at(1, e("hb", 9)), at(2, e("hb", 9), e("viewend", 2))), NOTHING, 1, 0, duplicates=2),
    Case("a tombstone is held for exactly the window", ENDED_, (sweep(WINDOW),), NOTHING, 1, 0),
    Case("a tombstone goes at the sweep after the window", ENDED_, (sweep(WINDOW + EPS),),
         NOTHING, 0, 0),
    Case("after its tombstone is swept, a view id starts afresh", ENDED_,
         (sweep(WINDOW + EPS), at(WINDOW + 1, e("hb", 3, video_id=VID))), playing(), 1, 1),
    Case("an event at exactly the window still finds the tombstone", ENDED_,
         (at(WINDOW, e("hb", 3, video_id=VID)),), NOTHING, 1, 0),
    Case("an event past the window replaces a tombstone not swept yet", ENDED_,
         (at(WINDOW + EPS, e("hb", 3, video_id=VID)),), playing(), 1, 1),
    # -- the liveness window -----------------------------------------------------------------
    Case("an event at exactly the window continues the view", PAUSED_,
         (at(WINDOW, e("hb", 3, video_id=VID)),), NOTHING, 1, 0),
    Case("an event at window + eps starts a new view (first seen through hb)", PAUSED_,
         (at(WINDOW + EPS, e("hb", 3, video_id=VID)),), playing(), 1, 1),
    Case("a sweep at exactly the window keeps a view", PLAYING, (sweep(WINDOW),), playing(), 1, 1),
    Case("a sweep at window + eps drops it", PLAYING, (sweep(WINDOW + EPS),), NOTHING, 0, 0),
    Case("a sweep twice drops it once", PLAYING, (sweep(WINDOW + EPS), sweep(WINDOW + 1)),
         NOTHING, 0, 0),
    Case("each event restarts the window", PLAYING, (at(20, e("hb", 2)), sweep(20 + WINDOW)),
         playing(), 1, 1),
    Case("each event restarts the window, up to its end", PLAYING,
         (at(20, e("hb", 2)), sweep(20 + WINDOW + EPS)), NOTHING, 0, 0),
    Case("a duplicate still proves the view is alive", PLAYING,
         (at(20, e("viewstart", 1)), sweep(20 + WINDOW)), playing(), 1, 1, duplicates=1),
    Case("a paused view expires like a playing one", PAUSED_, (sweep(WINDOW + EPS),), NOTHING,
         0, 0),
    Case("after expiry the sequence numbers are forgotten", PLAYING,
         (at(WINDOW + EPS, e("pause", 1, video_id=VID)),), NOTHING, 1, 0),
    Case("after expiry the viewer identity is forgotten", PLAYING,
         (at(20, e("viewstart", 1, view="w", video_id=VID, mux_viewer_id="c1")),
          at(WINDOW + 1, e("hb", 2, video_id=VID))),
         playing(2, 2), 2, 2),
    Case("a sweep expires only the silent views", PLAYING,
         (at(10, e("viewstart", 1, view="w", video_id=VID)), sweep(WINDOW + EPS)),
         playing(), 1, 1),
    # -- dedupe: sequence numbers and the 64-wide bitmap --------------------------------------
    Case("a duplicate in the same batch", PLAYING, (at(1, e("pause", 2), e("play", 2)),),
         NOTHING, 1, 0, duplicates=1),
    Case("a re-sent batch changes nothing", PLAYING,
         (at(1, e("pause", 2), e("play", 3)),
          at(2, e("viewstart", 1), e("pause", 2), e("play", 3), e("hb", 4))),
         playing(), 1, 1, duplicates=3),
    Case("events without a number are never duplicates", PLAYING,
         (at(1, e("pause"), e("play"), e("pause")),), NOTHING, 1, 0),
    Case("a view first seen without numbers takes any number once", NEW,
         (at(0, e("viewstart", None, video_id=VID)), at(1, e("pause", 5)), at(2, e("play", 5))),
         NOTHING, 1, 0, duplicates=1),
    Case("sequence number 0", NEW,
         (at(0, e("viewstart", 0, video_id=VID)), at(1, e("pause", 0))),
         playing(), 1, 1, duplicates=1),
    Case("the largest sequence numbers", NEW,
         (at(0, e("viewstart", 2**32 - 6, video_id=VID)), at(1, e("hb", 2**32 - 1)),
          at(2, e("pause", 2**32 - 6))),
         playing(), 1, 1, duplicates=1),
    *(
        Case(f"shift {shift}: probe {probe} is {'a duplicate' if dup else 'new'}", PLAYING,
             (at(1, e("hb", 1 + shift)), at(2, e("pause", probe))),
             playing() if dup else NOTHING, 1, 0 if not dup else 1, duplicates=int(dup))
        for shift, probe, dup in [
            (1, 1, True), (1, 0, False),
            (31, 1, True), (31, 2, False), (31, 31, False),
            (32, 1, True), (32, 2, False),
            (33, 1, True), (33, 2, False), (33, 33, False),
            (63, 1, True), (63, 2, False),
            (64, 1, True), (64, 2, False),  # 1 is 64 below: too old, a duplicate unseen
            (100, 1, True), (100, 37, True), (100, 38, False),
        ]
    ),
    *(
        Case(f"{distance} below the highest: new once, then a duplicate", AT_100,
             (at(1, e("pause", 100 - distance)), at(2, e("play", 100 - distance))),
             NOTHING, 1, 0, duplicates=1)
        for distance in (1, 31, 32, 33, 63)
    ),
    Case("64 below the highest: too old, a duplicate", AT_100, (at(1, e("pause", 36)),),
         playing(), 1, 1, duplicates=1),
    Case("bits carried from the low word into the high word", PLAYING,
         (at(1, e("hb", 20)), at(2, e("hb", 35)), at(3, e("pause", 1), e("pause", 20))),
         playing(), 1, 1, duplicates=2),
    # Probes are heartbeats (they change nothing but dedupe): the duplicates among them are
    # the numbers sent before (or more than 63 below the highest); see test_scan_expectations.
    Case("scan: a few numbers then a shift of 30", PLAYING,
         (at(1, *(e("hb", n) for n in (2, 3, 4, 5, 35))), at(2, *(e("hb", n) for n in range(36)))),
         playing(), 1, 1, duplicates=6),
    Case("scan: numbers on both words and both edges", PLAYING,
         (at(1, *(e("hb", n) for n in (37, 67, 68, 69, 99, 100))),
          at(2, *(e("hb", n) for n in range(1, 101)))),
         playing(), 1, 1, duplicates=42),
    Case("scan: out of order, then a shift pushes some out", NEW,
         (at(0, *(e("hb", n, video_id=VID) for n in (50, 20, 49, 13, 14))), at(1, e("hb", 80)),
          at(2, *(e("hb", n) for n in range(81)))),
         playing(), 1, 1, duplicates=21),
    # -- playback ids ------------------------------------------------------------------------
    Case("playback id from a Mux source", NEW,
         (at(0, e("viewstart", 1, source_url=MUX.format("PB1") + "?token=abc")),),
         {("playback_id", "PB1"): (1, 1)}, 1, 1),
    Case("a non-Mux source gives no playback id", NEW,
         (at(0, e("viewstart", 1, video_id=VID, source_url=NOT_MUX)),), playing(), 1, 1),
    Case("the explicit playback_id wins in the same event", NEW,
         (at(0, e("viewstart", 1, source_url=MUX.format("PB1"), playback_id="EXP")),),
         {("playback_id", "EXP"): (1, 1)}, 1, 1),
    Case("an explicit playback_id replaces a derived one", NEW,
         (at(0, e("viewstart", 1, source_url=MUX.format("PB1"))),
          at(1, e("hb", 2, playback_id="EXP"))),
         {("playback_id", "EXP"): (1, 1)}, 1, 1),
    Case("sources after an explicit playback_id change nothing", NEW,
         (at(0, e("viewstart", 1, playback_id="EXP")),
          at(1, e("hb", 2, source_url=MUX.format("PB2"))),
          at(2, e("hb", 3, source_url=NOT_MUX))),
         {("playback_id", "EXP"): (1, 1)}, 1, 1),
    Case("a later explicit playback_id replaces the first", NEW,
         (at(0, e("viewstart", 1, playback_id="EXP")), at(1, e("hb", 2, playback_id="EXP2"))),
         {("playback_id", "EXP2"): (1, 1)}, 1, 1),
    Case("a later Mux source replaces the derived id", NEW,
         (at(0, e("viewstart", 1, source_url=MUX.format("PB1"))),
          at(1, e("hb", 2, source_url=MUX.format("PB2")))),
         {("playback_id", "PB2"): (1, 1)}, 1, 1),
    Case("a non-Mux source clears the derived id", NEW,
         (at(0, e("viewstart", 1, video_id=VID, source_url=MUX.format("PB1"))),
          at(1, e("hb", 2, source_url=NOT_MUX))),
         playing(), 1, 1),
    Case("an event without a source keeps the derived id", NEW,
         (at(0, e("viewstart", 1, source_url=MUX.format("PB1"))), at(1, e("hb", 2))),
         {("playback_id", "PB1"): (1, 1)}, 1, 1),
    # -- content ids -------------------------------------------------------------------------
    Case("a present id replaces, an absent one stays", NEW,
         (at(0, e("viewstart", 1, video_id="a", asset_id="as1", live_stream_id="ls1")),
          at(1, e("hb", 2, video_id="b"))),
         {("video_id", "b"): (1, 1), ("asset_id", "as1"): (1, 1),
          ("live_stream_id", "ls1"): (1, 1)}, 1, 1),
    Case("asset and live stream ids are replaced", NEW,
         (at(0, e("viewstart", 1, video_id=VID, asset_id="as1", live_stream_id="ls1")),
          at(1, e("hb", 2, asset_id="as2")), at(2, e("hb", 3, live_stream_id="ls2"))),
         {**playing(), ("asset_id", "as2"): (1, 1), ("live_stream_id", "ls2"): (1, 1)}, 1, 1),
    Case("ids set while paused count on resume", PAUSED_,
         (at(1, e("hb", 3, video_id="other")), at(2, e("play", 4))),
         {("video_id", "other"): (1, 1)}, 1, 1),
    Case("ids set while loaded count from the start", LOADED,
         (at(1, e("requestcompleted", 2, asset_id="as1")), at(2, e("viewstart", 3))),
         {**playing(), ("asset_id", "as1"): (1, 1)}, 1, 1),
    # -- viewer identity ---------------------------------------------------------------------
    Case("two views of one cookie are one viewer", PLAYING,
         (at(1, e("viewstart", 1, view="w", video_id=VID, mux_viewer_id="c1")),),
         playing(2, 1), 2, 2),
    Case("views without ids are their own viewers", NEW,
         (at(0, e("viewstart", 1, video_id=VID), e("viewstart", 1, view="w", video_id=VID)),),
         playing(2, 2), 2, 2),
    Case("a cookie is upgraded to the user", PLAYING,
         (at(1, e("viewstart", 1, view="w", video_id=VID, viewer_user_id="u1")),
          at(2, e("hb", 2, viewer_user_id="u1"))),
         playing(2, 1), 2, 2),
    Case("a cookie alone next to a user: two viewers", PLAYING,
         (at(1, e("viewstart", 1, view="w", video_id=VID, viewer_user_id="u1")),),
         playing(2, 2), 2, 2),
    Case("a user is not downgraded by a cookie", NEW,
         (at(0, e("viewstart", 1, video_id=VID, viewer_user_id="u1"),
             e("viewstart", 1, view="w", video_id=VID, viewer_user_id="u1"),
             e("viewstart", 1, view="x", video_id=VID, mux_viewer_id="c9")),
          at(1, e("hb", 2, mux_viewer_id="c9"))),
         playing(3, 2), 3, 3),
    Case("the latest user id wins", NEW,
         (at(0, e("viewstart", 1, video_id=VID, viewer_user_id="u1"),
             e("viewstart", 1, view="w", video_id=VID, viewer_user_id="u2")),
          at(1, e("hb", 2, viewer_user_id="u2"))),
         playing(2, 1), 2, 2),
    Case("the latest cookie wins while there is no user", PLAYING,
         (at(1, e("viewstart", 1, view="w", video_id=VID, mux_viewer_id="c2")),
          at(2, e("hb", 2, mux_viewer_id="c2"))),
         playing(2, 1), 2, 2),
    Case("a user id and a cookie spelled alike are two viewers", NEW,
         (at(0, e("viewstart", 1, video_id=VID, mux_viewer_id="x"),
             e("viewstart", 1, view="w", video_id=VID, viewer_user_id="x")),),
         playing(2, 2), 2, 2),
    Case("both in one event: the user", NEW,
         (at(0, e("viewstart", 1, video_id=VID, viewer_user_id="u1", mux_viewer_id="c1"),
             e("viewstart", 1, view="w", video_id=VID, mux_viewer_id="c1"),
             e("viewstart", 1, view="x", video_id=VID, viewer_user_id="u1")),),
         playing(3, 2), 3, 3),
    Case("first seen through hb is its own viewer until a cookie arrives", NEW,
         (at(0, e("hb", 4, video_id=VID),
             e("viewstart", 1, view="w", video_id=VID, mux_viewer_id="c1")),
          at(1, e("hb", 5, mux_viewer_id="c1"))),
         playing(2, 1), 2, 2),
    Case("an identity changed while paused counts on resume", PAUSED_,
         (at(1, e("viewstart", 1, view="w", video_id=VID, viewer_user_id="u1")),
          at(2, e("hb", 3, viewer_user_id="u1")), at(3, e("play", 4))),
         playing(2, 1), 2, 2),
    Case("a viewer stops counting with its last view", PLAYING,
         (at(1, e("viewstart", 1, view="w", video_id=VID, mux_viewer_id="c1")),
          at(2, e("viewend", 2))),
         playing(1, 1), 2, 1),
]
# fmt: on
