"""The packed event ``partition.lua`` reads: its head, then the ids it carries in the order of
``EVENT_IDS`` (the Lua script takes that order from the same tuple). Packing an event whose
ids are all different and reading it back by ``EVENT_IDS`` proves :class:`EventPacker` writes
each id where the script looks for it."""

from __future__ import annotations

from headcount.core.events import ViewEvent, playback_id_from_source_url
from headcount.core.identity import VIEWER_COOKIE, VIEWER_USER, content_key, viewer_hash
from headcount.history.model import ENVIRONMENT
from headcount.stores.redis_codec import (
    EVENT,
    EVENT_IDS,
    FIELD_SEQUENCE,
    FIELD_SOURCE,
    EventPacker,
    to8,
)

ENV = "env-codec"
VIEW = to8(12345)
SOURCE = "https://stream.mux.com/PBsourceXYZ.m3u8"


def _read(packed: bytes) -> tuple[tuple[object, ...], dict[str, bytes]]:
    head = EVENT.struct.unpack_from(packed)
    at = EVENT.struct.size
    ids: dict[str, bytes] = {}
    present = head[EVENT.names.index("ids")]
    for bit, name in enumerate(EVENT_IDS):
        if present & (1 << bit):
            ids[name] = packed[at : at + 8]
            at += 8
    assert at == len(packed), "bytes left over after the ids the head names"
    return head, ids


def test_every_id_lands_where_the_script_reads_it() -> None:
    event = ViewEvent(
        name="viewstart",
        view_id="v",
        sequence=7,
        video_id="vid",
        asset_id="asset",
        playback_id="pb",
        live_stream_id="live",
        source_url=SOURCE,
        viewer_user_id="user",
        mux_viewer_id="cookie",
    )
    head, ids = _read(EventPacker(ENV).pack(VIEW, 3, event))
    source_playback = playback_id_from_source_url(SOURCE)
    assert source_playback is not None
    assert ids == {
        "video": to8(content_key(ENV, "video_id", "vid")),
        "asset": to8(content_key(ENV, "asset_id", "asset")),
        "playback": to8(content_key(ENV, "playback_id", "pb")),
        "live": to8(content_key(ENV, "live_stream_id", "live")),
        "source_playback": to8(content_key(ENV, "playback_id", source_playback)),
        "user": to8(viewer_hash(VIEWER_USER, "user")),
        "cookie": to8(viewer_hash(VIEWER_COOKIE, "cookie")),
        "env": to8(content_key(ENV, ENVIRONMENT, ENV)),
    }
    fields = dict(zip(EVENT.names, head, strict=True))
    assert (fields["view"], fields["pair"], fields["sequence"]) == (VIEW, 3, 7)
    assert fields["fields"] == FIELD_SEQUENCE | FIELD_SOURCE


def test_an_absent_id_takes_no_room_and_a_repeated_view_repeats_its_ids() -> None:
    packer = EventPacker(ENV)
    bare = ViewEvent(name="hb", view_id="v")
    _, ids = _read(packer.pack(VIEW, 0, bare))
    assert set(ids) == {"env"}  # every event counts under its environment
    first = packer.pack(VIEW, 0, ViewEvent(name="hb", view_id="v", video_id="a"))
    second = packer.pack(VIEW, 0, ViewEvent(name="hb", view_id="v", video_id="b"))
    assert _read(first)[1]["video"] == to8(content_key(ENV, "video_id", "a"))
    assert _read(second)[1]["video"] == to8(content_key(ENV, "video_id", "b"))
    # A source that is not a Mux URL: the field is set and no derived playback id follows.
    head, ids = _read(packer.pack(VIEW, 0, ViewEvent(name="hb", view_id="v", source_url="x")))
    assert "source_playback" not in ids
    assert dict(zip(EVENT.names, head, strict=True))["fields"] == FIELD_SOURCE
