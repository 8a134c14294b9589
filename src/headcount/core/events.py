"""What counting reads from one beacon event, checked.

An event carries up to ~100 keys; counting needs a dozen. :func:`read_view_event` picks them,
under either spelling a client may send (mux-embed's abbreviation or the full name, so the
collector never expands every key of every event: that expansion was a third of its time per
request), checks their types, and says why an event cannot be used (a short, stable *reason*
that the collector reports per event and counts in its metrics). Nothing here knows about
environments beyond reading ``env_key``.

Decisions where the protocol is silent:

* Ids (content ids, viewer ids) must be strings; an empty string or ``null`` means "not set"
  (mux-embed sends ``""`` for some unset fields). Ids longer than :data:`MAX_ID_LENGTH` are
  refused: they are kept in memory for the life of a view.
* ``view_sequence_number`` is optional (clients of the spelled-out JSON may not number their
  events); an event without one is never treated as a duplicate. When present it must be an
  integer in ``0 .. 2**32-1``.
* ``view_start`` being present (any non-null value) means the view has started (beacons.md
  §2.3); its value, a client clock, is not used.
"""

from __future__ import annotations

import re
from typing import Any, Final, NamedTuple

from headcount.core.keys import abbreviate_key

__all__ = [
    "MAX_ID_LENGTH",
    "MAX_SEQUENCE",
    "EventRejected",
    "ViewEvent",
    "event_env_key",
    "playback_id_from_source_url",
    "read_view_event",
]

MAX_ID_LENGTH: Final[int] = 512
MAX_SEQUENCE: Final[int] = 2**32 - 1

# A Mux Video source: https://stream.<domain>/<PLAYBACK_ID>.m3u8, then optionally a query
# (signed playback `?token=...`, `?max_resolution=...`) or a fragment (beacons.md §2.4).
_MUX_SOURCE = re.compile(r"https://stream\.[A-Za-z0-9.-]+/([A-Za-z0-9]+)\.m3u8(?:[?#].*)?", re.S)


class EventRejected(Exception):
    """One event cannot be counted; ``reason`` is short, stable and safe to use as a label."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ViewEvent(NamedTuple):
    # A NamedTuple, not a frozen dataclass: one is built per event on the collector's hot path,
    # and a frozen dataclass pays an object.__setattr__ per field.
    name: str
    view_id: str
    sequence: int | None = None
    starts: bool = False  # `viewstart`, or the event carries `view_start`
    video_id: str | None = None
    asset_id: str | None = None
    playback_id: str | None = None  # explicit `playback_id` field only
    live_stream_id: str | None = None
    source_url: str | None = None
    viewer_user_id: str | None = None
    mux_viewer_id: str | None = None


def playback_id_from_source_url(url: str) -> str | None:
    """The playback id of a Mux-style source URL (query stripped), else None."""
    match = _MUX_SOURCE.fullmatch(url)
    return match.group(1) if match else None


def _spelled(full: str) -> tuple[str, str, str]:
    """``(short, full, reason suffix)``: where a field may be found, and its name in reasons."""
    return abbreviate_key(full), full, full


_EVENT = _spelled("event")
_VIEW_ID = _spelled("view_id")
_ENV_KEY = _spelled("env_key")
_SEQUENCE = _spelled("view_sequence_number")
_VIEW_START = _spelled("view_start")
# The optional string fields of ViewEvent, in its order after `starts`.
_OPTIONAL_IDS: Final[tuple[tuple[str, str, str], ...]] = tuple(
    _spelled(full)
    for full in (
        "video_id",
        "asset_id",
        "playback_id",
        "live_stream_id",
        "video_source_url",
        "viewer_user_id",
        "mux_viewer_id",
    )
)


def _field(event: dict[str, Any], spelling: tuple[str, str, str]) -> Any:
    value = event.get(spelling[0])
    return event.get(spelling[1]) if value is None else value


def _required_string(event: dict[str, Any], spelling: tuple[str, str, str]) -> str:
    value = _field(event, spelling)
    if value is None or value == "":
        raise EventRejected("missing_" + spelling[2])
    if not isinstance(value, str) or len(value) > MAX_ID_LENGTH:
        raise EventRejected("invalid_" + spelling[2])
    return value


def event_env_key(event: dict[str, Any]) -> str:
    """The environment key an event was sent with (mux-embed sends it in every event)."""
    return _required_string(event, _ENV_KEY)


def read_view_event(event: dict[str, Any]) -> ViewEvent:
    """What counting needs of one event, abbreviated or spelled out (or decoded)."""
    name = _required_string(event, _EVENT)
    view_id = _required_string(event, _VIEW_ID)
    get = event.get
    sequence = _field(event, _SEQUENCE)
    if sequence is not None and (
        type(sequence) is not int or not 0 <= sequence <= MAX_SEQUENCE  # bool is not a number
    ):
        raise EventRejected("invalid_view_sequence_number")
    ids: list[str | None] = []
    for short, full, reason in _OPTIONAL_IDS:
        value = get(short)
        if value is None:
            value = get(full)
        if value is None or value == "":
            ids.append(None)
        elif type(value) is str and len(value) <= MAX_ID_LENGTH:
            ids.append(value)
        else:
            raise EventRejected("invalid_" + reason)
    return ViewEvent(
        name,
        view_id,
        sequence,
        name == "viewstart" or _field(event, _VIEW_START) is not None,
        *ids,
    )
