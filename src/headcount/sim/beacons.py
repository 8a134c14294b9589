"""mux-embed's beacons, imitated: the events one monitored player sends and the body they travel in.

What is imitated (``reference/beacons.md`` §2 and §3.4, checked against the real captures):

- an event carries the player's **full state** when it is ``viewstart`` or ``viewend``, when it is
  the first event of the player or of a new view, or when ten minutes have passed since the last
  event; every other event is a **delta**: the always-sent keys, the keys whose value changed, and
  the keys a few events always repeat (``renditionchange`` repeats ``video_source_*``...);
- ``view_sequence_number`` restarts with every view, ``player_sequence_number`` never does;
- the body is ``{"metadata": {...}, "events": [...]}`` with every event key abbreviated by
  mux-embed's scheme (:func:`headcount.core.keys.abbreviate_key`) and keys naming a ``url`` last.

Pure: ids come from the caller's ``random.Random`` and every time is the caller's client epoch ms,
so a seed gives the same bytes on every run (the benchmarks reuse it to make realistic bodies).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from headcount.core.keys import abbreviate_key

__all__ = [
    "PageSetup",
    "PlayerBeacons",
    "VideoSetup",
    "encode_body",
    "new_uuid",
]

API_VERSION = "2.1"
EMBED_VERSION = "5.19.0"
# mux-embed's sliding cookie session: ``session_expires`` is always now + 25 min.
SESSION_LENGTH_MS = 1_500_000
# After this long without an event, mux-embed sends the full state again (§3.4).
FULL_STATE_AFTER_MS = 600_000

FULL_STATE_EVENTS = frozenset({"viewstart", "viewend"})
# Keys in every event, changed or not (§3.4 "Delta events").
ALWAYS_SENT = frozenset(
    {
        "mux_api_version",
        "player_instance_id",
        "beacon_domain",
        "player_sequence_number",
        "view_sequence_number",
        "player_playhead_time",
        "viewer_time",
        "env_key",
        "video_id",
        "view_id",
        "view_playing_time_ms_cumulative",
        "event",
    }
)
# Keys some events repeat even when unchanged.
REPEATED_BY_EVENT: Mapping[str, tuple[str, ...]] = {
    "renditionchange": (
        "video_source_duration",
        "video_source_height",
        "video_source_width",
        "video_source_is_live",
        "video_source_domain",
        "video_source_hostname",
        "video_source_url",
    ),
    "playbackmodechange": ("player_playback_mode", "player_playback_mode_data"),
    "texttrackchange": ("player_text_track_enabled",),
}


def new_uuid(rng: random.Random) -> str:
    """A UUIDv4 drawn from ``rng`` (so a seed reproduces it)."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


@dataclass(frozen=True, slots=True)
class PageSetup:
    """What one browser tab holds: the page's ``mux.monitor`` options and the ``muxData`` cookie.

    ``mux_viewer_id`` is None for a page with ``disableCookies: true`` (no cookie, no session)."""

    env_key: str
    beacon_domain: str
    page_url: str
    player_name: str
    viewer_user_id: str | None
    mux_viewer_id: str | None
    session_id: str
    session_start_ms: int
    sample_number: float


@dataclass(frozen=True, slots=True)
class VideoSetup:
    """One piece of content as the page describes it in ``data``.

    ``source_url`` is a Mux-style ``https://stream.<domain>/<PLAYBACK_ID>.m3u8`` URL, from which a
    collector derives the playback id."""

    video_id: str
    title: str
    source_url: str
    duration_ms: int
    width: int = 1280
    height: int = 720


class PlayerBeacons:
    """The keys one ``mux.monitor()`` call would send, and what it sent last (its
    ``previousBeaconData``), turning each event into the full-state or delta dict it puts on the
    wire (full key names; :func:`encode_body` abbreviates them)."""

    def __init__(
        self, rng: random.Random, page: PageSetup, video: VideoSetup, *, init_ms: int
    ) -> None:
        self._rng = rng
        self.page = page
        self.instance_id = new_uuid(rng)
        self.player_sequence = 0
        self.view_sequence = 0
        self.view_id = ""
        self.view_count = 0
        self._previous: dict[str, Any] | None = None
        self._last_sent_ms: int | None = None
        self._state: dict[str, Any] = {
            "mux_api_version": API_VERSION,
            "mux_embed": "mux-embed",
            "mux_embed_version": EMBED_VERSION,
            "viewer_device_category": "",
            "player_instance_id": self.instance_id,
            "mux_sample_rate": 1,
            "beacon_domain": page.beacon_domain,
            "player_is_paused": True,
            "player_width": 640,
            "player_height": 360,
            "player_autoplay_on": False,
            "player_preload_on": "auto",
            "player_language_code": "",
            "player_is_fullscreen": False,
            "player_playhead_time": 0,
            "view_max_playhead_position": 0,
            "player_software": "HTML5 Video Element",
            "player_mux_plugin_name": "VideoElementMonitor",
            "player_mux_plugin_version": EMBED_VERSION,
            "env_key": page.env_key,
            "player_name": page.player_name,
            "player_init_time": init_ms,
            "viewer_connection_type": "wifi",
            "page_url": page.page_url,
        }
        if page.viewer_user_id is not None:
            self._state["viewer_user_id"] = page.viewer_user_id
        if page.mux_viewer_id is not None:
            self._state.update(
                session_id=page.session_id,
                session_start=page.session_start_ms,
                mux_viewer_id=page.mux_viewer_id,
                mux_sample_number=page.sample_number,
            )
        self.new_view(video)

    def new_view(self, video: VideoSetup) -> None:
        """``viewinit``: a new ``view_id`` and a fresh view sequence (after ``videochange``)."""
        self.view_id = new_uuid(self._rng)
        self.view_sequence = 0
        self._previous = None  # the first event of a view carries the full state
        for key in [k for k in self._state if k.startswith("view_") and k != "view_id"]:
            del self._state[key]
        self._state.update(
            view_id=self.view_id,
            view_playing_time_ms_cumulative=0,
            view_max_playhead_position=0,
            player_playhead_time=0,
            video_id=video.video_id,
            video_title=video.title,
            video_stream_type="on-demand",
            video_source_url=video.source_url,
            video_source_hostname=video.source_url.split("/")[2],
            video_source_domain=".".join(video.source_url.split("/")[2].split(".")[-2:]),
            video_source_duration=video.duration_ms,
            video_source_width=video.width,
            video_source_height=video.height,
            video_source_is_live=False,
        )

    def start_view(self, at_ms: int) -> None:
        """The state change behind ``viewstart``: from now on every event says the view started."""
        self.view_count += 1
        self._state.update(
            view_start=at_ms,
            player_view_count=self.view_count,
            view_watch_time=0,
            player_playback_mode="standard",
            player_playback_mode_data="{}",
            video_playback_range="[]",
        )

    def state_value(self, key: str) -> Any:
        """The current value of ``key`` (None when the player does not send it)."""
        return self._state.get(key)

    def emit(self, event: str, at_ms: int, **changes: Any) -> dict[str, Any]:
        """The event as mux-embed would send it at client time ``at_ms``."""
        self.player_sequence += 1
        self.view_sequence += 1
        state = self._state
        state.update(changes)
        state["player_sequence_number"] = self.player_sequence
        state["view_sequence_number"] = self.view_sequence
        state["viewer_time"] = at_ms
        if "session_id" in state:
            state["session_expires"] = at_ms + SESSION_LENGTH_MS
        state["event"] = event
        full = (
            self._previous is None
            or event in FULL_STATE_EVENTS
            or (
                self._last_sent_ms is not None and at_ms - self._last_sent_ms >= FULL_STATE_AFTER_MS
            )
        )
        if full:
            sent = dict(state)
        else:
            previous = self._previous or {}
            repeated = REPEATED_BY_EVENT.get(event, ())
            sent = {
                k: v
                for k, v in state.items()
                if k in ALWAYS_SENT or k in repeated or previous.get(k, _ABSENT) != v
            }
        # After a viewend mux-embed forgets what it sent, so the next view starts in full.
        self._previous = None if event == "viewend" else dict(state)
        self._last_sent_ms = at_ms
        return sent


_ABSENT = object()


@lru_cache(maxsize=4096)
def _short(key: str) -> str:
    return abbreviate_key(key)


def _abbreviated(event: Mapping[str, Any]) -> dict[str, Any]:
    # mux-embed's encoder moves keys that contain the word ``url`` to the end of the object.
    plain = [k for k in event if "url" not in k.split("_")]
    urls = [k for k in event if "url" in k.split("_")]
    return {_short(k): event[k] for k in (*plain, *urls)}


def encode_body(
    events: Iterable[Mapping[str, Any]], *, transmission_ms: int, rtt_ms: int | None = None
) -> bytes:
    """The POST body mux-embed sends: metadata keys spelled out, event keys abbreviated."""
    metadata: dict[str, int] = {"transmission_timestamp": transmission_ms}
    if rtt_ms is not None:
        metadata["rtt_ms"] = rtt_ms
    return orjson.dumps({"metadata": metadata, "events": [_abbreviated(e) for e in events]})
