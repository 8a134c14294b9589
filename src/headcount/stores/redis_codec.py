"""The Redis store's wire between Python and its Lua scripts: packed events and view states.

An event goes to ``partition.lua`` as one packed string (``struct``, read by Lua's ``struct``
library): a fixed head (the view, which KEYS pair holds it, the tracker's ``EFFECT_*`` bits for
it (:func:`headcount.core.tracker.event_effects`, so event names are classified only in
Python), its fields and sequence number, and a bit per id it carries), then 8 bytes for each id
it carries, in the order of :data:`EVENT_IDS`. An absent id takes no room and no work in Lua
(most events carry three or four of the eight). Both layouts are declared once, here, as a
list of fields; the Python ``struct`` format and the Lua one are generated from it, and so are
the constants the Lua script uses (:func:`render_script` fills them in).
"""

from __future__ import annotations

import string
import struct
from collections.abc import Callable
from importlib import resources
from typing import Final

from headcount.core import identity, tracker
from headcount.core.events import ViewEvent, playback_id_from_source_url
from headcount.core.identity import VIEWER_COOKIE, VIEWER_USER, content_key, viewer_hash
from headcount.history.model import ENVIRONMENT

__all__ = [
    "EVENT",
    "EVENT_IDS",
    "FIELD_SEQUENCE",
    "FIELD_SOURCE",
    "MAX_REMEMBERED",
    "NONE",
    "STATE",
    "STATE_IDS",
    "EventPacker",
    "render_script",
    "to8",
]

NONE: Final = bytes(8)  # an absent id, or "the view is its own viewer"

# Bits of an event's `fields` byte.
FIELD_SEQUENCE: Final = 1  # it carries a view_sequence_number
FIELD_SOURCE: Final = 2  # it carries a video_source_url (its derived playback id may be NONE)

# (Python struct code, Lua struct code) by kind of field.
_CODES: Final = {"u8": ("B", "B"), "u32": ("I", "I4"), "h8": ("8s", "c8"), "f64": ("d", "d")}


class _Layout:
    def __init__(self, *fields: tuple[str, str]) -> None:
        self.names = tuple(name for name, _ in fields)
        self.python = "<" + "".join(_CODES[kind][0] for _, kind in fields)
        self.lua = "<" + "".join(_CODES[kind][1] for _, kind in fields)
        self.struct = struct.Struct(self.python)


EVENT: Final = _Layout(
    ("view", "h8"),
    ("pair", "u8"),  # which KEYS pair (sub-partition) of the call holds the view
    ("effects", "u8"),
    ("fields", "u8"),
    ("sequence", "u32"),
    ("ids", "u8"),  # bit i set: the i-th of EVENT_IDS follows (8 bytes each, in order)
)
# The ids an event may carry. playback is an explicit playback_id only; source_playback is
# derived from video_source_url (see FIELD_SOURCE: with the field set and no source_playback,
# the source is not a Mux URL). env is the environment's own counter key (id type
# "environment"): every happening view counts under it, so the environment's totals and
# history need no scan.
EVENT_IDS: Final = (
    "video",
    "asset",
    "playback",
    "live",
    "source_playback",
    "user",
    "cookie",
    "env",
)

# A view's packed state: this fixed head, then 8 bytes for each content id it has, in the
# order of STATE_IDS (bit i of ``ids`` set: the i-th is there). Absent ids take no room: most
# views have two of the four, and the state stays well under Redis's 64-byte listpack limit.
STATE: Final = _Layout(
    ("flags", "u8"),
    ("highest", "u32"),
    ("seen_lo", "u32"),  # the 64-bit sequence bitmap as two halves: Lua numbers are doubles
    ("seen_hi", "u32"),
    ("viewer", "h8"),
    ("refreshed", "u32"),  # when its counter memberships were last set (whole seconds)
    ("ids", "u8"),
)
STATE_IDS: Final = ("video", "asset", "playback", "live", "env")


def to8(value: int) -> bytes:
    return value.to_bytes(8, "little")


MAX_REMEMBERED: Final = 100_000  # content-id hashes a store keeps between requests


class EventPacker:
    """Packs the events of one environment. ``hashes`` remembers content-id hashes across
    calls (mux-embed repeats video_id in every event, and popular videos in every request);
    it is bounded by :data:`MAX_REMEMBERED` and emptied when full."""

    __slots__ = ("_environment", "_environment_id", "_hashes", "_last_raw", "_last_tail", "_names")

    def __init__(
        self,
        environment_id: str,
        hashes: dict[tuple[str, str, str], bytes] | None = None,
        names: dict[bytes, tuple[str, str, str]] | None = None,
    ) -> None:
        """``names``, when given, remembers the other way (hash -> key), as bounded."""
        self._environment_id = environment_id
        self._hashes: dict[tuple[str, str, str], bytes] = {} if hashes is None else hashes
        self._names = names
        self._environment = self._content(ENVIRONMENT, environment_id)
        # The last event's ids as it carried them, and what they packed to.
        self._last_raw: tuple[str | None, ...] | None = None
        self._last_tail: tuple[int, bytes] = (0, b"")

    def _content(self, id_type: str, value: str | None) -> bytes:
        if value is None:
            return NONE
        key = (self._environment_id, id_type, value)
        hashed = self._hashes.get(key)
        if hashed is None:
            if len(self._hashes) >= MAX_REMEMBERED:
                self._hashes.clear()
            hashed = self._hashes[key] = to8(content_key(self._environment_id, id_type, value))
            if self._names is not None:
                if len(self._names) >= MAX_REMEMBERED:
                    self._names.clear()
                self._names[hashed] = key
        return hashed

    def pack(self, view: bytes, pair: int, event: ViewEvent) -> bytes:
        sequence = event.sequence
        fields = 0 if sequence is None else FIELD_SEQUENCE
        raw = (
            event.video_id,
            event.asset_id,
            event.playback_id,
            event.live_stream_id,
            event.source_url,
            event.viewer_user_id,
            event.mux_viewer_id,
        )
        if raw != self._last_raw:  # a batch's events mostly repeat their view's ids
            self._last_raw = raw
            self._last_tail = self._tail(event)
        present, tail = self._last_tail
        if event.source_url is not None:
            fields |= FIELD_SOURCE
        effects = tracker.event_effects(event)
        return EVENT.struct.pack(view, pair, effects, fields, sequence or 0, present) + tail

    def _tail(self, event: ViewEvent) -> tuple[int, bytes]:
        """The ids bitmask and the 8-byte hashes of the ids ``event`` carries."""
        content = self._content
        source_playback = NONE
        if event.source_url is not None:
            source_playback = content("playback_id", playback_id_from_source_url(event.source_url))
        ids = (  # in the order of EVENT_IDS
            content("video_id", event.video_id),
            content("asset_id", event.asset_id),
            content("playback_id", event.playback_id),
            content("live_stream_id", event.live_stream_id),
            source_playback,
            _viewer(VIEWER_USER, event.viewer_user_id),
            _viewer(VIEWER_COOKIE, event.mux_viewer_id),
            self._environment,
        )
        present = 0
        for bit, value in enumerate(ids):
            if value != NONE:
                present |= 1 << bit
        return present, b"".join(value for value in ids if value != NONE)


def _viewer(kind: int, value: str | None) -> bytes:
    return NONE if value is None else to8(viewer_hash(kind, value))


def _constants() -> dict[str, object]:
    if tracker.SEQUENCE_MEMORY != 64:  # pragma: no cover - the Lua bitmap is two 32-bit words
        raise AssertionError("partition.lua keeps the sequence bitmap as two 32-bit halves")
    names = (
        "STARTED",
        "PAUSED",
        "ENDED",
        "EXPLICIT_PLAYBACK",
        "KIND_SHIFT",
        "KIND_MASK",
        "SEQUENCE_MEMORY",
        "EFFECT_STARTS",
        "EFFECT_RESUMES",
        "EFFECT_LEAVES",
        "EFFECT_ENDS",
        "EFFECT_FIRST_SEEN_STARTS",
    )
    constants: dict[str, object] = {name: getattr(tracker, name) for name in names}
    constants.update(
        VIEWER_COOKIE=identity.VIEWER_COOKIE,
        VIEWER_USER=identity.VIEWER_USER,
        FIELD_SEQUENCE=FIELD_SEQUENCE,
        FIELD_SOURCE=FIELD_SOURCE,
        STATE_FORMAT=STATE.lua,
        STATE_IDS=", ".join(f"'{name}'" for name in STATE_IDS),
        IDS_OF=" .. ".join(f"st.{name}" for name in STATE_IDS),
        EVENT_FORMAT=EVENT.lua,
        EVENT_IDS=", ".join(f"'{name}'" for name in EVENT_IDS),
    )
    return constants


def render_script(name: str, read: Callable[[str], str] | None = None) -> str:
    """The source of one of the package's ``.lua`` scripts with its constants filled in."""
    source = (
        read(name)
        if read is not None
        else resources.files("headcount.stores").joinpath("lua", name).read_text()
    )
    return string.Template(source).substitute(_constants())
