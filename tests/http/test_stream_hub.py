"""The counts stream's hub (:mod:`headcount.http.stream`) with the time as an argument: real
stores (memory live store, SQLite control store), the real collector fed the captured
mux-embed beacon, and each tick called by hand with the ``now`` it should see. The sink is a
list of what would have been written to the connection. Over real sockets, with the server's
own ticks: ``test_protocol_stream.py``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from headcount.auth.environments import initialize
from headcount.auth.signing_keys import create_signing_key, delete_signing_key
from headcount.bootstrap import build_runtime
from headcount.errors import BadRequest, TokenRefused
from headcount.http.app import HeadcountApp
from headcount.http.stream import MAX_UNSENT, MIN_SPACING, TICK, Stream, StreamHub
from headcount.runtime import Runtime
from headcount.sdk.signing import sign_viewer_counts
from headcount.settings import load_settings
from tests.http.protocol_site import CAPTURE, CAPTURED_ENV_KEY, CAPTURED_VIDEO, CAPTURED_VIEW

pytestmark = pytest.mark.anyio


@dataclass
class Sink:
    written: list[bytes] = field(default_factory=list)
    closed: bool = False
    buffered: int = 0  # what the client has not read yet (a stalled client: large)
    stream: Stream | None = None

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def close(self) -> None:
        self.closed = True

    def take(self) -> list[tuple[str | None, dict[str, object] | None]]:
        """The events written since the last take: (event name, data), comments as (None,
        None); ``retry:`` lines are left out."""
        text = b"".join(self.written).decode()
        self.written.clear()
        events: list[tuple[str | None, dict[str, object] | None]] = []
        for block in text.split("\n\n"):
            if not block or block.startswith("retry:"):
                continue
            if block.startswith(":"):
                events.append((None, None))
                continue
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            events.append((fields.get("event", "message"), orjson.loads(fields["data"])))
        return events


@dataclass
class World:
    runtime: Runtime
    app: HeadcountApp
    hub: StreamHub
    env_key: str
    environment_id: str
    key_id: str
    private_key: str
    now: float

    def token(self, video: str, expires_in: float = 3600) -> str:
        return sign_viewer_counts(
            video, key_id=self.key_id, private_key=self.private_key, expires_in=expires_in
        )

    async def start_view(self, video: str, view: str) -> None:
        body = (
            CAPTURE.read_bytes()
            .replace(CAPTURED_ENV_KEY, self.env_key.encode())
            .replace(CAPTURED_VIDEO, video.encode())
            .replace(CAPTURED_VIEW, view.encode())
        )
        assert self.app.collector is not None
        reply = await self.app.collector.post(body, self.now)
        assert reply[0] == 200, reply

    async def tick(self, ticks: int = 1) -> None:
        for _ in range(ticks):
            self.now += TICK
            await self.hub.tick(self.now)

    async def open(self, *tokens: str) -> Sink:
        query = "&".join(f"token={t}" for t in tokens).encode()
        opened = await self.hub.open(query, self.now)
        sink = Sink(stream=opened.stream)
        sink.write(opened.first)
        self.hub.attach(opened, sink, self.now)
        return sink


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    settings = load_settings(
        {"database_url": f"sqlite:///{tmp_path / 'hc.db'}", "state_file": ""}, environ={}
    )
    runtime = build_runtime(settings)
    now = time.time()
    environment, _ = initialize(runtime.control, "stream", int(now))
    key = create_signing_key(runtime.control, environment.id, int(now))
    app = HeadcountApp(runtime, clock=lambda: now)
    assert app.stream is not None
    yield World(
        runtime,
        app,
        app.stream,
        environment.env_key,
        environment.id,
        key.key.id,
        key.private_key,
        now,
    )
    runtime.control.close()


def views(event: tuple[str | None, dict[str, object] | None]) -> int:
    data = event[1]
    assert data is not None
    (counts,) = data["data"]  # type: ignore[misc]
    return int(counts["views"])  # type: ignore[index]


async def test_first_event_at_once_then_one_per_change(world: World) -> None:
    sink = await world.open(world.token("v1"))
    assert b"".join(sink.written).startswith(b"retry: 3000\n\n")
    (first,) = sink.take()
    assert first[0] == "message" and first[1] == {
        "data": [{"views": 0, "viewers": 0, "updated_at": first[1]["data"][0]["updated_at"]}]  # type: ignore[index]
    }
    await world.tick(MIN_SPACING * 2)
    assert sink.take() == []  # nothing changed: nothing sent
    await world.start_view("v1", "view-a")
    await world.tick()
    (event,) = sink.take()
    assert event[0] == "message" and views(event) == 1


async def test_changes_within_a_second_are_coalesced_into_one_event(world: World) -> None:
    sink = await world.open(world.token("v1"))
    sink.take()
    await world.start_view("v1", "view-a")
    await world.tick()
    assert [views(e) for e in sink.take()] == [1]
    await world.start_view("v1", "view-b")
    await world.tick()
    await world.start_view("v1", "view-c")
    sent: list[int] = []
    for _ in range(MIN_SPACING - 1):
        await world.tick()
        sent += [views(e) for e in sink.take()]
    assert sent == [3]  # both changes in one event, a second after the one before
    await world.tick(MIN_SPACING)
    assert sink.take() == []


async def test_event_ids_are_the_server_time_in_milliseconds(world: World) -> None:
    sink = await world.open(world.token("v1"))
    assert b"id: %d\n" % int(world.now * 1000) in b"".join(sink.written)


async def test_one_read_feeds_every_subscriber_of_a_counter(world: World) -> None:
    sinks = [await world.open(world.token("v1")) for _ in range(3)]
    other = await world.open(world.token("v2"))
    for sink in [*sinks, other]:
        sink.take()
    await world.start_view("v1", "view-a")
    await world.tick()
    frames = {b"".join(s.written) for s in sinks}
    assert len(frames) == 1 and frames != {b""}  # the same bytes, formatted once
    assert other.written == []


async def test_several_tokens_are_named_by_position_and_a_bad_one_ends_alone(
    world: World,
) -> None:
    sink = await world.open(world.token("v1"), "not-a-token", world.token("v2"))
    first = sink.take()
    assert [name for name, _ in first] == ["error-1", "counts-0", "counts-2"]
    assert first[0][1] is not None and first[0][1]["error"]["type"] == "invalid_token"  # type: ignore[index]
    await world.start_view("v2", "view-a")
    await world.tick()
    (event,) = sink.take()
    assert event[0] == "counts-2" and views(event) == 1


async def test_refused_tokens_raise_what_counts_would(world: World) -> None:
    with pytest.raises(TokenRefused) as refused:
        await world.hub.open(b"token=not-a-token", world.now)
    assert refused.value.error_type == "invalid_token"
    with pytest.raises(TokenRefused):
        await world.hub.open(b"token=a.b.c&token=d.e.f", world.now)  # none left: no stream
    with pytest.raises(BadRequest):
        await world.hub.open(b"", world.now)
    with pytest.raises(BadRequest):
        await world.hub.open(b"&".join([b"token=a.b.c"] * 33), world.now)


async def test_an_expired_token_gets_the_counts_error_and_the_stream_ends(world: World) -> None:
    sink = await world.open(world.token("v1", expires_in=2))
    sink.take()
    leeway = world.runtime.settings.token_leeway
    await world.tick(round((2 + leeway + 1) / TICK))
    await world.hub.checked()
    assert [(name, data["error"]["type"]) for name, data in sink.take()] == [  # type: ignore[index]
        ("error", "expired_token")
    ]
    assert sink.closed and world.hub.open_streams == 0


async def test_a_deleted_key_ends_its_streams_only(world: World) -> None:
    other_key = create_signing_key(world.runtime.control, world.environment_id, int(world.now))
    other = sign_viewer_counts("v1", key_id=other_key.key.id, private_key=other_key.private_key)
    doomed = await world.open(world.token("v1"))
    kept = await world.open(other)
    doomed.take(), kept.take()
    delete_signing_key(world.runtime.control, world.environment_id, world.key_id, int(world.now))
    world.runtime.signing_key_deleted(world.key_id)  # what the System API's DELETE calls
    await world.hub.checked()
    assert [(n, d["error"]["type"]) for n, d in doomed.take()] == [("error", "unknown_key")]  # type: ignore[index]
    assert doomed.closed and not kept.closed
    await world.start_view("v1", "view-a")
    await world.tick()
    assert [views(e) for e in kept.take()] == [1]


async def test_idle_streams_get_keep_alive_comments(world: World) -> None:
    sink = await world.open(world.token("v1"))
    sink.take()
    await world.tick(round(world.runtime.settings.stream_keepalive / TICK))
    assert sink.take() == [(None, None)]


async def test_a_client_that_stops_reading_is_cut_off(world: World) -> None:
    stalled = await world.open(world.token("v1"))
    reading = await world.open(world.token("v1"))
    stalled.buffered = MAX_UNSENT + 1
    await world.start_view("v1", "view-a")
    await world.tick()
    assert stalled.closed and not reading.closed
    assert world.hub.open_streams == 1


async def test_a_detached_stream_gets_nothing_and_shutdown_closes_the_rest(
    world: World,
) -> None:
    gone = await world.open(world.token("v1"))
    staying = await world.open(world.token("v1"))
    gone.take()
    assert gone.stream is not None
    world.hub.detach(gone.stream)
    await world.start_view("v1", "view-a")
    await world.tick()
    assert gone.take() == [] and world.hub.open_streams == 1
    await world.runtime.stop()
    assert staying.closed and world.hub.open_streams == 0


async def test_a_deleted_key_ends_every_stream_of_a_shared_token(world: World) -> None:
    token = world.token("v1")
    sinks = [await world.open(token) for _ in range(600)]  # past one turn's worth of checks
    delete_signing_key(world.runtime.control, world.environment_id, world.key_id, int(world.now))
    world.runtime.signing_key_deleted(world.key_id)
    await world.hub.checked()
    assert all(s.closed for s in sinks) and world.hub.open_streams == 0
    assert all(b"unknown_key" in s.written[-1] for s in sinks)


async def test_streams_that_come_and_go_do_not_grow_the_expiry_heap(world: World) -> None:
    token = world.token("v1")  # valid for an hour: nothing comes due meanwhile
    kept = await world.open(token)
    for _ in range(3):
        gone = [await world.open(token) for _ in range(1500)]
        for sink in gone:
            assert sink.stream is not None
            world.hub.detach(sink.stream)
        await world.tick()
    assert world.hub.watched_expiries == 1  # rebuilt at each tick: the live one only
    assert world.hub.open_streams == 1 and not kept.closed
