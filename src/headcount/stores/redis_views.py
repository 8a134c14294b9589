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
from typing import NamedTuple

from headcount.core.events import ViewEvent
from headcount.core.tracker import NEW_VIEW, accept_sequence, is_happening, step
from headcount.stores.redis_codec import ContentHashes, pack_state, to8, unpack_state

__all__ = ["StepRules", "ViewStep", "step_view"]


@dataclass(frozen=True, slots=True)
class StepRules:
    window_ms: int  # the liveness window, in whole milliseconds (as last-seen scores are)
    count_paused: bool
    lease: float  # seconds a membership set now lasts
    refresh_after: float  # seconds after which a happening view re-sends its memberships


class ViewStep(NamedTuple):
    packed: bytes  # the view's state after the events
    happening: int  # views happening: +1, -1 or 0
    duplicates: int  # events already seen
    changes: tuple[bytes, ...]  # membership changes, five strings each


def step_view(
    view: bytes,
    stored: bytes | None,
    stored_seen: int,
    events: Sequence[ViewEvent],
    now_ms: int,
    rules: StepRules,
    hashes: ContentHashes,
) -> ViewStep:
    """One view's events, in order, applied to the state Redis holds for it (``stored``, packed,
    last seen at ``stored_seen`` ms; ``None``: no state)."""
    now_s = now_ms / 1000
    count_paused = rules.count_paused
    happening_delta = duplicates = 0
    changes: tuple[bytes, ...] = ()
    state, highest, seen, refreshed = NEW_VIEW, 0, 0, 0.0
    writes = 0
    known = was = resent = False
    old_viewer = old_ids = b""
    if stored is not None:
        state, highest, seen, stored_refreshed, writes = unpack_state(stored)
        refreshed = float(stored_refreshed)
        if now_ms - stored_seen > rules.window_ms:
            # Silent too long: gone, even if not swept yet; these events start a fresh view.
            if is_happening(state.flags, count_paused):
                changes = (view, to8(state.viewer), hashes.ids(state), b"", b"")
                happening_delta -= 1
            state, highest, seen, refreshed = NEW_VIEW, 0, 0, 0.0
        else:
            known = True
            was = is_happening(state.flags, count_paused)
            if was:
                old_viewer, old_ids = to8(state.viewer), hashes.ids(state)
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
    ids = hashes.ids(state)
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
    return ViewStep(
        pack_state(ids, state, highest, seen, refreshed, writes + 1),
        happening_delta,
        duplicates,
        changes,
    )
