"""read_view_event reads the fields counting needs under either spelling, and checks them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headcount.core.decode import decode_beacon
from headcount.core.events import (
    EventRejected,
    ViewEvent,
    event_env_key,
    read_keyed_event,
    read_view_event,
)
from headcount.core.keys import abbreviate_key

CAPTURES = Path(__file__).parents[1] / "fixtures" / "beacons"
RAW_FILES = sorted(CAPTURES.glob("*/raw/*.json"))


@pytest.mark.parametrize("raw", RAW_FILES, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_raw_abbreviated_event_reads_like_its_spelled_out_twin(raw: Path) -> None:
    as_sent = decode_beacon(raw.read_bytes(), expand=False).events
    spelled = json.loads((raw.parents[1] / "decoded" / raw.name).read_text("utf-8"))["events"]
    assert len(as_sent) == len(spelled) > 0
    for short, full in zip(as_sent, spelled, strict=True):
        assert "xid" in short and "view_id" in full  # really two spellings
        assert read_view_event(short) == read_view_event(full)
        assert event_env_key(short) == event_env_key(full) == "testenv123"


def test_scenario_a_viewstart_carries_the_identity_and_ids() -> None:
    first = sorted((CAPTURES / "A-video-element" / "raw").glob("001-*.json"))[0]
    events = decode_beacon(first.read_bytes(), expand=False).events
    viewstart = read_view_event(events[-1])
    assert isinstance(viewstart, ViewEvent)
    assert viewstart.name == "viewstart" and viewstart.starts
    assert viewstart.video_id == "my-video-id-1"
    assert viewstart.viewer_user_id == "user-42"
    assert viewstart.mux_viewer_id  # the cookie id of that browser profile
    assert viewstart.sequence == 6


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"xid": "v1"}, "missing_event"),
        ({"e": "hb"}, "missing_view_id"),
        ({"e": "hb", "xid": 7}, "invalid_view_id"),
        ({"e": "hb", "xid": "v1", "xsqno": "3"}, "invalid_view_sequence_number"),
        ({"e": "hb", "xid": "v1", "xsqno": True}, "invalid_view_sequence_number"),
        ({"e": "hb", "xid": "v1", "vid": ["x"]}, "invalid_video_id"),
        ({"event": "hb", "view_id": "v1", "viewer_user_id": 5}, "invalid_viewer_user_id"),
        ({"e": "hb", "xid": "v1", "live_smid": "x" * 513}, "invalid_live_stream_id"),
    ],
)
def test_bad_fields_are_rejected_with_a_reason_named_after_the_full_key(
    event: dict[str, object], reason: str
) -> None:
    with pytest.raises(EventRejected) as caught:
        read_view_event(event)
    assert caught.value.reason == reason


def test_empty_strings_mean_not_set_in_either_spelling() -> None:
    event = read_view_event({"e": "hb", "xid": "v1", "vid": "", "video_id": ""})
    assert event.video_id is None


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        ({"e": "hb", "xid": "v1"}, "missing_env_key"),  # env_key is checked first
        ({"ake": "", "e": 7}, "missing_env_key"),
        ({"ake": 5, "xid": "v1"}, "invalid_env_key"),
        ({"env_key": "k", "xid": "v1"}, "missing_event"),
        ({"ake": "k", "e": "hb", "xid": "v1", "uusid": ["u"]}, "invalid_viewer_user_id"),
        ({"ake": "k", "e": "hb", "xid": "v1", "vsour": 3}, "invalid_video_source_url"),
        ({"ake": "k", "e": "hb", "xid": "v1", "mvrid": "m" * 513}, "invalid_mux_viewer_id"),
    ],
)
def test_read_keyed_event_checks_the_env_key_then_the_event(
    event: dict[str, object], reason: str
) -> None:
    with pytest.raises(EventRejected) as caught:
        read_keyed_event(event)
    assert caught.value.reason == reason


@pytest.mark.parametrize("raw", RAW_FILES, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_read_keyed_event_is_the_env_key_and_the_view_event(raw: Path) -> None:
    for event in decode_beacon(raw.read_bytes(), expand=False).events:
        assert read_keyed_event(event) == (event_env_key(event), read_view_event(event))


def test_a_str_subclass_env_key_is_read_like_the_slow_path() -> None:
    class Key(str):
        pass

    env_key, event = read_keyed_event({"ake": Key("k"), "e": "hb", "xid": "v1"})
    assert env_key == "k" and event.view_id == "v1"


FIELDS = {
    "video_id": "video_id",
    "asset_id": "asset_id",
    "playback_id": "playback_id",
    "live_stream_id": "live_stream_id",
    "video_source_url": "source_url",
    "viewer_user_id": "viewer_user_id",
    "mux_viewer_id": "mux_viewer_id",
}


@pytest.mark.parametrize("full", sorted(FIELDS))
@pytest.mark.parametrize("abbreviated", [True, False])
def test_every_field_is_read_under_the_key_tables_spelling(full: str, abbreviated: bool) -> None:
    # The reader spells mux-embed's abbreviations literally: they must be the key table's.
    def key(name: str) -> str:
        return abbreviate_key(name) if abbreviated else name

    event = {
        key("env_key"): "k",
        key("event"): "hb",
        key("view_id"): "v1",
        key("view_sequence_number"): 4,
        key("view_start"): 1,
        key(full): "x",
    }
    env_key, read = read_keyed_event(event)
    assert env_key == "k"
    assert (read.name, read.view_id, read.sequence, read.starts) == ("hb", "v1", 4, True)
    assert getattr(read, FIELDS[full]) == "x"
    assert [f for f in FIELDS.values() if getattr(read, f) is not None] == [FIELDS[full]]
