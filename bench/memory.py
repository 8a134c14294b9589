"""Bytes per happening view in ``MemoryLiveStore``, against a naive layout, in fresh processes.

Each layout is built in a fresh process pinned to the server core, ``runs`` times measuring the
RSS delta (what the operating system sees: allocator slack and dict resizes included) and once
under ``tracemalloc`` (every Python allocation still alive, nothing else). The population
is ``views`` happening views across ``videos`` videos, each view started by a full-state
``viewstart`` as mux-embed sends it: a 36-character view id, a ``mux_viewer_id`` cookie id of
its own, a ``video_id`` and a Mux source URL (so a ``playback_id`` too). Events are generated
in batches of 1,000 and dropped after ingestion: what stays is what the store keeps.

- **headcount**: the real ``MemoryLiveStore.ingest`` API, default partitions;
- **naive**: ``dict[view_id] -> __slots__`` object holding the same facts as strings, plus
  per-key counters (views and a viewer multiset per content id) — the obvious design;
- **floor**: the view-id strings alone in a ``dict[str, None]``, for scale.

Then, in one more fresh process, the CPU time of a ``MemoryLiveStore.sweep`` over the same
population when nothing has expired: it walks each partition's last-seen list from the oldest
view and stops at the first live one, so it should cost next to nothing, not a scan.

Run one layout alone: ``python -m bench.memory headcount 1000000 10000 rss`` (or ``sweep``).
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench.report import Metric, Report, markdown_table
from bench.servers import SERVER_CPU, BenchError

if TYPE_CHECKING:
    from headcount.stores.memory import MemoryLiveStore

__all__ = ["LAYOUTS", "MemoryOptions", "fresh_json", "run", "view_batches"]

ENVIRONMENT = "env_bench_memory_000000000"
BATCH = 1000
TARGET_BYTES_PER_VIEW = 250
TARGET_IDLE_SWEEP_MS = 1.0  # a sweep with nothing expired: O(expired + partitions), not a scan


@dataclass(frozen=True)
class MemoryOptions:
    views: int = 1_000_000
    videos: int = 10_000
    runs: int = 3


@dataclass(frozen=True)
class ViewStart:
    view_id: str
    viewer_id: str
    video_id: str
    source_url: str


def _video_ids(videos: int) -> tuple[list[str], list[str]]:
    ids = [f"video-{i:05d}" for i in range(videos)]
    urls = [f"https://stream.mux.com/PB{i:05d}xLocalOnly{i % 97:02d}.m3u8" for i in range(videos)]
    return ids, urls


def _uuid_like(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-4{hex32[13:16]}-a{hex32[17:20]}-{hex32[20:32]}"


def view_batches(views: int, video_ids: list[str], urls: list[str]) -> Iterator[list[ViewStart]]:
    """Fresh random view and viewer ids shaped like mux-embed's UUIDs, batch by batch; videos
    round-robin, so every video is watched."""
    videos = len(video_ids)
    for start in range(0, views, BATCH):
        stop = min(start + BATCH, views)
        blob = os.urandom(32 * (stop - start)).hex()
        yield [
            ViewStart(
                _uuid_like(blob[64 * j : 64 * j + 32]),
                _uuid_like(blob[64 * j + 32 : 64 * j + 64]),
                video_ids[i % videos],
                urls[i % videos],
            )
            for j, i in enumerate(range(start, stop))
        ]


# -- layouts (each runs in its own process) -----------------------------------------------


def _headcount(views: int, videos: int) -> Callable[[], int]:
    return _headcount_build(views, videos)[1]


def _headcount_build(views: int, videos: int) -> tuple[MemoryLiveStore, Callable[[], int], float]:
    """The store, the function filling it, and the receive time of every event."""
    from headcount.core.events import ViewEvent
    from headcount.stores.memory import MemoryLiveStore

    store = MemoryLiveStore(liveness_window=3600.0)
    video_ids, urls = _video_ids(videos)
    now = time.time()

    async def build() -> int:
        await store.start(now)
        for batch in view_batches(views, video_ids, urls):
            events = [
                ViewEvent(
                    name="viewstart",
                    view_id=v.view_id,
                    sequence=6,
                    starts=True,
                    video_id=v.video_id,
                    source_url=v.source_url,
                    mux_viewer_id=v.viewer_id,
                )
                for v in batch
            ]
            await store.ingest(ENVIRONMENT, events, now)
        stats = await store.stats()
        total = 0
        for video_id in video_ids:
            total += (await store.counts(ENVIRONMENT, "video_id", video_id, now)).views
        if stats.happening != views or total != views:
            raise BenchError(f"the store counts {stats.happening} happening / {total} by video")
        return stats.happening

    def build_sync() -> int:
        return asyncio.run(build())

    return store, build_sync, now


class NaiveView:
    __slots__ = (
        "environment",
        "flags",
        "last_seen",
        "playback_id",
        "sequence",
        "video_id",
        "viewer",
    )

    def __init__(
        self,
        environment: str,
        video_id: str,
        playback_id: str,
        viewer: str,
        last_seen: float,
        sequence: int,
    ) -> None:
        self.environment = environment
        self.video_id = video_id
        self.playback_id = playback_id
        self.viewer = viewer
        self.last_seen = last_seen
        self.sequence = sequence
        self.flags = 1


def _naive(views: int, videos: int) -> Callable[[], int]:
    video_ids, urls = _video_ids(videos)
    playback_ids = [url.rsplit("/", 1)[1].split(".", 1)[0] for url in urls]
    playback_of = dict(zip(video_ids, playback_ids, strict=True))
    table: dict[str, NaiveView] = {}
    # counter key -> [views, {viewer: number of its happening views}]
    counters: dict[tuple[str, str, str], tuple[list[int], dict[str, int]]] = {}

    def count(key: tuple[str, str, str], viewer: str) -> None:
        entry = counters.get(key)
        if entry is None:
            entry = counters[key] = ([0], {})
        entry[0][0] += 1
        entry[1][viewer] = entry[1].get(viewer, 0) + 1

    def build() -> int:
        now = time.time()
        for batch in view_batches(views, video_ids, urls):
            for v in batch:
                playback_id = playback_of[v.video_id]
                view = NaiveView(ENVIRONMENT, v.video_id, playback_id, v.viewer_id, now, 6)
                table[v.view_id] = view
                count((ENVIRONMENT, "video_id", v.video_id), v.viewer_id)
                count((ENVIRONMENT, "playback_id", playback_id), v.viewer_id)
        total = sum(counters[(ENVIRONMENT, "video_id", v)][0][0] for v in video_ids)
        if len(table) != views or total != views:
            raise BenchError("the naive layout lost views")
        return len(table)

    return build


def _floor(views: int, videos: int) -> Callable[[], int]:
    video_ids, urls = _video_ids(videos)
    table: dict[str, None] = {}

    def build() -> int:
        for batch in view_batches(views, video_ids, urls):
            for v in batch:
                table[v.view_id] = None
        return len(table)

    return build


LAYOUTS: dict[str, Callable[[int, int], Callable[[], int]]] = {
    "headcount": _headcount,
    "naive": _naive,
    "floor": _floor,
}


def _rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure_here(layout: str, views: int, videos: int, mode: str) -> dict[str, float]:
    """Build one layout in this process; bytes per view by ``rss`` or ``trace``."""
    build = LAYOUTS[layout](views, videos)
    gc.collect()
    if mode == "trace":
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
    else:
        before = _rss_bytes()
    started = time.perf_counter()
    built = build()
    seconds = time.perf_counter() - started
    gc.collect()
    after = tracemalloc.get_traced_memory()[0] if mode == "trace" else _rss_bytes()
    return {
        "views": built,
        "bytes": after - before,
        "per_view": (after - before) / built,
        "s": seconds,
    }


def sweep_here(views: int, videos: int) -> dict[str, float]:
    """Build the headcount layout, then the CPU time of sweeps with nothing expired (best of 5)."""
    store, build, now = _headcount_build(views, videos)
    built = build()
    gc.collect()

    async def sweeps() -> list[float]:
        seconds = []
        for i in range(5):
            started = time.process_time()
            if await store.sweep(now + 1 + i) != 0:
                raise BenchError("a sweep removed views inside the window")
            seconds.append(time.process_time() - started)
        return seconds

    return {
        "views": built,
        "sweep_ms": min(asyncio.run(sweeps())) * 1e3,
        "visited": store.last_sweep_visited,
    }


def fresh_json(module: str, *args: str) -> dict[str, float]:
    """``python -m <module> <args>`` in a fresh process pinned to the server core; the JSON
    line it prints."""
    done = subprocess.run(
        ["taskset", "-c", SERVER_CPU, sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if done.returncode != 0:
        raise BenchError(f"{module} {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")
    result: dict[str, float] = json.loads(done.stdout)
    return result


def _measure_fresh(layout: str, views: int, videos: int, mode: str) -> dict[str, float]:
    return fresh_json("bench.memory", layout, str(views), str(videos), mode)


def run(options: MemoryOptions) -> Report:
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for layout in LAYOUTS:
        results[layout] = {"rss": [], "trace": []}
        # RSS moves a little from run to run; tracemalloc counts exactly the same allocations
        # every time (and is ~5x slower), so it runs once.
        for mode in ["rss"] * options.runs + ["trace"]:
            print(f"  {layout} {mode}...", flush=True)
            results[layout][mode].append(
                _measure_fresh(layout, options.views, options.videos, mode)
            )

    print("  headcount sweep...", flush=True)
    sweep = _measure_fresh("headcount", options.views, options.videos, "sweep")

    def per_view(layout: str, mode: str) -> float:
        return statistics.median(r["per_view"] for r in results[layout][mode])

    rows = []
    for layout in LAYOUTS:
        rows.append(
            (
                layout,
                f"{per_view(layout, 'rss'):.0f}",
                ", ".join(f"{r['per_view']:.0f}" for r in results[layout]["rss"]),
                f"{per_view(layout, 'trace'):.0f}",
                f"{statistics.median(r['s'] for r in results[layout]['rss']):.1f}",
            )
        )
    details = (
        f"{options.views:,} happening views across {options.videos:,} videos, "
        "fresh process per measurement, pinned to CPU "
        f"{SERVER_CPU}.\n\n"
        + markdown_table(
            ("layout", "RSS Δ B/view (median)", "runs", "tracemalloc B/view", "build s"),
            rows,
        )
    )
    rss, traced = per_view("headcount", "rss"), per_view("headcount", "trace")
    naive_rss, naive_traced = per_view("naive", "rss"), per_view("naive", "trace")
    metrics = (
        Metric(
            f"memory per happening view, {options.views:,} views / {options.videos:,} videos",
            f"≤ {TARGET_BYTES_PER_VIEW} B",
            f"{rss:.0f} B RSS, {traced:.0f} B traced",
            max(rss, traced) <= TARGET_BYTES_PER_VIEW,
        ),
        Metric(
            "memory per view, naive dict of __slots__ objects (same run)",
            "",
            f"{naive_rss:.0f} B RSS, {naive_traced:.0f} B traced "
            f"(headcount uses {rss / naive_rss:.2f}x)",
            None,
        ),
        Metric(
            f"sweep CPU with nothing expired, {options.views:,} views",
            f"≤ {TARGET_IDLE_SWEEP_MS:g} ms",
            f"{sweep['sweep_ms']:.2f} ms ({sweep['visited']:.0f} rows looked at)",
            sweep["sweep_ms"] <= TARGET_IDLE_SWEEP_MS,
        ),
    )
    raw = {"options": options.__dict__, "results": results, "sweep": sweep}
    return Report("memory", metrics, details, raw)


def main() -> None:
    layout, views, videos, mode = sys.argv[1:5]
    if layout not in LAYOUTS or mode not in ("rss", "trace", "sweep"):
        raise SystemExit(
            f"usage: python -m bench.memory {{{','.join(LAYOUTS)}}} N M rss|trace|sweep"
        )
    if mode == "sweep":
        if layout != "headcount":
            raise SystemExit("sweep: headcount only")
        print(json.dumps(sweep_here(int(views), int(videos))))
    else:
        print(json.dumps(measure_here(layout, int(views), int(videos), mode)))


if __name__ == "__main__":
    main()
