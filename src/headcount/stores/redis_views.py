"""The Redis live store's view step, run on the node: the core's tracker applied to the state a
view has in Redis, and what the change means for its counter memberships.

The rules are the core's (:func:`~headcount.core.tracker.step`,
:func:`~headcount.core.tracker.accept_sequence`, :func:`~headcount.core.tracker.is_happening`),
applied here, once, to a packed state (:mod:`headcount.stores.redis_codec`); Redis only stores
the result, with a compare-and-set (``view_write.lua``) so that two nodes stepping one
view at once cannot lose an event: the second finds the state moved and steps again from it.
An earlier design ran a Lua twin of the tracker inside Redis; it cost Redis ~13 trivial
script calls per heartbeat request where this costs ~4 (``python -m bench.redis_step_cost``),
and it was a second copy of the rules.

Rules of the adapter, around the tracker's:

* **Liveness**: a view silent longer than the window is gone, swept or not (as in the memory
  store); an event for it starts a new one, and the old one's memberships are removed.
* **Memberships** (:mod:`headcount.stores.redis_memberships`): a view that starts or stops
  counting, or changes ids or viewer, sends one change (view, old viewer, old ids, new viewer,
  new ids; ``b""`` old ids: nothing to remove, ``b""`` new ids: nothing to add). A happening view
  re-sends its memberships at least every ``refresh_after`` seconds, so a lost one comes back
  and a stale one lapses. A view with a duplicate event in its batch (a re-sent batch: its
  first attempt may have died between this step and its counter step) re-sends its memberships
  at once, or their removal when it does not count but had memberships within the lease.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, NamedTuple

from headcount.core.events import ViewEvent
from headcount.core.tracker import NEW_VIEW, ViewState, accept_sequence, is_happening, step
from headcount.stores.redis_codec import ContentHashes, pack_state, to8, unpack_state

__all__ = ["NOTHING", "Known", "StepRules", "ViewStep", "step_view"]


@dataclass(frozen=True, slots=True)
class StepRules:
    window_ms: int  # the liveness window, in whole milliseconds (as last-seen scores are)
    count_paused: bool
    lease: float  # seconds a membership set now lasts
    refresh_after: float  # seconds after which a happening view re-sends its memberships


class Known(NamedTuple):
    """A view as a node knows it: its packed state as Redis holds it (``None``: no state) and
    its last-seen time (ms), and, when the node made that state itself, the state unpacked
    (``state`` ``None``: unpack ``packed`` when needed). ``ids`` are ``state``'s as a change
    carries them (:meth:`~headcount.stores.redis_codec.ContentHashes.ids`)."""

    packed: bytes | None
    seen_at: int
    state: ViewState | None = None
    highest: int = 0
    seen: int = 0
    refreshed: float = 0.0
    writes: int = 0
    ids: bytes = b""


NOTHING: Final = Known(None, 0)


class ViewStep(NamedTuple):
    known: Known  # the view after the events, as the node knows it once the write is stored
    happening: int  # views happening: +1, -1 or 0
    duplicates: int  # events already seen
    changes: tuple[bytes, ...]  # membership changes, five strings each


def _unpacked(known: Known, hashes: ContentHashes) -> Known:
    if known.state is not None or known.packed is None:
        return known
    state, highest, seen, refreshed, writes = unpack_state(known.packed)
    return Known(
        known.packed, known.seen_at, state, highest, seen, refreshed, writes, hashes.ids(state)
    )


def step_view(
    view: bytes,
    stored: Known,
    events: Sequence[ViewEvent],
    now_ms: int,
    rules: StepRules,
    hashes: ContentHashes,
) -> ViewStep:
    """One view's events, in order, applied to the state Redis holds for it, as the node
    knows it (``stored``)."""
    now_s = now_ms / 1000
    count_paused = rules.count_paused
    happening_delta = duplicates = 0
    changes: tuple[bytes, ...] = ()
    state, highest, seen, refreshed, writes, ids = NEW_VIEW, 0, 0, 0.0, 0, b""
    known = was = resent = False
    old_viewer = old_ids = b""
    if stored.packed is not None:
        _, seen_at, unpacked, highest, seen, refreshed, writes, ids = _unpacked(stored, hashes)
        assert unpacked is not None
        state = unpacked
        if now_ms - seen_at > rules.window_ms:
            # Silent too long: gone, even if not swept yet; these events start a fresh view.
            if is_happening(state.flags, count_paused):
                changes = (view, to8(state.viewer), ids, b"", b"")
                happening_delta -= 1
            state, highest, seen, refreshed, ids = NEW_VIEW, 0, 0, 0.0, b""
        else:
            known = True
            was = is_happening(state.flags, count_paused)
            if was:
                old_viewer, old_ids = to8(state.viewer), ids
    before = state
    for event in events:
        fresh = True
        if event.sequence is not None:
            fresh, highest, seen = accept_sequence(highest, seen, event.sequence)
        if not known:
            known = True
            state = step(state, event, first_seen=True)
        elif fresh:
            state = step(state, event)
        else:
            duplicates += 1
            resent = True
    if not (
        ids
        and state.video_id == before.video_id
        and state.playback_id == before.playback_id
        and state.asset_id == before.asset_id
        and state.live_stream_id == before.live_stream_id
    ):
        ids = hashes.ids(state)  # (an id read from Redis is a hash; one from an event, a name)
    now_happening = is_happening(state.flags, count_paused)
    if was or now_happening:
        new_viewer = to8(state.viewer) if now_happening else b""
        new_ids = ids if now_happening else b""
        if was != now_happening or (
            now_happening and (new_ids != old_ids or new_viewer != old_viewer)
        ):
            changes += (view, old_viewer, old_ids, new_viewer, new_ids)
            if now_happening:
                refreshed = now_s
        elif resent or now_s - refreshed >= rules.refresh_after:
            changes += (view, b"", b"", new_viewer, new_ids)  # the same ones, a new lease
            refreshed = now_s
    elif resent and refreshed != 0 and now_s - refreshed < rules.lease:
        changes += (view, to8(state.viewer), ids, b"", b"")  # removed again: idempotent
    if was != now_happening:
        happening_delta += 1 if now_happening else -1
    writes = (writes + 1) & 0xFFFF
    packed = pack_state(ids, state, highest, seen, refreshed, writes)
    after = Known(packed, now_ms, state, highest, seen, int(refreshed), writes, ids)
    return ViewStep(after, happening_delta, duplicates, changes)
