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
    "read_keyed_event",
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


_new_tuple = tuple.__new__


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


def read_keyed_event(event: dict[str, Any]) -> tuple[str, ViewEvent]:
    """``(event_env_key(event), read_view_event(event))`` in one call, checked in that order
    (the collector's per-event path)."""
    env_key = event.get("ake")
    if env_key is None:
        env_key = event.get("env_key")
    if type(env_key) is not str or not env_key or len(env_key) > MAX_ID_LENGTH:
        env_key = _required_string(event, _ENV_KEY)  # raises (or takes a str subclass)
    return env_key, read_view_event(event)


def _optional_id(value: Any, reason: str) -> str | None:
    """An optional id off the common path: ``""`` is "not set", anything else bad is refused."""
    if value == "":
        return None
    if type(value) is str and len(value) <= MAX_ID_LENGTH:
        return value
    raise EventRejected(reason)


def read_view_event(event: dict[str, Any]) -> ViewEvent:
    """What counting needs of one event, abbreviated or spelled out (or decoded)."""
    # Unrolled, with both spellings as literals (mux-embed's abbreviations, tested against
    # the key table) and a Python call only off the common path: this runs for every event
    # the collector receives. Fields are checked in ViewEvent's order, so the first bad one
    # names the reason.
    get = event.get
    name = get("e")
    if name is None:
        name = get("event")
    if type(name) is not str or not name or len(name) > MAX_ID_LENGTH:
        name = _required_string(event, _EVENT)
    view_id = get("xid")
    if view_id is None:
        view_id = get("view_id")
    if type(view_id) is not str or not view_id or len(view_id) > MAX_ID_LENGTH:
        view_id = _required_string(event, _VIEW_ID)
    sequence = get("xsqno")
    if sequence is None:
        sequence = get("view_sequence_number")
    if sequence is not None and (
        type(sequence) is not int or not 0 <= sequence <= MAX_SEQUENCE  # bool is not a number
    ):
        raise EventRejected("invalid_view_sequence_number")
    video_id = get("vid")
    if video_id is None:
        video_id = get("video_id")
    if video_id is not None and (
        type(video_id) is not str or not video_id or len(video_id) > MAX_ID_LENGTH
    ):
        video_id = _optional_id(video_id, "invalid_video_id")
    asset_id = get("asset_id")  # not abbreviated
    if asset_id is not None and (
        type(asset_id) is not str or not asset_id or len(asset_id) > MAX_ID_LENGTH
    ):
        asset_id = _optional_id(asset_id, "invalid_asset_id")
    playback_id = get("playback_id")  # not abbreviated
    if playback_id is not None and (
        type(playback_id) is not str or not playback_id or len(playback_id) > MAX_ID_LENGTH
    ):
        playback_id = _optional_id(playback_id, "invalid_playback_id")
    live_stream_id = get("live_smid")
    if live_stream_id is None:
        live_stream_id = get("live_stream_id")
    if live_stream_id is not None and (
        type(live_stream_id) is not str or not live_stream_id or len(live_stream_id) > MAX_ID_LENGTH
    ):
        live_stream_id = _optional_id(live_stream_id, "invalid_live_stream_id")
    source_url = get("vsour")
    if source_url is None:
        source_url = get("video_source_url")
    if source_url is not None and (
        type(source_url) is not str or not source_url or len(source_url) > MAX_ID_LENGTH
    ):
        source_url = _optional_id(source_url, "invalid_video_source_url")
    viewer_user_id = get("uusid")
    if viewer_user_id is None:
        viewer_user_id = get("viewer_user_id")
    if viewer_user_id is not None and (
        type(viewer_user_id) is not str or not viewer_user_id or len(viewer_user_id) > MAX_ID_LENGTH
    ):
        viewer_user_id = _optional_id(viewer_user_id, "invalid_viewer_user_id")
    mux_viewer_id = get("mvrid")
    if mux_viewer_id is None:
        mux_viewer_id = get("mux_viewer_id")
    if mux_viewer_id is not None and (
        type(mux_viewer_id) is not str or not mux_viewer_id or len(mux_viewer_id) > MAX_ID_LENGTH
    ):
        mux_viewer_id = _optional_id(mux_viewer_id, "invalid_mux_viewer_id")
    starts = name == "viewstart" or get("xst") is not None or get("view_start") is not None
    # tuple.__new__ directly: the NamedTuple's generated __new__ is one more Python call.
    return _new_tuple(
        ViewEvent,
        (
            name,
            view_id,
            sequence,
            starts,
            video_id,
            asset_id,
            playback_id,
            live_stream_id,
            source_url,
            viewer_user_id,
            mux_viewer_id,
        ),
    )
