"""Content id types: the four ``aud`` values of a viewer-counts token; the ids of a view."""

from __future__ import annotations

from typing import Final, Literal

__all__ = ["ID_TYPES", "SHORT_ID_TYPES", "IdType"]

IdType = Literal["video_id", "asset_id", "playback_id", "live_stream_id"]

ID_TYPES: Final[tuple[IdType, ...]] = ("video_id", "asset_id", "playback_id", "live_stream_id")

# mux-node's signViewerCounts `type` option -> the `aud` it writes.
SHORT_ID_TYPES: Final[dict[str, IdType]] = {
    "video": "video_id",
    "asset": "asset_id",
    "playback": "playback_id",
    "live_stream": "live_stream_id",
}
