"""The audience model in simulated time: its bodies are real mux-embed beacons (the collector's
own decoder reads them), its behaviour follows the reference captures, and its expected counts
follow DESIGN.md's rules. No clock, no server, no sleeps."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

import pytest

import headcount.sim as sim
from headcount.core.decode import decode_beacon
from headcount.core.events import event_env_key, playback_id_from_source_url, read_view_event
from headcount.sim import Audience, AudiencePlan, ExpectedCounts, Post
from headcount.stores.live import Counts

ENV_KEY = "simenv1"


def plan(**changes: Any) -> AudiencePlan:
    base: dict[str, Any] = {
        "env_key": ENV_KEY,
        "viewers": 120,
        "videos": 8,
        "duration": 900.0,
        "seed": 7,
        "failure_rate": 0.05,
    }
    return AudiencePlan(**(base | changes))


def run(p: AudiencePlan) -> tuple[Audience, list[Post]]:
    audience = Audience(p)
    posts = audience.advance(p.duration)
    return audience, posts


@pytest.fixture(scope="module")
def played() -> tuple[Audience, list[Post]]:
    return run(plan())


def views_of(posts: list[Post]) -> dict[str, list[tuple[Post, dict[str, Any]]]]:
    """view_id -> (post, event) in delivery order, duplicates included."""
    out: dict[str, list[tuple[Post, dict[str, Any]]]] = defaultdict(list)
    for post in posts:
        for event in post.events:
            out[event["view_id"]].append((post, event))
    return out


def test_the_package_exports_exactly_what_its_modules_export() -> None:
    modules = (
        sim.audience,
        sim.beacons,
        sim.expected,
        sim.player,
        sim.runner,
        sim.server_counts,
    )
    assert sorted(sim.__all__) == sorted(name for m in modules for name in m.__all__)
    assert all(hasattr(sim, name) for name in sim.__all__)


def test_every_body_decodes_with_the_collectors_decoder_into_the_events_generated(
    played: tuple[Audience, list[Post]],
) -> None:
    _, posts = played
    assert len(posts) > 1000
    for post in posts:
        beacon = decode_beacon(post.body())
        assert beacon.metadata["transmission_timestamp"] == post.transmission_ms
        # Abbreviation round-trips: what the collector reads is what the page meant to send.
        assert beacon.events == list(post.events)
        for event in beacon.events:
            assert event_env_key(event) == ENV_KEY
            view_event = read_view_event(event)  # raises EventRejected on anything invalid
            assert view_event.video_id is not None
            assert view_event.sequence == event["view_sequence_number"]


def test_bodies_use_mux_embeds_short_keys_and_put_urls_last(
    played: tuple[Audience, list[Post]],
) -> None:
    _, posts = played
    first = next(p for p in posts if p.events[0]["event"] == "networkchange")
    raw = first.body().decode()
    assert raw.startswith('{"metadata":{"transmission_timestamp":')
    for short in ('"xid":', '"xsqno":', '"psqno":', '"ake":', '"vid":', '"mvrid":', '"e":'):
        assert short in raw
    assert '"view_id"' not in raw
    event = decode_beacon(first.body()).events[0]
    assert list(event)[-2:] == ["page_url", "video_source_url"]


def test_full_state_first_and_at_viewstart_and_viewend_deltas_otherwise(
    played: tuple[Audience, list[Post]],
) -> None:
    _, posts = played
    for events in views_of(posts).values():
        first = events[0][1]
        assert "video_source_url" in first and "player_name" in first
        for _, event in events:
            if event["event"] in ("viewstart", "viewend"):
                assert {"video_source_url", "player_name", "page_url", "view_start"} <= set(event)
            if event["event"] == "hb":
                # Heartbeats carry no identity: the server must remember it per view.
                assert "viewer_user_id" not in event and "mux_viewer_id" not in event
                assert "video_source_url" not in event
                assert {"view_id", "env_key", "video_id", "player_instance_id"} <= set(event)


def test_identity_arrives_in_full_state_events_as_the_viewer_set_it(
    played: tuple[Audience, list[Post]],
) -> None:
    _, posts = played
    kinds: Counter[str] = Counter()
    for events in views_of(posts).values():
        for _, start in events:
            if start["event"] == "viewstart":
                if "viewer_user_id" in start:
                    kinds["user"] += 1
                elif "mux_viewer_id" in start:
                    kinds["cookie"] += 1
                else:
                    kinds["none"] += 1
                break
    # Logged-in viewers, anonymous viewers with mux-embed's cookie, and cookieless ones.
    assert kinds["user"] > 0 and kinds["cookie"] > 0 and kinds["none"] > 0


def test_sequence_numbers_restart_per_view_and_never_per_player(
    played: tuple[Audience, list[Post]],
) -> None:
    _, posts = played
    by_player: dict[str, list[dict[str, Any]]] = defaultdict(list)
    seen: set[tuple[str, int]] = set()
    for post in posts:
        for event in post.events:
            key = (event["view_id"], event["view_sequence_number"])
            if key in seen:
                continue
            seen.add(key)
            by_player[event["player_instance_id"]].append(event)
    switched = 0
    for events in by_player.values():
        player_numbers = [e["player_sequence_number"] for e in events]
        assert player_numbers == sorted(player_numbers)
        per_view: dict[str, list[int]] = defaultdict(list)
        for event in events:
            per_view[event["view_id"]].append(event["view_sequence_number"])
        for numbers in per_view.values():
            assert numbers == list(range(1, len(numbers) + 1))
        switched += len(per_view) > 1
    assert switched > 0, "some players switch to another video (videochange): two views"


def test_heartbeats_every_ten_seconds_while_playing_and_silence_while_paused(
    played: tuple[Audience, list[Post]],
) -> None:
    _, posts = played
    checked_pauses = 0
    for events in views_of(posts).values():
        unique = list({e["view_sequence_number"]: e for _, e in events}.values())
        previous: dict[str, Any] | None = None
        paused = False
        for event in unique:
            name = event["event"]
            if previous is not None and not paused:
                gap = event["viewer_time"] - previous["viewer_time"]
                assert gap <= 10_000, f"a playing view went {gap} ms without an event"
                if name == "hb":
                    assert abs(gap - 10_000) <= 1, "hb comes 10 s after the latest event"
            if paused and name == "hb":
                pytest.fail("a heartbeat while paused")
            if name in ("pause", "ended"):
                paused = True
                checked_pauses += 1
            elif name in ("play", "playing"):
                paused = False
            previous = event
    assert checked_pauses > 50


def test_failed_posts_are_resent_whole_and_the_unload_pair_is_sent_twice(
    played: tuple[Audience, list[Post]],
) -> None:
    audience, posts = played
    assert audience.stats.unacknowledged > 0 and audience.stats.lost > 0
    resent = [p for p in posts if not p.acknowledged]
    for failed in resent:
        later = [
            p
            for p in posts
            if p.player == failed.player and p.at > failed.at and p.transport == "fetch"
        ]
        if later:  # unless the tab was abandoned right after
            assert later[0].events[: len(failed.events)] == failed.events
    unloads = [p for p in posts if p.transport == "sendBeacon"]
    assert unloads
    for beacon in unloads:
        twin = [
            p
            for p in posts
            if p.player == beacon.player and p.at == beacon.at and p.transport == "fetch"
        ]
        assert len(twin) == 1 and twin[0].events == beacon.events
        assert beacon.events[-1]["event"] == "viewend"


def test_popularity_is_skewed_towards_the_first_videos(
    played: tuple[Audience, list[Post]],
) -> None:
    _, posts = played
    starts = Counter(e["video_id"] for p in posts for e in p.events if e["event"] == "viewstart")
    assert starts["sim-video-1"] > 2 * starts["sim-video-8"]


def test_some_viewers_watch_twice_so_views_and_viewers_differ() -> None:
    audience, _ = run(plan(second_tab_share=0.5))
    counts = audience.expected_counts()
    assert any(c.views > c.viewers for c in counts.values())
    totals = audience.expected.totals(audience.now)
    assert totals.views > totals.viewers


def test_the_same_seed_gives_the_same_bytes_and_counts() -> None:
    a, posts_a = run(plan(viewers=30, duration=300.0))
    b, posts_b = run(plan(viewers=30, duration=300.0))
    _, posts_c = run(plan(viewers=30, duration=300.0, seed=8))
    assert [p.body() for p in posts_a] == [p.body() for p in posts_b]
    assert a.expected_counts() == b.expected_counts()
    assert [p.body() for p in posts_a] != [p.body() for p in posts_c]


def test_advancing_in_small_steps_is_the_same_as_one_big_step() -> None:
    p = plan(viewers=30, duration=300.0)
    whole, posts = run(p)
    stepped = Audience(p)
    pieces: list[Post] = []
    t = 0.0
    while t < p.duration:
        t += 0.7
        pieces += stepped.advance(t)
    assert [x.body() for x in pieces] == [x.body() for x in posts]
    assert stepped.expected_counts() == whole.expected_counts()


@pytest.mark.parametrize("seed", range(6))
def test_only_abandoned_views_ever_go_silent(seed: int) -> None:
    p = plan(seed=seed, viewers=80, liveness_window=40.0, settle=10.0, failure_rate=0.2)
    audience = Audience(p)
    t = 0.0
    while t < p.duration:
        t += 5.0
        audience.advance(t)
        abandoned = {pl.beacons.view_id for pl in audience.players if pl.abandoned}
        assert audience.expected.silent_views(t) <= abandoned
    assert audience.expected.revived == 0
    assert sum(pl.abandoned for pl in audience.players) > 0


def test_no_counted_view_expires_within_the_settle_margin_of_the_end() -> None:
    postponed = 0
    for seed in range(8):
        p = plan(
            seed=seed,
            viewers=150,
            duration=200.0,
            liveness_window=60.0,
            settle=50.0,
            failure_rate=0.2,
            mean_watch=60.0,
        )
        audience, _ = run(p)
        end = p.duration
        for player in audience.players:
            until = audience.expected.counted_until(ENV_KEY, player.beacons.view_id)
            assert until is None or not end - p.settle <= until <= end + p.settle
        # So what is printed at the end is still what /counts shows `settle` later.
        assert audience.expected.by_video(end + p.settle) == audience.expected.by_video(end)
        postponed += audience.stats.abandons_postponed
    assert postponed > 0, "the margin was exercised: some abandonments had to wait"


def test_plans_that_cannot_be_counted_reliably_are_refused() -> None:
    with pytest.raises(ValueError, match="liveness window"):
        plan(liveness_window=20.0)
    with pytest.raises(ValueError, match="settle"):
        plan(liveness_window=60.0, settle=51.0)
    with pytest.raises(ValueError, match="mean_watch"):
        plan(mean_watch=0.0)
    with pytest.raises(ValueError, match="videos"):
        plan(videos=0)
    with pytest.raises(ValueError, match="env_key"):
        plan(env_key="")


def test_playback_ids_are_derived_from_mux_style_source_urls(
    played: tuple[Audience, list[Post]],
) -> None:
    audience, posts = played
    urls = {
        e["video_id"]: e["video_source_url"]
        for p in posts
        for e in p.events
        if "video_source_url" in e
    }
    assert len(urls) == 8
    for video_id, url in urls.items():
        assert playback_id_from_source_url(url) == audience.playback_id(video_id)


# -- the oracle, rule by rule --------------------------------------------------------------

WINDOW = 60.0


def event(name: str, view: str, seq: int, **extra: Any) -> dict[str, Any]:
    return {
        "event": name,
        "env_key": ENV_KEY,
        "view_id": view,
        "view_sequence_number": seq,
        "video_id": extra.pop("video_id", "v1"),
        **extra,
    }


def test_a_view_happens_from_viewstart_until_viewend() -> None:
    oracle = ExpectedCounts(WINDOW)
    oracle.deliver([event("playerready", "a", 1, viewer_user_id="u1")], 0.0)
    assert oracle.by_video(0.0) == {}, "a loaded, never played view does not count"
    oracle.deliver([event("viewstart", "a", 2, viewer_user_id="u1")], 1.0)
    assert oracle.by_video(1.0) == {"v1": Counts(1, 1)}
    oracle.deliver([event("viewend", "a", 3)], 2.0)
    assert oracle.by_video(2.0) == {}
    oracle.deliver([event("viewend", "a", 3), event("hb", "a", 4)], 2.0)
    assert oracle.by_video(2.0) == {}, "the duplicate unload beacon does not resurrect it"


def test_view_start_on_any_event_starts_the_view() -> None:
    oracle = ExpectedCounts(WINDOW)
    oracle.deliver([event("playbackmodechange", "a", 1, view_start=1)], 0.0)
    assert oracle.by_video(0.0) == {"v1": Counts(1, 1)}


def test_pause_and_ended_leave_the_count_and_play_brings_it_back() -> None:
    oracle = ExpectedCounts(WINDOW)
    oracle.deliver([event("viewstart", "a", 1)], 0.0)
    oracle.deliver([event("pause", "a", 2)], 1.0)
    assert oracle.by_video(1.0) == {}
    oracle.deliver([event("play", "a", 3)], 2.0)
    assert oracle.by_video(2.0) == {"v1": Counts(1, 1)}
    oracle.deliver([event("ended", "a", 4)], 3.0)
    assert oracle.by_video(3.0) == {}
    counting_paused = ExpectedCounts(WINDOW, count_paused=True)
    counting_paused.deliver([event("viewstart", "a", 1), event("pause", "a", 2)], 0.0)
    assert counting_paused.by_video(0.0) == {"v1": Counts(1, 1)}


def test_silence_longer_than_the_window_drops_a_view_by_receive_time() -> None:
    oracle = ExpectedCounts(WINDOW)
    oracle.deliver([event("viewstart", "a", 1, viewer_time=0)], 100.0)
    assert oracle.by_video(100.0 + WINDOW) == {"v1": Counts(1, 1)}
    assert oracle.by_video(100.0 + WINDOW + 0.001) == {}
    assert oracle.silent_views(100.0 + WINDOW + 1) == {"a"}


def test_viewers_are_user_ids_else_cookie_ids_else_the_view() -> None:
    oracle = ExpectedCounts(WINDOW)
    oracle.deliver(
        [
            event("viewstart", "a", 1, viewer_user_id="u1", mux_viewer_id="c1"),
            event("viewstart", "b", 1, viewer_user_id="u1", mux_viewer_id="c2"),
            event("viewstart", "c", 1, mux_viewer_id="c3"),
            event("viewstart", "d", 1, mux_viewer_id="c3"),
            event("viewstart", "e", 1),
            event("viewstart", "f", 1),
            event("viewstart", "g", 1, mux_viewer_id="u1"),  # equal text, other kind of id
        ],
        0.0,
    )
    assert oracle.by_video(0.0) == {"v1": Counts(7, 5)}


def test_identity_from_the_full_state_event_is_remembered_by_heartbeats() -> None:
    oracle = ExpectedCounts(WINDOW)
    oracle.deliver([event("viewstart", "a", 1, viewer_user_id="u1")], 0.0)
    oracle.deliver([event("viewstart", "b", 1, viewer_user_id="u1")], 0.0)
    oracle.deliver([event("hb", "a", 2), event("hb", "b", 2)], 50.0)
    assert oracle.by_video(100.0) == {"v1": Counts(2, 1)}


def test_duplicates_are_ignored_by_view_and_sequence() -> None:
    oracle = ExpectedCounts(WINDOW)
    batch = [event("viewstart", "a", 1), event("pause", "a", 2)]
    oracle.deliver(batch, 0.0)
    oracle.deliver([*batch, event("play", "a", 3)], 10.0)
    oracle.deliver(batch, 20.0)  # a late copy of the old batch must not pause it again
    assert oracle.by_video(20.0) == {"v1": Counts(1, 1)}
    assert oracle.duplicates == 4
