"""The soak's audience: ``headcount.sim`` players posting real-time beacons, without end.

One :class:`~headcount.sim.audience.Audience` has its viewers arrive during the first half of
its plan, so on its own the number of views rises, then falls. For a steady population the
soak starts a new audience (new seed, so new view ids) every :data:`WAVE` seconds, each
planned for two waves: arrivals never stop, and once the first waves have played out, as many
views start as end each minute. Speed 1 (real time): a playing view posts every 10 s.

Every POST is timed; :meth:`SteadyAudience.window` tells the posts, errors and latencies of
any span of wall time. Runs in its own thread with its own event loop, so the soak's main
thread is free to drive wrk and sample the server.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass

import aiohttp

from bench.freshness import percentile
from headcount.sim import Audience, AudiencePlan, AudienceRunner, Sender, aiohttp_sender

__all__ = ["WAVE", "BeaconWindow", "SteadyAudience"]

WAVE = 60.0  # s between two audiences (each plays for two)
MEAN_WATCH = 90.0  # s, a simulated view's mean length


@dataclass(frozen=True)
class BeaconWindow:
    posts: int
    errors: int
    p99_ms: float
    last_error: str | None


class SteadyAudience:
    def __init__(self, url: str, env_key: str, viewers_per_wave: int, seconds: float) -> None:
        self.url = url
        self.env_key = env_key
        self.viewers_per_wave = viewers_per_wave
        self.seconds = seconds
        # (finished at, seconds taken, error or None), appended from the audience thread.
        self.samples: list[tuple[float, float, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="soak-audience", daemon=True)
        self.failure: BaseException | None = None

    def video_ids(self) -> list[str]:
        return [self._plan(0).video_id(rank) for rank in range(1, self._plan(0).videos + 1)]

    def _plan(self, wave: int) -> AudiencePlan:
        return AudiencePlan(
            env_key=self.env_key,
            viewers=self.viewers_per_wave,
            videos=50,
            duration=2 * WAVE,
            seed=wave,
            mean_watch=MEAN_WATCH,
            video_prefix="soak-video-",
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def window(self, start: float, end: float) -> BeaconWindow:
        inside = [s for s in self.samples if start <= s[0] < end]
        errors = [s[2] for s in inside if s[2] is not None]
        latencies = [s[1] * 1000 for s in inside]
        return BeaconWindow(
            posts=len(inside),
            errors=len(errors),
            p99_ms=percentile(latencies, 0.99) if latencies else 0.0,
            last_error=errors[-1] if errors else None,
        )

    def _main(self) -> None:
        try:
            asyncio.run(self._play())
        except BaseException as exc:  # reported by the soak, not lost in a thread
            self.failure = exc

    def _timed(self, send: Sender) -> Sender:
        async def timed(body: bytes, content_type: str) -> tuple[int, bytes]:
            started = time.monotonic()
            error: str | None = None
            try:
                status, answer = await send(body, content_type)
            except (aiohttp.ClientError, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                raise
            else:
                if status != 200:
                    error = f"HTTP {status}"
                return status, answer
            finally:
                finished = time.monotonic()
                self.samples.append((finished, finished - started, error))

        return timed

    async def _play(self) -> None:
        connector = aiohttp.TCPConnector(limit=256)
        async with aiohttp.ClientSession(connector=connector) as session:
            send = self._timed(aiohttp_sender(session, self.url))
            waves = int(self.seconds // WAVE) + 2
            tasks = [asyncio.create_task(self._wave(number, send)) for number in range(waves)]
            while not self._stop.is_set() and not all(t.done() for t in tasks):
                await asyncio.sleep(0.2)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _wave(self, number: int, send: Sender) -> None:
        await asyncio.sleep(number * WAVE)
        runner = AudienceRunner(Audience(self._plan(number)), send, speed=1.0, concurrency=256)
        await runner.run()
