"""A Redis node's view writes: what it knows of the views it wrote, the ``view_write.lua`` calls
that store a batch's steps, and what their answers mean (see :mod:`headcount.stores.redis_views`
for the step, and :class:`~headcount.stores.redis_live.RedisLiveStore` for the loop).

A node remembers each view as it last wrote it (packed state, last seen), so that the next batch
of a view is stepped at once, without reading it first. The write stores a step only if the view
is still as the node knew it; a view it does not know, or that another node (or a sweep) moved
since, is answered as it is now, and stepped again from that: one more call, only then.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from headcount.core.events import ViewEvent
from headcount.stores.redis_codec import ContentHashes, to8
from headcount.stores.redis_keys import KeyLayout
from headcount.stores.redis_lua import WRITE, Command
from headcount.stores.redis_views import NOTHING, Known, StepRules, ViewStep, step_view

__all__ = ["MAX_VIEWS_KNOWN", "Pending", "Stepped", "ViewWrites"]

MAX_VIEWS_KNOWN: Final = 100_000  # views a node remembers; emptied when full

Pending = list[tuple[int, list[ViewEvent]]]  # (view key, its events in order), to be stepped
Stepped = list[list[tuple[int, list[ViewEvent], ViewStep]]]  # per write call, its views


class ViewWrites:
    def __init__(self, layout: KeyLayout, rules: StepRules) -> None:
        self.layout = layout
        self.rules = rules
        self.known: dict[int, Known] = {}

    def commands(
        self, pending: Pending, hashes: ContentHashes, now_ms: int
    ) -> tuple[Stepped, list[Command]]:
        """The views stepped from what this node knows of them (a view it never saw: nothing),
        and one write call per partition group."""
        layout = self.layout
        rules = self.rules
        known = self.known
        groups: dict[int, tuple[dict[int, int], list[Any], list[Any]]] = {}
        whole: set[int] = set()  # groups whose due zset and stats hash a write must name
        for key, view_events in pending:
            stored = known.get(key, NOTHING)
            outcome = step_view(to8(key), stored, view_events, now_ms, rules, hashes)
            group, sub = layout.locate(key)
            entry = groups.get(group)
            if entry is None:
                entry = groups[group] = ({}, [], [])
            pairs, args, views = entry
            pair = pairs.get(sub)
            if pair is None:
                pair = pairs[sub] = len(pairs)
            if stored.packed is None or outcome.happening:
                whole.add(group)
            args += (
                pair * 4 + outcome.happening + 1,
                to8(key),
                stored.packed or b"",
                outcome.known.packed,
            )
            views.append((key, view_events, outcome))
        commands = []
        for group, (pairs, args, _) in groups.items():
            keys = [n for s in pairs for n in layout.sub(group, s)]
            if group in whole:
                keys += layout.group(group)
                head = " ".join(map(str, (rules.window_ms, *pairs)))
            else:
                head = ""
            commands.append(WRITE.command(keys, (now_ms, head, *args)))
        return [views for _, _, views in groups.values()], commands

    def settle(
        self, stepped: Stepped, results: Sequence[Any], changes: list[bytes]
    ) -> tuple[int, Pending]:
        """Takes the writes' answers: the stored views' changes are added to ``changes``;
        returns their duplicate events, and the views that had moved (to step again)."""
        duplicates = 0
        moved: Pending = []
        for views, result in zip(stepped, results, strict=True):
            again = {
                int(result[i]): (result[i + 1], result[i + 2]) for i in range(0, len(result), 3)
            }
            for index, (key, view_events, outcome) in enumerate(views):
                if index not in again:
                    self._remember(key, outcome.known)
                    duplicates += outcome.duplicates
                    changes.extend(outcome.changes)
                else:
                    state, seen = again[index]
                    self._remember(key, Known(state, 0 if seen is None else int(float(seen))))
                    moved.append((key, view_events))
        return duplicates, moved

    def _remember(self, key: int, view: Known) -> None:
        known = self.known
        if len(known) >= MAX_VIEWS_KNOWN and key not in known:
            known.clear()
        known[key] = view
