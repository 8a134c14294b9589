"""The view state machine, table-driven: event sequences in, happening/ids/viewer out."""

from __future__ import annotations

import pytest

from headcount.core.events import ViewEvent
from headcount.core.identity import VIEWER_COOKIE, VIEWER_USER, viewer_hash
from headcount.core.tracker import (
    ENDED,
    EXPLICIT_PLAYBACK,
    NEW_VIEW,
    PAUSED,
    SEQUENCE_MEMORY,
    STARTED,
    ViewState,
    accept_sequence,
    counter_ids,
    is_happening,
    step,
    viewer_kind,
)


def ev(name: str, **fields: object) -> ViewEvent:
    return ViewEvent(name=name, view_id="v1", **fields)  # type: ignore[arg-type]


def run(*events: ViewEvent) -> ViewState:
    state = step(NEW_VIEW, events[0], first_seen=True)
    for event in events[1:]:
        state = step(state, event)
    return state


START = ev("viewstart", starts=True)

# (what happened, events, happening?, happening when paused views count?)
LIFECYCLE = [
    ("player loaded, never played", [ev("playerready"), ev("loadstart")], False, False),
    ("viewstart", [ev("playerready"), START], True, True),
    ("an event carrying view_start", [ev("playbackmodechange", starts=True)], True, True),
    ("pause leaves", [START, ev("pause")], False, True),
    ("play returns", [START, ev("pause"), ev("play")], True, True),
    ("playing returns", [START, ev("pause"), ev("playing")], True, True),
    ("ended leaves", [START, ev("playing"), ev("ended")], False, True),
    ("heartbeat while paused keeps it paused", [START, ev("pause"), ev("hb")], False, True),
    ("viewend ends", [START, ev("viewend")], False, False),
    ("no resurrection after viewend", [START, ev("viewend"), ev("play")], False, False),
    ("duplicate viewend", [START, ev("viewend"), ev("viewend")], False, False),
    ("play proves the start", [ev("playerready"), ev("play")], True, True),
    ("first seen: heartbeat", [ev("hb")], True, True),
    ("first seen: pause", [ev("pause")], False, True),
    ("first seen: pause, then play", [ev("pause"), ev("play")], True, True),
    ("first seen: ended", [ev("ended")], False, True),
    ("first seen: viewend", [ev("viewend")], False, False),
    ("first seen: seeking does not start", [ev("seeking")], False, False),
    ("first seen: requestcompleted does not start", [ev("requestcompleted")], False, False),
    ("known view: heartbeat does not start it", [ev("playerready"), ev("hb")], False, False),
    ("known view: pause does not start it", [ev("playerready"), ev("pause")], False, False),
    ("rebuffering does not pause", [START, ev("rebufferstart"), ev("waiting")], True, True),
]


@pytest.mark.parametrize(
    ("events", "happening", "happening_if_paused_count"),
    [case[1:] for case in LIFECYCLE],
    ids=[case[0] for case in LIFECYCLE],
)
def test_lifecycle(
    events: list[ViewEvent], happening: bool, happening_if_paused_count: bool
) -> None:
    state = run(*events)
    assert is_happening(state.flags, count_paused=False) is happening
    assert is_happening(state.flags, count_paused=True) is happening_if_paused_count


def test_flags_of_a_paused_started_view() -> None:
    state = run(START, ev("pause"))
    assert state.flags & (STARTED | PAUSED | ENDED) == STARTED | PAUSED


def test_ids_arrive_in_full_state_and_survive_deltas() -> None:
    full = ev(
        "viewstart",
        starts=True,
        video_id="vid1",
        source_url="https://stream.mux.com/PB123abc.m3u8?token=xyz",
        asset_id="asset1",
        live_stream_id="ls1",
        mux_viewer_id="cookie-1",
    )
    state = run(full, ev("hb", video_id="vid1"), ev("hb"))
    assert (state.video_id, state.asset_id, state.playback_id, state.live_stream_id) == (
        "vid1",
        "asset1",
        "PB123abc",
        "ls1",
    )
    assert counter_ids(state) == ((0, "vid1"), (1, "asset1"), (2, "PB123abc"), (3, "ls1"))
    assert state.viewer == viewer_hash(VIEWER_COOKIE, "cookie-1")


@pytest.mark.parametrize(
    ("url", "playback_id"),
    [
        ("https://stream.mux.com/TESTpbid00LocalOnly01.m3u8", "TESTpbid00LocalOnly01"),
        ("https://stream.mux.com/abc123.m3u8?token=eyJ.x.y", "abc123"),
        ("https://stream.example.com/abc123.m3u8?max_resolution=720p", "abc123"),
        ("https://stream.mux.com/abc123.m3u8#t=10", "abc123"),
        ("http://127.0.0.1:18081/video.webm", None),
        ("https://cdn.example.com/abc123.m3u8", None),
        ("https://stream.mux.com/abc123.mp4", None),
        ("https://stream.mux.com/a/b.m3u8", None),
    ],
)
def test_playback_id_from_source_url(url: str, playback_id: str | None) -> None:
    assert run(ev("viewstart", starts=True, source_url=url)).playback_id == playback_id


def test_explicit_playback_id_wins_over_the_source_url() -> None:
    state = run(
        ev("viewstart", starts=True, playback_id="explicit1"),
        ev("renditionchange", source_url="https://stream.mux.com/derived1.m3u8"),
    )
    assert state.playback_id == "explicit1"
    assert state.flags & EXPLICIT_PLAYBACK


def test_a_non_mux_source_clears_a_derived_playback_id() -> None:
    state = run(
        ev("viewstart", starts=True, source_url="https://stream.mux.com/derived1.m3u8"),
        ev("renditionchange", source_url="https://cdn.example.com/other.m3u8"),
    )
    assert state.playback_id is None


IDENTITY = [
    ("no ids: the view is its own viewer", [ev("hb")], 0, 0),
    ("cookie", [ev("viewstart", mux_viewer_id="c1")], VIEWER_COOKIE, ("m", "c1")),
    (
        "user beats cookie",
        [ev("viewstart", mux_viewer_id="c1", viewer_user_id="u1")],
        VIEWER_USER,
        ("u", "u1"),
    ),
    ("a viewend changes nothing but the end", [ev("hb"), ev("viewend", mux_viewer_id="c1")], 0, 0),
    (
        "upgrade from self to cookie",
        [ev("hb"), ev("viewstart", mux_viewer_id="c1")],
        VIEWER_COOKIE,
        ("m", "c1"),
    ),
    (
        "cookie then user",
        [ev("hb", mux_viewer_id="c1"), ev("hb", viewer_user_id="u1")],
        VIEWER_USER,
        ("u", "u1"),
    ),
    (
        "user is not downgraded by a cookie",
        [ev("hb", viewer_user_id="u1"), ev("hb", mux_viewer_id="c2")],
        VIEWER_USER,
        ("u", "u1"),
    ),
    (
        "latest user id",
        [ev("hb", viewer_user_id="u1"), ev("hb", viewer_user_id="u2")],
        VIEWER_USER,
        ("u", "u2"),
    ),
    (
        "latest cookie",
        [ev("hb", mux_viewer_id="c1"), ev("hb", mux_viewer_id="c2")],
        VIEWER_COOKIE,
        ("m", "c2"),
    ),
    (
        "deltas keep the identity",
        [ev("viewstart", viewer_user_id="u1"), ev("hb"), ev("pause")],
        VIEWER_USER,
        ("u", "u1"),
    ),
]


@pytest.mark.parametrize(
    ("events", "kind", "viewer"), [c[1:] for c in IDENTITY], ids=[c[0] for c in IDENTITY]
)
def test_viewer_identity(events: list[ViewEvent], kind: int, viewer: object) -> None:
    state = run(*events)
    assert viewer_kind(state) == kind
    if viewer == 0:
        assert state.viewer == 0
    else:
        assert isinstance(viewer, tuple)
        tag, value = viewer
        assert state.viewer == viewer_hash(VIEWER_USER if tag == "u" else VIEWER_COOKIE, value)


def test_user_and_cookie_with_the_same_text_are_different_viewers() -> None:
    assert viewer_hash(VIEWER_USER, "same") != viewer_hash(VIEWER_COOKIE, "same")


def test_ended_view_ignores_ids() -> None:
    ended = run(ev("viewstart", video_id="a"), ev("viewend"))
    assert step(ended, ev("hb", video_id="b", viewer_user_id="u")) == ended


def test_events_without_state_or_ids_change_nothing_on_a_known_view() -> None:
    # The memory store skips `step` for such events (and for ones repeating the kept ids).
    for state in [run(START), run(START, ev("pause")), run(ev("playerready"))]:
        for event in [ev("hb"), ev("seeking"), ev("requestcompleted")]:
            assert step(state, event) == state


# (highest, seen bitmap, incoming sequence) -> (is_new, highest, seen)
SEQUENCES = [
    ((0, 0, 5), (True, 5, 0b1)),  # first number of a view
    ((5, 0b1, 5), (False, 5, 0b1)),  # the same again
    ((5, 0b1, 6), (True, 6, 0b11)),
    ((5, 0b1, 8), (True, 8, 0b1001)),  # a gap
    ((8, 0b1001, 7), (True, 8, 0b1011)),  # late, inside the gap
    ((8, 0b1011, 7), (False, 8, 0b1011)),
    ((8, 0b1001, 5), (False, 8, 0b1001)),
    ((100, 0b1, 100 - SEQUENCE_MEMORY), (False, 100, 0b1)),  # too old to know: duplicate
    ((100, 0b1, 100 - SEQUENCE_MEMORY + 1), (True, 100, 0b1 | 1 << (SEQUENCE_MEMORY - 1))),
    ((5, 0b1, 5 + SEQUENCE_MEMORY + 3), (True, 5 + SEQUENCE_MEMORY + 3, 0b1)),
]


@pytest.mark.parametrize(("given", "expected"), SEQUENCES)
def test_accept_sequence(given: tuple[int, int, int], expected: tuple[bool, int, int]) -> None:
    assert accept_sequence(*given) == expected


def test_a_resent_batch_is_recognised_event_by_event() -> None:
    highest, seen = 0, 0
    for sequence in range(1, 8):
        new, highest, seen = accept_sequence(highest, seen, sequence)
        assert new
    resent = [accept_sequence(highest, seen, s)[0] for s in range(1, 8)]
    assert resent == [False] * 7
    assert accept_sequence(highest, seen, 8)[0]
