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
    "EFFECT_ENDS",
    "EFFECT_FIRST_SEEN_STARTS",
    "EFFECT_LEAVES",
    "EFFECT_RESUMES",
    "EFFECT_STARTS",
    "ENDED",
    "EXPLICIT_PLAYBACK",
    "KIND_MASK",
    "KIND_SHIFT",
    "NEW_VIEW",
    "PAUSED",
    "SEQUENCE_MEMORY",
    "STARTED",
    "STATE_EVENTS",
    "ViewState",
    "accept_sequence",
    "counter_ids",
    "event_effects",
    "is_happening",
    "step",
    "step_flags",
    "viewer_kind",
]

# ViewState.flags bits. Bits 4-5 hold the viewer identity kind (identity.VIEWER_*).
STARTED: Final[int] = 1
PAUSED: Final[int] = 2
ENDED: Final[int] = 4
EXPLICIT_PLAYBACK: Final[int] = 8
KIND_SHIFT: Final[int] = 4
KIND_MASK: Final[int] = 3 << KIND_SHIFT

# How many sequence numbers below the highest one a view remembers (one bit each).
SEQUENCE_MEMORY: Final[int] = 64
_SEEN_MASK: Final[int] = (1 << SEQUENCE_MEMORY) - 1

# What an event does to a view's flags, as bits: :func:`event_effects` classifies an event
# once, and :func:`step` applies the bits. Both live stores run these rules (the Redis one on
# its nodes, headcount.stores.redis_views); one table of cases runs them through the core and
# both stores (tests/stores/test_step_twins.py).
EFFECT_STARTS: Final[int] = 1  # `viewstart`, or any event carrying `view_start`
EFFECT_RESUMES: Final[int] = 2  # starts the view too, and un-pauses it
EFFECT_LEAVES: Final[int] = 4  # pauses
EFFECT_ENDS: Final[int] = 8  # ends it for good (a tombstone)
EFFECT_FIRST_SEEN_STARTS: Final[int] = 16  # starts a view first seen through this event

_NAME_EFFECTS: Final[dict[str, int]] = {
    "viewstart": EFFECT_STARTS,
    "play": EFFECT_RESUMES,
    "playing": EFFECT_RESUMES,
    "pause": EFFECT_LEAVES | EFFECT_FIRST_SEEN_STARTS,
    "ended": EFFECT_LEAVES | EFFECT_FIRST_SEEN_STARTS,
    "hb": EFFECT_FIRST_SEEN_STARTS,
    "viewend": EFFECT_ENDS,
}
# Event names that can change a known view's flags.
STATE_EVENTS: Final[frozenset[str]] = frozenset(
    name
    for name, effects in _NAME_EFFECTS.items()
    if effects & (EFFECT_STARTS | EFFECT_RESUMES | EFFECT_LEAVES | EFFECT_ENDS)
)


class ViewState(NamedTuple):
    flags: int
    video_id: str | None
    asset_id: str | None
    playback_id: str | None
    live_stream_id: str | None
    viewer: int  # identity.viewer_hash, or 0: the view is its own viewer


NEW_VIEW: Final[ViewState] = ViewState(0, None, None, None, None, 0)
_new_tuple = tuple.__new__


def viewer_kind(state: ViewState) -> int:
    return (state.flags & KIND_MASK) >> KIND_SHIFT


def is_happening(flags: int, count_paused: bool) -> bool:
    """Whether a view with these ``ViewState.flags`` counts (the liveness window aside)."""
    return flags & STARTED != 0 and flags & ENDED == 0 and (count_paused or flags & PAUSED == 0)


def counter_ids(state: ViewState) -> tuple[tuple[int, str], ...]:
    """``(index into ids.ID_TYPES, id)`` for each content id the view has (same order)."""
    ids = (state.video_id, state.asset_id, state.playback_id, state.live_stream_id)
    return tuple((index, value) for index, value in enumerate(ids) if value is not None)


def event_effects(event: ViewEvent) -> int:
    """The ``EFFECT_*`` bits of one event."""
    effects = _NAME_EFFECTS.get(event.name, 0)
    return effects | EFFECT_STARTS if event.starts else effects


def step_flags(flags: int, effects: int, first_seen: bool = False) -> int:
    """A view's ``flags`` after an event with these ``EFFECT_*`` bits, before its ids are
    applied (:func:`step` applies those); for an event that carries no ids this is all that
    changes."""
    if flags & ENDED:
        return flags
    if effects & EFFECT_ENDS:
        return flags | ENDED
    if effects & (EFFECT_STARTS | EFFECT_RESUMES) or (
        first_seen and effects & EFFECT_FIRST_SEEN_STARTS
    ):
        flags |= STARTED
    if effects & EFFECT_RESUMES:
        flags &= ~PAUSED
    elif effects & EFFECT_LEAVES:
        flags |= PAUSED
    return flags


def step(state: ViewState, event: ViewEvent, *, first_seen: bool = False) -> ViewState:
    """The view after ``event``. ``first_seen``: no earlier event of this view is known."""
    if state.flags & ENDED:
        return state
    if (
        not first_seen
        and not event.starts
        and event.name not in STATE_EVENTS
        and event.playback_id is None
        and event.source_url is None
        and event.viewer_user_id is None
        and event.mux_viewer_id is None
        and (event.video_id is None or event.video_id == state.video_id)
        and (event.asset_id is None or event.asset_id == state.asset_id)
        and (event.live_stream_id is None or event.live_stream_id == state.live_stream_id)
    ):
        # Nothing it carries can change a known view (the rules below, for an event without
        # flag effects whose content ids are absent or the view's own): most events are so.
        return state
    flags = step_flags(state.flags, event_effects(event), first_seen)
    if flags & ENDED:
        return state._replace(flags=flags)  # a tombstone keeps the ids it had

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
    kind = (flags & KIND_MASK) >> KIND_SHIFT
    if event.viewer_user_id is not None:
        kind, viewer = VIEWER_USER, viewer_hash(VIEWER_USER, event.viewer_user_id)
    elif event.mux_viewer_id is not None and kind != VIEWER_USER:
        kind, viewer = VIEWER_COOKIE, viewer_hash(VIEWER_COOKIE, event.mux_viewer_id)
    flags = (flags & ~KIND_MASK) | (kind << KIND_SHIFT)
    # tuple.__new__ directly: the NamedTuple's generated __new__ is one more Python call.
    return _new_tuple(ViewState, (flags, video_id, asset_id, playback_id, live_stream_id, viewer))


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
