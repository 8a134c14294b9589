"""``python -m bench [NAME ...]`` — run benchmarks (counts ingest memory snapshot freshness
stream history redis fuzz soak).

With no name, the default set runs (every benchmark but ``redis``, which needs redis-server and
takes about 5 minutes of its own, ``fuzz`` (hostile beacons and tokens, ~1 minute) and ``soak``
(``--minutes`` at 80 % of measured capacity, 10 by default): run those by name).

Prints each benchmark's detail table as it finishes, then one Markdown table with every metric,
its target, the measured value and PASS/FAIL. Everything is also written under
``bench/results/`` (git-ignored): ``<stamp>.md`` (the tables) and ``<stamp>.json`` (every run).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence

from bench.report import Metric, Report, metrics_table
from bench.servers import RESULTS_DIR, BenchError
from bench.wrk import Method, require_wrk

BENCHMARKS = (
    "counts",
    "ingest",
    "memory",
    "snapshot",
    "freshness",
    "stream",
    "history",
    "redis",
    "fuzz",
    "soak",
)
DEFAULT = ("counts", "ingest", "memory", "snapshot", "freshness", "stream", "history")
NEEDS_WRK = frozenset({"counts", "ingest", "redis", "soak"})


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"any of {', '.join(BENCHMARKS)} (default: {', '.join(DEFAULT)})",
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per kept wrk run")
    parser.add_argument("--warmup", type=int, default=3, help="seconds of thrown-away warm-up")
    parser.add_argument("--runs", type=int, default=3, help="kept runs per measurement (>= 3)")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections")
    parser.add_argument(
        "--cold-duration",
        type=int,
        default=5,
        help="seconds per fresh-token /counts run (each needs ~200k pre-signed tokens per 5 s)",
    )
    parser.add_argument(
        "--views", type=int, default=1_000_000, help="views for `memory` and `redis`"
    )
    parser.add_argument(
        "--videos", type=int, default=10_000, help="videos for `memory` and `redis`"
    )
    parser.add_argument(
        "--snapshot-views",
        type=int,
        default=200_000,
        help="`snapshot`: views held while a save is timed (videos: one per 100)",
    )
    parser.add_argument(
        "--samples",
        type=int,
        default=100,
        help="starts and ends for `freshness` and `redis`",
    )
    parser.add_argument(
        "--subscribers",
        type=int,
        default=50_000,
        help="`stream`: SSE subscribers to hold (clamped to the file descriptor limit)",
    )
    parser.add_argument(
        "--changes", type=int, default=5, help="`stream`: counter changes timed per run"
    )
    parser.add_argument(
        "--history-ids", type=int, default=1000, help="`history`: ids live for the whole window"
    )
    parser.add_argument(
        "--no-cluster",
        action="store_true",
        help="`redis`: skip the hot-video part on a 3-master cluster",
    )
    parser.add_argument(
        "--cases", type=int, default=100_000, help="`fuzz`: beacons, and tokens, to try"
    )
    parser.add_argument("--seed", type=int, default=0, help="`fuzz`: the random seed")
    parser.add_argument(
        "--minutes", type=int, default=10, help="`soak`: minutes under load after warm-up"
    )
    return parser


def _runners(args: argparse.Namespace) -> dict[str, Callable[[], Report]]:
    method = Method(args.duration, args.warmup, args.runs, args.connections)

    def counts() -> Report:
        from bench import counts as module

        return module.run(module.CountsOptions(method, args.cold_duration))

    def ingest() -> Report:
        from bench import ingest as module

        return module.run(method)

    def memory() -> Report:
        from bench import memory as module

        return module.run(module.MemoryOptions(args.views, args.videos, args.runs))

    def snapshot() -> Report:
        from bench import snapshot as module

        views = args.snapshot_views
        return module.run(module.SnapshotOptions(views, max(1, views // 100), args.runs))

    def freshness() -> Report:
        from bench import freshness as module

        return module.run(module.FreshnessOptions(args.samples))

    def stream() -> Report:
        from bench import stream as module

        return module.run(module.StreamOptions(args.subscribers, args.changes, args.runs))

    def history() -> Report:
        from bench import history as module

        return module.run(module.HistoryOptions(args.history_ids))

    def redis() -> Report:
        from bench import redis_store as module

        return module.run(
            module.RedisOptions(
                method, args.views, args.videos, args.samples, cluster=not args.no_cluster
            )
        )

    def fuzz() -> Report:
        from bench import fuzz as module

        return module.run(module.FuzzOptions(args.cases, args.seed))

    def soak() -> Report:
        from bench import soak as module

        return module.run(module.SoakOptions(args.minutes))

    return {
        "fuzz": fuzz,
        "soak": soak,
        "counts": counts,
        "ingest": ingest,
        "memory": memory,
        "snapshot": snapshot,
        "freshness": freshness,
        "stream": stream,
        "history": history,
        "redis": redis,
    }


def _machine() -> str:
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{platform.node()}: {os.cpu_count()} CPUs, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, load average {load}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(
            f"unknown benchmark {', '.join(unknown)} (choose from {', '.join(BENCHMARKS)})"
        )
    if args.runs < 3:
        print("note: fewer than 3 runs per measurement; the medians are not the documented method")
    names = args.names or list(DEFAULT)
    if NEEDS_WRK.intersection(names):
        try:
            require_wrk()
        except BenchError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    runners = _runners(args)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H-%M-%SZ")
    started = time.monotonic()
    reports: list[Report] = []
    failures: list[Metric] = []
    print(f"# Headcount benchmarks, {stamp}\n\n{_machine()}\n", flush=True)
    for name in names:
        print(f"## {name}", flush=True)
        try:
            report = runners[name]()
        except BenchError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr, flush=True)
            failures.append(Metric(name, "runs", f"did not run: {exc}", False))
            continue
        reports.append(report)
        print(f"\n{report.details}\n", flush=True)
    metrics = [m for r in reports for m in r.metrics] + failures
    summary = metrics_table(metrics)
    minutes = (time.monotonic() - started) / 60
    print(f"## Summary ({minutes:.1f} min)\n\n{summary}\n")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    markdown = [f"# Headcount benchmarks, {stamp}", "", _machine(), ""]
    for report in reports:
        markdown += [f"## {report.name}", "", report.details, ""]
    markdown += ["## Summary", "", summary, ""]
    (RESULTS_DIR / f"{stamp}.md").write_text("\n".join(markdown))
    document = {
        "stamp": stamp,
        "machine": _machine(),
        "arguments": vars(args),
        "reports": {r.name: r.raw for r in reports},
        "metrics": [m.__dict__ for m in metrics],
    }
    (RESULTS_DIR / f"{stamp}.json").write_text(json.dumps(document, indent=1, default=str))
    print(f"written: bench/results/{stamp}.md and .json")
    return 0 if all(m.passed is not False for m in metrics) else 1


if __name__ == "__main__":
    sys.exit(main())
