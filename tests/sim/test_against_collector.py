"""The simulator against the real collector and memory live store, in process, with a fake clock.

Two independent implementations of DESIGN.md's counting rules meet here: the simulator's oracle
(``headcount.sim.expected``) and the collector + store the server runs. Every simulated POST goes
through the ASGI app at its simulated time; at every checkpoint the store, swept at that instant,
must show exactly the oracle's counts, for every video, by video id and by playback id. The
runner is driven the same way: its sleeps move the fake clock, so no test waits.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from headcount.runtime import Runtime
from headcount.sim import Audience, AudiencePlan, AudienceRunner, httpx_sender
from headcount.stores.control import Environment
from headcount.stores.control_memory import MemoryControlStore
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

ENV_KEY = "simenv1"
SERVER_WINDOW = 60.0  # the MemoryLiveStore default the `runtime` fixture uses


@pytest.fixture
def env(control: MemoryControlStore, clock: FakeClock) -> Environment:
    return control.create_environment("simulated", ENV_KEY, int(clock()))


def plan(**changes: Any) -> AudiencePlan:
    base: dict[str, Any] = {
        "env_key": ENV_KEY,
        "viewers": 80,
        "videos": 6,
        "duration": 600.0,
        "seed": 3,
        "liveness_window": SERVER_WINDOW,
        "settle": 20.0,
        "mean_watch": 180.0,
        "beacon_domain": "testserver",
    }
    return AudiencePlan(**(base | changes))


async def store_counts(runtime: Runtime, env: Environment, audience: Audience) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for video in audience.videos:
        by_video = await runtime.live.counts(env.id, "video_id", video.video_id, runtime.clock())
        playback_id = audience.playback_id(video.video_id)
        by_playback = await runtime.live.counts(env.id, "playback_id", playback_id, runtime.clock())
        assert by_playback == by_video, "the playback id is derived from the Mux-style URL"
        out[video.video_id] = by_video
    return out


@pytest.mark.parametrize("seed", [3, 4])
async def test_the_collector_counts_what_the_oracle_expects_at_every_checkpoint(
    client: httpx.AsyncClient,
    runtime: Runtime,
    env: Environment,
    clock: FakeClock,
    seed: int,
) -> None:
    audience = Audience(plan(seed=seed, failure_rate=0.1, second_tab_share=0.4))
    start = clock()
    checkpoints = 0
    disagreements = []
    two_tabs_on_one_video = False
    t = 0.0
    while t < audience.plan.duration:
        t += 5.0
        for post in audience.advance(t):
            clock.now = start + post.at
            answer = await client.post(
                "/", content=post.body(), headers={"content-type": "text/plain"}
            )
            assert answer.status_code == 200, answer.text
            assert answer.json()["rejected"] == []
        clock.now = start + t
        await runtime.live.sweep(clock.now)
        expected = audience.expected_counts(t)
        seen = await store_counts(runtime, env, audience)
        if seen != expected:
            disagreements.append((t, expected, seen))
        two_tabs_on_one_video |= any(c.views > c.viewers for c in expected.values())
        happening = (await runtime.live.stats()).happening
        assert happening == audience.expected.totals(t).views
        checkpoints += 1
    assert disagreements == []
    assert checkpoints == 120
    # The run exercised what it is meant to: re-sends, expiries, two tabs, switches.
    stats = audience.stats
    assert stats.unacknowledged > 0 and stats.lost > 0
    assert audience.expected.duplicates > 0
    assert audience.expected.silent_views(t), "abandoned tabs expired"
    assert two_tabs_on_one_video


async def test_the_runner_delivers_a_compressed_audience_on_a_fake_clock(
    client: httpx.AsyncClient, runtime: Runtime, env: Environment, clock: FakeClock
) -> None:
    speed = 4.0

    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    audience = Audience(plan(duration=1200.0, liveness_window=SERVER_WINDOW * speed, settle=50))
    runner = AudienceRunner(
        audience, httpx_sender(client, "http://testserver/"), speed=speed, clock=clock, sleep=sleep
    )
    reports = []
    progress = await runner.run(reports.append)

    assert progress.finished and progress.simulated == 1200.0
    assert progress.wall == pytest.approx(1200.0 / speed)
    assert progress.posts == audience.stats.posts > 1000
    assert progress.events == audience.stats.events
    assert (progress.errors, progress.rejected_events) == (0, 0)
    assert len(reports) > 100 and reports[-1] == progress
    await runtime.live.sweep(clock())
    assert await store_counts(runtime, env, audience) == audience.expected_counts()
    assert sum(c.views for c in audience.expected_counts().values()) > 0


async def test_the_runner_counts_refused_posts_and_rejected_events(
    client: httpx.AsyncClient, env: Environment, clock: FakeClock
) -> None:
    async def sleep(seconds: float) -> None:
        clock.advance(seconds)

    small = {"viewers": 5, "duration": 120.0}
    wrong_path = AudienceRunner(
        Audience(plan(**small)),
        httpx_sender(client, "http://testserver/nowhere"),
        clock=clock,
        sleep=sleep,
    )
    progress = await wrong_path.run()
    assert progress.posts > 0 and progress.errors == progress.posts
    assert progress.last_error is not None and progress.last_error.startswith("HTTP 404")

    unknown_env = AudienceRunner(
        Audience(plan(env_key="no-such-env", **small)),
        httpx_sender(client, "http://testserver/"),
        clock=clock,
        sleep=sleep,
    )
    progress = await unknown_env.run()
    assert progress.errors == 0, "mux-embed must never be told to retry: 200 with rejections"
    assert progress.events > 0 and progress.rejected_events == progress.events
