"""Play an :class:`~headcount.sim.audience.Audience` against a real collector over HTTP.

The model runs in simulated time; the runner maps it onto the wall clock with a **speed** factor
(simulated seconds per wall second): at ``speed=10`` a heartbeat every 10 simulated seconds is a
POST every wall second, so a demo compresses minutes of audience into seconds. The server only
knows wall time, so its liveness window covers ``window * speed`` simulated seconds; the caller
builds the plan with that (see ``cli/simulate.py``).

mux-embed has one POST in flight per player, and the order of a player's POSTs decides what the
server believes (a ``pause`` must not overtake the heartbeat before it), so the runner delivers
each player's POSTs one after another and only parallelizes across players (bounded).

The clock, the sleep and the sender are parameters, so a test can drive the runner with a fake
clock against the in-process app (:func:`httpx_sender` over httpx's ASGI transport); the command
line sends with :func:`aiohttp_sender` (aiohttp's client costs a fraction of httpx's per POST,
which matters when one process plays thousands of players).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

import aiohttp
import httpx
import orjson

from headcount.sim.audience import Audience
from headcount.sim.player import Post

__all__ = ["AudienceRunner", "RunProgress", "Sender", "aiohttp_sender", "httpx_sender"]

# POST a body with a Content-Type; the answer's status and body.
Sender = Callable[[bytes, str], Awaitable[tuple[int, bytes]]]

MIN_SLEEP = 0.001  # s

CONTENT_TYPES = {
    "fetch": "text/plain",  # what mux-embed's fetch sends (beacons.md §1.2)
    "sendBeacon": "text/plain;charset=UTF-8",
}


@dataclass(frozen=True)
class RunProgress:
    """What the run has done so far. ``late`` is the worst delay, in wall seconds, between when
    a POST was due and when its answer came back (a slow server makes the run fall behind)."""

    simulated: float
    wall: float
    posts: int = 0
    events: int = 0
    errors: int = 0
    rejected_events: int = 0
    last_error: str | None = None
    late: float = 0.0
    finished: bool = False
    # Why POSTs failed and events were rejected: ``"HTTP 503 service_unavailable"``,
    # ``"ClientConnectorError"``, ``"rejected: unknown_env_key"``... → how many. One dict,
    # shared by every progress of a run.
    reasons: dict[str, int] = field(default_factory=dict)


def httpx_sender(client: httpx.AsyncClient, url: str) -> Sender:
    async def send(body: bytes, content_type: str) -> tuple[int, bytes]:
        answer = await client.post(url, content=body, headers={"Content-Type": content_type})
        return answer.status_code, answer.content

    return send


def aiohttp_sender(session: aiohttp.ClientSession, url: str) -> Sender:
    async def send(body: bytes, content_type: str) -> tuple[int, bytes]:
        headers = {"Content-Type": content_type}
        async with session.post(url, data=body, headers=headers) as answer:
            return answer.status, await answer.read()

    return send


class AudienceRunner:
    def __init__(
        self,
        audience: Audience,
        send: Sender,
        *,
        speed: float = 1.0,
        concurrency: int = 64,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.audience = audience
        self.send = send
        self.speed = speed
        self.clock = clock
        self.sleep = sleep
        self._slots = asyncio.Semaphore(concurrency)
        self._start = 0.0
        self.progress = RunProgress(simulated=0.0, wall=0.0)

    async def run(
        self,
        on_progress: Callable[[RunProgress], None] | None = None,
        *,
        progress_every: float = 0.25,
    ) -> RunProgress:
        """Send everything the audience posts until the end of its plan; the final progress."""
        end = self.audience.plan.duration
        self._start = self.clock()
        reported = -progress_every
        while True:
            simulated = min(self._elapsed() * self.speed, end)
            posts = self.audience.advance(simulated)
            if posts:
                await self._deliver(posts)
            wall = self._elapsed()
            self.progress = replace(self.progress, simulated=simulated, wall=wall)
            if simulated >= end:
                break
            if on_progress is not None and wall - reported >= progress_every:
                reported = wall
                on_progress(self.progress)
            upcoming = self.audience.next_time()
            wake = end if upcoming is None else upcoming
            delay = wake / self.speed - self._elapsed()
            # At least a millisecond: a clock that cannot resolve a tinier step would spin.
            await self.sleep(min(max(delay, MIN_SLEEP), progress_every))
        self.progress = replace(self.progress, finished=True)
        if on_progress is not None:
            on_progress(self.progress)
        return self.progress

    def _elapsed(self) -> float:
        return self.clock() - self._start

    async def _deliver(self, posts: list[Post]) -> None:
        by_player: dict[int, list[Post]] = {}
        for post in posts:
            by_player.setdefault(post.player, []).append(post)
        await asyncio.gather(*(self._send_in_order(chain) for chain in by_player.values()))

    async def _send_in_order(self, chain: list[Post]) -> None:
        async with self._slots:
            for post in chain:
                await self._send(post)

    async def _send(self, post: Post) -> None:
        error: str | None = None
        rejected: list[str] = []
        try:
            status, answer = await self.send(post.body(), CONTENT_TYPES[post.transport])
        except (httpx.HTTPError, aiohttp.ClientError, OSError) as exc:  # OSError: refused, reset...
            error = f"{type(exc).__name__}: {exc}"
            reason = type(exc).__name__
        else:
            if status != 200:
                error = f"HTTP {status}: {answer[:200].decode('utf-8', 'replace')}"
                reason = f"HTTP {status} {_error_type(answer)}".rstrip()
            else:
                rejected = _rejected_reasons(answer)
        late = self._elapsed() - post.at / self.speed
        p = self.progress
        if error is not None:
            p.reasons[reason] = p.reasons.get(reason, 0) + 1
        for why in rejected:
            key = f"rejected: {why}"
            p.reasons[key] = p.reasons.get(key, 0) + 1
        self.progress = replace(
            p,
            posts=p.posts + 1,
            events=p.events + len(post.events),
            errors=p.errors + (error is not None),
            rejected_events=p.rejected_events + len(rejected),
            last_error=error or p.last_error,
            late=max(p.late, late),
        )


def _json(body: bytes) -> object:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def _error_type(body: bytes) -> str:
    """The ``type`` of a Mux error envelope (``{"error":{"type":...}}``), else ``""``."""
    document = _json(body)
    error = document.get("error") if isinstance(document, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else ""


def _rejected_reasons(body: bytes) -> list[str]:
    """The reason of every event the collector's answer says it rejected
    (``{"rejected": [{"index": i, "reason": ...}], "rejected_total": n}``; past the events it
    names, ``"not named"``)."""
    document = _json(body)
    if not isinstance(document, dict) or not isinstance(document.get("rejected"), list):
        return []
    named = [
        str(item.get("reason", "unknown")) if isinstance(item, dict) else "unknown"
        for item in document["rejected"]
    ]
    total = document.get("rejected_total")
    if isinstance(total, int) and total > len(named):
        named += ["not named"] * (total - len(named))
    return named
