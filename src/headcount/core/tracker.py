"""The view state machine: what one event does to one view (pure; time is not needed here).

A view ``(environment, view_id)`` *happens* (DESIGN.md "Words") from its start until it ends,
while it is not paused, and while the server keeps hearing from it (the liveness window is
applied by the store, which owns the receive times). The state kept per view is small on
purpose (:class:`ViewState`): flags, the four content ids, and the viewer identity as a hash.

Rules, in the order :func:`step` applies them:

* An ended view (``viewend`` seen) is a *tombstone*: nothing changes it any more, so the
  duplicate ``viewend`` of every page unload, or a late re-send, cannot resurrect it.
* Start: ``viewstart``, any event carrying ``view_start``, or ``play``/``playing`` (mux-embed
  sends ``viewstart`` before the first ``play``, so a ``play`` proves the start).
* Pause: ``pause`` and ``ended`` take the view out of the count; ``play``/``playing`` bring it
  back. Nothing else changes the paused flag (a heartbeat pushed by ``updateData`` may arrive
  while paused).
* **First seen through a delta event.** When the first event the server ever gets for a view
  is ``hb``, ``pause`` or ``ended`` (it missed the start: the collector was down, or the view
  was silent longer than the liveness window and came back), that event also proves the view
  started: mux-embed sends no heartbeat before the view starts (the player is paused), and
  ``pause``/``ended`` follow playback. ``hb`` starts it playing, ``pause``/``ended`` paused.
  Any other first event (``playerready``, ``seeking``, ``requestcompleted``...) does not start
  a view: a player that was loaded and never played must not count.
* Content ids: a present value replaces the old one; an absent one leaves it (delta events
  only carry what changed, beacons.md §3.4). ``playback_id`` is the explicit field when a page
  sets one, else it is derived from every ``video_source_url`` received (and cleared by a
  source that is not a Mux URL).
* Viewer identity: ``viewer_user_id`` (latest), else ``mux_viewer_id`` (latest), else the view
  itself. A view first seen without ids counts as its own viewer and is upgraded when a
  full-state event brings them (the store turns the change into counter transitions).
"""

from __future__ import annotations

from typing import Final, NamedTuple

from headcount.core.events import ViewEvent, playback_id_from_source_url
from headcount.core.identity import VIEWER_COOKIE, VIEWER_USER, viewer_hash

__all__ = [
    "ENDED",
    "EXPLICIT_PLAYBACK",
    "NEW_VIEW",
    "PAUSED",
    "STARTED",
    "STATE_EVENTS",
    "ViewState",
    "accept_sequence",
    "counter_ids",
    "is_happening",
    "step",
    "viewer_kind",
]

# ViewState.flags bits. Bits 4-5 hold the viewer identity kind (identity.VIEWER_*).
STARTED: Final[int] = 1
PAUSED: Final[int] = 2
ENDED: Final[int] = 4
EXPLICIT_PLAYBACK: Final[int] = 8
_KIND_SHIFT: Final[int] = 4
_KIND_MASK: Final[int] = 3 << _KIND_SHIFT

# How many sequence numbers below the highest one a view remembers (one bit each).
SEQUENCE_MEMORY: Final[int] = 64
_SEEN_MASK: Final[int] = (1 << SEQUENCE_MEMORY) - 1

_RESUME: Final[frozenset[str]] = frozenset({"play", "playing"})
_LEAVE: Final[frozenset[str]] = frozenset({"pause", "ended"})
_FIRST_SEEN_STARTS: Final[frozenset[str]] = frozenset({"hb", "pause", "ended"})
# Event names that can change a known view's flags.
STATE_EVENTS: Final[frozenset[str]] = _RESUME | _LEAVE | {"viewend", "viewstart"}


class ViewState(NamedTuple):
    flags: int
    video_id: str | None
    asset_id: str | None
    playback_id: str | None
    live_stream_id: str | None
    viewer: int  # identity.viewer_hash, or 0: the view is its own viewer


NEW_VIEW: Final[ViewState] = ViewState(0, None, None, None, None, 0)


def viewer_kind(state: ViewState) -> int:
    return (state.flags & _KIND_MASK) >> _KIND_SHIFT


def is_happening(flags: int, count_paused: bool) -> bool:
    """Whether a view with these ``ViewState.flags`` counts (the liveness window aside)."""
    return flags & STARTED != 0 and flags & ENDED == 0 and (count_paused or flags & PAUSED == 0)


def counter_ids(state: ViewState) -> tuple[tuple[int, str], ...]:
    """``(index into ids.ID_TYPES, id)`` for each content id the view has (same order)."""
    ids = (state.video_id, state.asset_id, state.playback_id, state.live_stream_id)
    return tuple((index, value) for index, value in enumerate(ids) if value is not None)


def step(state: ViewState, event: ViewEvent, *, first_seen: bool = False) -> ViewState:
    """The view after ``event``. ``first_seen``: no earlier event of this view is known."""
    flags = state.flags
    if flags & ENDED:
        return state
    name = event.name
    if name == "viewend":
        return state._replace(flags=flags | ENDED)
    if event.starts or name in _RESUME or (first_seen and name in _FIRST_SEEN_STARTS):
        flags |= STARTED
    if name in _RESUME:
        flags &= ~PAUSED
    elif name in _LEAVE:
        flags |= PAUSED

    video_id = event.video_id or state.video_id
    asset_id = event.asset_id or state.asset_id
    live_stream_id = event.live_stream_id or state.live_stream_id
    playback_id = state.playback_id
    if event.playback_id is not None:
        playback_id = event.playback_id
        flags |= EXPLICIT_PLAYBACK
    elif event.source_url is not None and not flags & EXPLICIT_PLAYBACK:
        playback_id = playback_id_from_source_url(event.source_url)

    viewer = state.viewer
    kind = (flags & _KIND_MASK) >> _KIND_SHIFT
    if event.viewer_user_id is not None:
        kind, viewer = VIEWER_USER, viewer_hash(VIEWER_USER, event.viewer_user_id)
    elif event.mux_viewer_id is not None and kind != VIEWER_USER:
        kind, viewer = VIEWER_COOKIE, viewer_hash(VIEWER_COOKIE, event.mux_viewer_id)
    flags = (flags & ~_KIND_MASK) | (kind << _KIND_SHIFT)
    return ViewState(flags, video_id, asset_id, playback_id, live_stream_id, viewer)


def accept_sequence(highest: int, seen: int, sequence: int) -> tuple[bool, int, int]:
    """Dedupe by ``view_sequence_number``: ``(is_new, highest, seen)`` after ``sequence``.

    ``seen`` is a bitmap of the last :data:`SEQUENCE_MEMORY` numbers up to ``highest`` (bit 0
    is ``highest``); ``seen == 0`` means no number was seen yet. A number more than that far
    below the highest is taken as a duplicate: mux-embed sends its events in order, one POST
    at a time, and re-sends only whole unacknowledged batches, so an event that old was either
    seen already or lost for good (gaps are normal: dropped hidden-tab heartbeats).
    """
    if seen == 0:
        return True, sequence, 1
    if sequence > highest:
        shift = sequence - highest
        seen = ((seen << shift) | 1) & _SEEN_MASK if shift < SEQUENCE_MEMORY else 1
        return True, sequence, seen
    distance = highest - sequence
    if distance >= SEQUENCE_MEMORY:
        return False, highest, seen
    bit = 1 << distance
    if seen & bit:
        return False, highest, seen
    return True, highest, seen | bit
