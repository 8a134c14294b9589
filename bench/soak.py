"""``python -m bench soak [--minutes N]``: N minutes (default 10) at ~80 % of measured capacity.

Not part of the default set or CI. ``headcount serve`` (one process, memory live store, fresh
SQLite control store, pinned to CPU 0) gets, at once:

- **an audience** (:mod:`bench.soak_audience`): simulated mux-embed players in real time,
  ~:data:`VIEWERS_PER_WAVE` new viewers a minute, each view ~90 s, so a few thousand views are
  happening at any time and their beacons (~10 % of the requests) never stop;
- **``/counts`` polling** by wrk on CPU 1 (``bench/lua/soak.lua``, :data:`CONNECTIONS`
  connections, paced with wrk's ``delay()``): browsers polling with their page's token (one
  of :data:`POLLING_TOKENS`, over the audience's videos), and every :data:`FRESH_EVERY`-th
  request a page load with a token never seen before (a fresh RS256 verify).

First the capacity of that ``/counts`` mix is measured (closed loop, 10 s, no pacing); then
the pace is set for :data:`SHARE` of it, tuned during a 3-minute warm-up (the audience
becomes steady) and after every minute, and the soak runs one 60 s wrk run per minute. Every
minute: ``/counts`` req/s, p50/p99, non-2xx and socket errors, the beacons' posts, errors and
p99, the server's cores and RSS. The RSS slope (MiB/min) is the least-squares line through
samples every 2 s after the warm-up.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench.deployment import Deployment, deployment, serve_headcount
from bench.ingest import metric_values
from bench.report import Metric, Report, markdown_table
from bench.servers import BenchError, ServerProcess, free_port, on_cpu
from bench.soak_audience import WAVE, SteadyAudience
from bench.tokens import mint_token, mint_tokens
from bench.wrk import FULL_CORE, LUA_DIR, WRK_CPU, WrkRun, run_wrk

__all__ = ["SoakOptions", "rss_slope", "run"]

SHARE = 0.8
CONNECTIONS = 256  # many, so that a 1 ms step of wrk's delay() is a fine step of the rate
POLLING_TOKENS = 500
FRESH_EVERY = 50  # a page polls ~50 times (every 10 s for ~8 minutes) per page load
VIEWERS_PER_WAVE = 1200
# s at the soak's pace before anything counts: the audience is steady from its third wave on
# (a wave's views last until two waves after it starts, plus the liveness window).
WARMUP = 3 * WAVE
CAPACITY_SECONDS = 10.0
MIB = 1024 * 1024
# Verified tokens kept (the default is 100,000): small enough that the cache, which grows by
# every fresh token until it is full (FIFO), is full before the warm-up ends, so the slope
# shows what else grows. At ~150 fresh tokens/s a default cache fills in ~11 minutes.
TOKEN_CACHE = 10_000
_LOAD_BOUND = (
    " (under 0.85: the load side, wrk and the audience on one core, or the machine's other "
    "processes, set that capacity, not the server)"
)


@dataclass(frozen=True)
class SoakOptions:
    minutes: int = 10


@dataclass(frozen=True)
class Minute:
    number: int
    counts: WrkRun
    posts: int
    beacon_errors: int
    beacon_p99_ms: float
    rss_mib: float
    happening: float


def rss_slope(samples: list[tuple[float, int]]) -> float:
    """MiB per minute of the least-squares line through ``(seconds, bytes)`` samples."""
    if len(samples) < 2:
        return 0.0
    xs = [t / 60 for t, _ in samples]
    ys = [b / MIB for _, b in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread


class _RssSampler:
    def __init__(self, server: ServerProcess, every: float = 2.0) -> None:
        self.server = server
        self.every = every
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="soak-rss", daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(self.every):
            self.samples.append((time.monotonic(), self.server.rss_bytes()))

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _polling_tokens(target: Deployment, videos: list[str], path: Path) -> None:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = serialization.load_pem_private_key(target.private_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    exp = int(time.time()) + 6 * 3600
    tokens = [
        mint_token(
            key, target.key_id, {"sub": videos[i % len(videos)], "aud": "video_id", "exp": exp + i}
        )
        for i in range(POLLING_TOKENS)
    ]
    path.write_text("\n".join(tokens) + "\n")


def _load(
    server: ServerProcess, files: tuple[Path, Path], seconds: float, first: int, delay_ms: int
) -> WrkRun:
    polling, fresh = files
    args = [str(polling), str(fresh), str(first), str(FRESH_EVERY), str(delay_ms)]
    run = run_wrk(
        server.url("/"),
        duration=round(seconds),  # wrk takes whole seconds only
        connections=CONNECTIONS,
        script=LUA_DIR / "soak.lua",
        script_args=args,
        server=server,
    )
    if run.script.get("wrapped", "0") != "0":
        raise BenchError(f"the soak ran out of fresh tokens: {run.script}")
    return run


def _delay_for(rate: float, achieved: WrkRun | None, delay_ms: int) -> int:
    """The per-connection delay that paces :data:`CONNECTIONS` connections at ``rate``; with
    a previous run, its latency (cycle minus delay) is taken into account."""
    cycle_ms = CONNECTIONS / rate * 1000
    latency_ms = 0.0
    if achieved is not None and achieved.requests_per_s > 0:
        latency_ms = max(0.0, CONNECTIONS / achieved.requests_per_s * 1000 - delay_ms)
    return max(0, round(cycle_ms - latency_ms))


def _soak(target: Deployment, options: SoakOptions) -> tuple[WrkRun, float, list[Minute], float]:
    port = free_port()
    folder = target.directory
    polling, fresh = folder / "polling.txt", folder / "fresh.txt"
    settings = {"HEADCOUNT_TOKEN_CACHE_SIZE": str(TOKEN_CACHE)}
    with serve_headcount(target, "headcount-soak", port, settings) as server:
        audience = SteadyAudience(
            server.url("/"), target.env_key, VIEWERS_PER_WAVE, WARMUP + options.minutes * 60 + 60
        )
        _polling_tokens(target, audience.video_ids(), polling)
        count = int(80_000 * CAPACITY_SECONDS / FRESH_EVERY)
        fresh.write_text("\n".join(mint_tokens(target.private_key_pem, target.key_id, count)))
        print("  capacity of the /counts mix (closed loop, 10 s)...", flush=True)
        closed = _load(server, (polling, fresh), CAPACITY_SECONDS, 0, 0)
        capacity = closed.requests_per_s
        rate = SHARE * capacity
        seconds = WARMUP + options.minutes * 60
        count = int(rate * seconds * 1.3 / FRESH_EVERY) + 1000
        print(
            f"  {capacity:,.0f} req/s; minting {count:,} fresh tokens for the soak...", flush=True
        )
        fresh.write_text("\n".join(mint_tokens(target.private_key_pem, target.key_id, count)))
        used = 0
        # The audience, the samplers and wrk share the load core; the server keeps its own.
        with on_cpu(WRK_CPU):
            audience.start()
        try:
            print(f"  warm-up {WARMUP:.0f} s at {rate:,.0f} req/s with the audience...", flush=True)
            delay = _delay_for(rate, None, 0)
            for part in (10, 20, WARMUP - 30):
                run = _load(server, (polling, fresh), part, used, delay)
                used += int(run.script.get("fresh", "0"))
                delay = _delay_for(rate, run, delay)
            minutes: list[Minute] = []
            with on_cpu(WRK_CPU), _RssSampler(server) as sampler:
                soak_start = time.monotonic()
                for number in range(1, int(options.minutes) + 1):
                    began = time.monotonic()
                    run = _load(server, (polling, fresh), 60, used, delay)
                    used += int(run.script.get("fresh", "0"))
                    delay = _delay_for(rate, run, delay)
                    beacons = audience.window(began, time.monotonic())
                    happening = metric_values(server.url("/metrics")).get(
                        "headcount_views_happening", 0.0
                    )
                    minutes.append(
                        Minute(
                            number,
                            run,
                            beacons.posts,
                            beacons.errors,
                            beacons.p99_ms,
                            server.rss_bytes() / MIB,
                            happening,
                        )
                    )
                    print(
                        f"  minute {number}: {run.requests_per_s:,.0f} req/s, p99 "
                        f"{run.p99_ms:.1f} ms, {beacons.posts:,} beacons",
                        flush=True,
                    )
                slope = rss_slope([(t - soak_start, b) for t, b in sampler.samples])
        finally:
            audience.stop()
        if audience.failure is not None:
            raise BenchError(f"the audience failed: {audience.failure!r}")
    return closed, rate, minutes, slope


def run(options: SoakOptions) -> Report:
    if options.minutes < 1:
        raise BenchError("--minutes must be at least 1 for the soak")
    with deployment() as target:
        closed, rate, minutes, slope = _soak(target, options)
    capacity = closed.requests_per_s
    errors = sum(m.counts.non_2xx + m.counts.socket_errors + m.beacon_errors for m in minutes)
    rows = [
        (
            str(m.number),
            f"{m.counts.requests_per_s:,.0f}",
            f"{m.counts.p50_ms:.2f}",
            f"{m.counts.p99_ms:.2f}",
            f"{m.posts / 60:,.0f}",
            f"{m.beacon_p99_ms:.2f}",
            str(m.counts.non_2xx + m.counts.socket_errors + m.beacon_errors),
            f"{m.counts.server_cores:.2f}",
            f"{m.rss_mib:.1f}",
            f"{m.happening:,.0f}",
        )
        for m in minutes
    ]
    table = markdown_table(
        (
            "minute",
            "/counts req/s",
            "/counts p50 ms",
            "/counts p99 ms",
            "beacons/s",
            "beacon p99 ms",
            "errors",
            "server cores",
            "RSS MiB",
            "views happening",
        ),
        rows,
    )
    details = (
        f"Capacity of the /counts mix (1 fresh token in {FRESH_EVERY}, closed loop, "
        f"{CONNECTIONS} connections): {capacity:,.0f} req/s, the server using "
        f"{closed.server_cores:.2f} of its core"
        f"{_LOAD_BOUND if closed.server_cores < FULL_CORE else ''}"
        f"; soak pace {rate:,.0f} req/s ({SHARE:.0%}), with ~{VIEWERS_PER_WAVE:,} new simulated "
        f"viewers a minute on top; token cache {TOKEN_CACHE:,} entries.\n\n"
        f"{table}\n\nRSS slope after the {WARMUP:.0f} s warm-up: {slope:+.2f} MiB/min."
    )
    metrics = (
        Metric(
            "soak: errors (non-2xx, socket errors, failed beacons)", "0", str(errors), errors == 0
        ),
        Metric(
            "soak: RSS slope after warm-up", "≤ 1.0 MiB/min", f"{slope:+.2f} MiB/min", slope <= 1.0
        ),
        Metric(
            "soak: worst /counts p99 of a minute",
            "",
            f"{max(m.counts.p99_ms for m in minutes):.2f} ms",
            None,
        ),
    )
    raw = {
        "minutes": options.minutes,
        "capacity": asdict(closed),
        "rate": rate,
        "slope_mib_per_min": slope,
        "per_minute": [
            {
                **m.counts.__dict__,
                "posts": m.posts,
                "beacon_errors": m.beacon_errors,
                "beacon_p99_ms": m.beacon_p99_ms,
                "rss_mib": m.rss_mib,
                "happening": m.happening,
            }
            for m in minutes
        ],
    }
    return Report("soak", metrics, details, raw)
