"""How long a save of the memory live store stalls the event loop, in fresh processes.

The population is the ``memory`` benchmark's (``views`` happening views across ``videos``
videos, started by full-state ``viewstart`` s). While :meth:`MemoryLiveStore.save` runs, a probe
task on the same loop sleeps 1 ms at a time and records how late each wake-up is: the largest
lateness is the longest time no request could have been answered. Then the probe runs alone for
as long again: its worst lateness there is what the machine's other processes cost (a shared
core), the floor under the first number. Each run is a fresh process pinned to the server core;
the table gives the median over runs of each run's worst stall, the probe's 99th percentile,
the probe-alone baseline and the save's wall time.

Run one alone: ``python -m bench.snapshot 200000 2000`` (prints one JSON line).
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.memory import _headcount_build, fresh_json
from bench.report import Metric, Report, markdown_table
from bench.servers import SERVER_CPU

__all__ = ["SnapshotOptions", "run", "stall_here"]

TARGET_STALL_MS = 20.0  # a save may delay a request by about one scheduling slice, not more
PROBE_SLEEP = 0.001  # s


@dataclass(frozen=True)
class SnapshotOptions:
    views: int = 200_000
    videos: int = 2_000
    runs: int = 3


def stall_here(views: int, videos: int) -> dict[str, float]:
    """Build the store in this process, then save it once with the probe running."""
    with tempfile.TemporaryDirectory() as directory:
        store, build, now = _headcount_build(views, videos)
        build()
        store.state_file = Path(directory) / "live-state.json"
        gc.collect()

        async def measure() -> dict[str, float]:
            lateness: list[float] = []
            done = False

            async def probe() -> None:
                while not done:
                    asked = time.perf_counter()
                    await asyncio.sleep(PROBE_SLEEP)
                    lateness.append(time.perf_counter() - asked - PROBE_SLEEP)

            task = asyncio.create_task(probe())
            await asyncio.sleep(0.05)  # the probe is running
            lateness.clear()
            started = time.perf_counter()
            await store.save(now)
            seconds = time.perf_counter() - started
            during = sorted(lateness)
            # The baseline: the probe alone for as long again (what the machine's other
            # processes cost it), so a shared core is visible, not blamed on the save.
            lateness.clear()
            await asyncio.sleep(seconds)
            idle = max(lateness, default=0.0)
            done = True
            await task
            return {
                "views": float(views),
                "stall_ms": during[-1] * 1e3 if during else seconds * 1e3,
                "p99_ms": during[int(len(during) * 0.99)] * 1e3 if during else 0.0,
                "idle_ms": idle * 1e3,
                "save_ms": seconds * 1e3,
                "bytes": float(store.state_file.stat().st_size) if store.state_file else 0.0,
            }

        return asyncio.run(measure())


def run(options: SnapshotOptions) -> Report:
    runs = []
    for i in range(options.runs):
        print(f"  save {i + 1}/{options.runs}...", flush=True)
        runs.append(fresh_json("bench.snapshot", str(options.views), str(options.videos)))

    def median(name: str) -> float:
        return statistics.median(r[name] for r in runs)

    details = (
        f"{options.views:,} happening views across {options.videos:,} videos, one save per "
        f"fresh process pinned to CPU {SERVER_CPU}, {options.runs} runs.\n\n"
        + markdown_table(
            (
                "worst loop stall ms (median)",
                "runs",
                "probe p99 ms",
                "probe alone, worst ms",
                "save wall ms",
                "file MB",
            ),
            [
                (
                    f"{median('stall_ms'):.1f}",
                    ", ".join(f"{r['stall_ms']:.1f}" for r in runs),
                    f"{median('p99_ms'):.2f}",
                    f"{median('idle_ms'):.1f}",
                    f"{median('save_ms'):.0f}",
                    f"{median('bytes') / 1e6:.1f}",
                )
            ],
        )
    )
    stall = median("stall_ms")
    metrics = (
        Metric(
            f"event-loop stall during a live-state save, {options.views:,} views",
            f"≤ {TARGET_STALL_MS:g} ms",
            f"{stall:.1f} ms (save took {median('save_ms'):.0f} ms)",
            stall <= TARGET_STALL_MS,
        ),
    )
    return Report("snapshot", metrics, details, {"options": options.__dict__, "runs": runs})


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit("usage: python -m bench.snapshot VIEWS VIDEOS")
    print(json.dumps(stall_here(int(sys.argv[1]), int(sys.argv[2]))))


if __name__ == "__main__":
    main()
