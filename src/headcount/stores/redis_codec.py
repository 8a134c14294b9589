"""The Redis store's view states: packed by the node, kept by Redis, read by its sweep.

A view's state is one packed string (``struct``; Lua's ``struct`` library reads it in the
sweep): a fixed head (flags, the sequence bitmap, the viewer, when its counter memberships were
last set, a bit per id it has), then 8 bytes for each id it has, in the order of
:data:`STATE_IDS`. Redis keeps no names: an id is the 8-byte hash of its counter key
(:func:`headcount.core.identity.content_key`), and :class:`ContentHashes` makes them. The
layout is declared once, here, as a list of fields; the Python ``struct`` format and the Lua
one are generated from it, and so are the constants the Lua script uses (:func:`render_script`
fills them in).
"""

from __future__ import annotations

import string
import struct
from collections.abc import Callable
from importlib import resources
from typing import Final

from headcount.core import tracker
from headcount.core.identity import content_key
from headcount.core.tracker import ViewState
from headcount.history.model import ENVIRONMENT

__all__ = [
    "MAX_REMEMBERED",
    "NONE",
    "STATE",
    "STATE_IDS",
    "ContentHashes",
    "pack_state",
    "render_script",
    "to8",
    "unpack_state",
]

NONE: Final = bytes(8)  # an absent id, or "the view is its own viewer"

# (Python struct code, Lua struct code) by kind of field.
_CODES: Final = {
    "u8": ("B", "B"),
    "u16": ("H", "I2"),
    "u32": ("I", "I4"),
    "h8": ("8s", "c8"),
}


class _Layout:
    def __init__(self, *fields: tuple[str, str]) -> None:
        self.names = tuple(name for name, _ in fields)
        self.python = "<" + "".join(_CODES[kind][0] for _, kind in fields)
        self.lua = "<" + "".join(_CODES[kind][1] for _, kind in fields)
        self.struct = struct.Struct(self.python)


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
    # Moved by every write (modulo 2**16), so that a state a node knows is the one Redis holds
    # only if no other node wrote the view since (view_write.lua compares the states alone).
    ("writes", "u16"),
    ("ids", "u8"),
)
# The ids of a state, in ViewState's order, then env: the environment's own counter key (id
# type "environment"): every happening view counts under it, so the environment's totals and
# history need no scan.
STATE_IDS: Final = ("video", "asset", "playback", "live", "env")
_ID_TYPES: Final = ("video_id", "asset_id", "playback_id", "live_stream_id")
_HEAD: Final = STATE.struct
_LOW32: Final = 0xFFFFFFFF


def to8(value: int) -> bytes:
    return value.to_bytes(8, "little")


MAX_REMEMBERED: Final = 100_000  # content-id hashes a store keeps between requests


class ContentHashes:
    """The 8-byte counter-key hashes of one environment's content ids. ``hashes`` remembers
    them across calls (mux-embed repeats video_id in every event, and popular videos in every
    request); it is bounded by :data:`MAX_REMEMBERED` and emptied when full."""

    __slots__ = ("_environment_id", "_hashes", "_names", "environment")

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
        self.environment = self.content(ENVIRONMENT, environment_id)

    def content(self, id_type: str, value: str) -> bytes:
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

    def ids(self, state: ViewState) -> bytes:
        """A state's ids as a change carries them: 8 bytes each in the order of
        :data:`STATE_IDS`, :data:`NONE` where absent. An id read from Redis is its hash
        already (bytes); one an event brought is a name (str), hashed here."""
        content = self.content
        out = []
        for id_type, value in zip(
            _ID_TYPES,
            (state.video_id, state.asset_id, state.playback_id, state.live_stream_id),
            strict=True,
        ):
            if value is None:
                out.append(NONE)
            elif isinstance(value, bytes):
                out.append(value)
            else:
                out.append(content(id_type, value))
        out.append(self.environment)
        return b"".join(out)


def unpack_state(packed: bytes) -> tuple[ViewState, int, int, int, int]:
    """``(state, highest, seen, refreshed, writes)`` of a packed state (:func:`pack_state`):
    the tracker's state (its ids are their hashes, bytes), the highest sequence number, the
    bitmap of those seen up to it, when its counter memberships were last set (whole seconds,
    0: never) and its write counter."""
    flags, highest, lo, hi, viewer, refreshed, writes, present = _HEAD.unpack_from(packed)
    ids: list[bytes | None] = [None, None, None, None]
    at = _HEAD.size
    for bit in range(4):
        if present >> bit & 1:
            ids[bit] = packed[at : at + 8]
            at += 8
    state = _new_tuple(ViewState, (flags, *ids, int.from_bytes(viewer, "little")))
    return state, highest, lo | hi << 32, refreshed, writes


def pack_state(
    ids: bytes, state: ViewState, highest: int, seen: int, refreshed: float, writes: int
) -> bytes:
    """A view's packed state; ``ids`` as :meth:`ContentHashes.ids` gave them for ``state``."""
    present = 0
    kept = []
    for bit in range(5):
        value = ids[8 * bit : 8 * bit + 8]
        if value != NONE:
            present |= 1 << bit
            kept.append(value)
    head = _HEAD.pack(
        state.flags,
        highest,
        seen & _LOW32,
        seen >> 32,
        to8(state.viewer),
        int(refreshed),
        writes & 0xFFFF,
        present,
    )
    return head + b"".join(kept)


_new_tuple = tuple.__new__


def _constants() -> dict[str, object]:
    if tracker.SEQUENCE_MEMORY != 64:  # pragma: no cover - the state keeps two 32-bit halves
        raise AssertionError("a packed state keeps the sequence bitmap as two 32-bit halves")
    constants: dict[str, object] = {
        name: getattr(tracker, name) for name in ("STARTED", "PAUSED", "ENDED")
    }
    constants.update(
        STATE_FORMAT=STATE.lua,
        STATE_FIELDS=", ".join(STATE.names),
        STATE_IDS=", ".join(f"'{name}'" for name in STATE_IDS),
        IDS_OF=" .. ".join(f"st.{name}" for name in STATE_IDS),
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
