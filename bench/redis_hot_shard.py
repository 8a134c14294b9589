"""Part 6 of ``bench redis`` (:mod:`bench.redis_store`): no hot shard. Every view on one
``video_id``, one node on a 3-master cluster; per master, the ``INFO commandstats`` calls and
time of the store's commands, with its section of the report.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from redis.crc import key_slot

from bench.bodies import Lifecycle, write_lua_data
from bench.deployment import Deployment
from bench.ingest import check_accepted, metric_values
from bench.redis_nodes import REJECTED, Part, _load_node, _median, _serve_redis_node
from bench.redis_servers import slot_owners, start_cluster
from bench.report import Metric, markdown_table
from bench.servers import HOST
from bench.wrk import WRK_CPU, Method
from headcount.core.identity import content_key
from headcount.settings import load_settings
from headcount.stores.redis_connect import parse_redis_url
from headcount.stores.redis_live import RedisLiveStore

TARGET_HOT_SHARD = 1.5

HOT_VIDEO = "hot-video-00000"


@dataclass(frozen=True)
class _HotShard:
    masters: tuple[dict[str, float], ...]  # per master, summed over the kept runs
    ratios_calls: tuple[float, ...]
    ratios_usec: tuple[float, ...]
    requests: int
    counter_keys: tuple[int, ...]  # hot-video counter sub-keys held by each master
    groups: tuple[int, ...]  # partition groups held by each master
    clean: bool


def _measure_hot_shard(
    target: Deployment, directory: Path, lifecycles: list[Lifecycle], method: Method
) -> _HotShard:
    data = directory / "hot.lua"
    write_lua_data(data, lifecycles, [HOT_VIDEO])
    run_numbers = itertools.count(1)
    with start_cluster(directory / "cluster", masters=3, cpu=WRK_CPU) as masters:
        url = f"redis+cluster://{HOST}:{masters[0].port}"
        with _serve_redis_node(target, "headcount-redis-cluster", url) as node:
            check_accepted(node.url("/"), lifecycles[0])
            rejected_before = metric_values(node.url("/metrics")).get(REJECTED, 0.0)
            _load_node(node, data, lambda: next(run_numbers), method.warmup, method.connections)
            totals = [{"calls": 0.0, "usec": 0.0, "cpu": 0.0} for _ in masters]
            ratios_calls, ratios_usec = [], []
            requests = 0
            clean = True
            for _ in range(method.runs):
                before = [m.stats() for m in masters]
                run, _ = _load_node(
                    node, data, lambda: next(run_numbers), method.duration, method.connections
                )
                deltas = [m.stats() - b for m, b in zip(masters, before, strict=True)]
                requests += run.requests
                clean = clean and run.clean
                work = [d.work for d in deltas]
                for total, (calls, usec), delta in zip(totals, work, deltas, strict=True):
                    total["calls"] += calls
                    total["usec"] += usec
                    total["cpu"] += delta.cpu
                calls_each = [c for c, _ in work]
                usec_each = [u for _, u in work]
                ratios_calls.append(max(calls_each) / max(min(calls_each), 1))
                ratios_usec.append(max(usec_each) / max(min(usec_each), 1))
            rejected = metric_values(node.url("/metrics")).get(REJECTED, 0.0) - rejected_before
        owners = slot_owners(masters)
    settings = load_settings({}, environ={})
    layout = RedisLiveStore.from_settings(settings, parse_redis_url(url)).layout
    counter_keys = [0] * len(masters)
    for id_type in ("video_id", "playback_id"):
        content = content_key(target.environment_id, id_type, HOT_VIDEO)
        for shard in range(layout.counter_shards):
            counter_keys[owners[key_slot(layout.counter(content, shard)[0].encode())]] += 1
    groups = [0] * len(masters)
    for g in range(layout.partitions):
        groups[owners[key_slot(layout.group(g)[0].encode())]] += 1
    return _HotShard(
        tuple(totals),
        tuple(ratios_calls),
        tuple(ratios_usec),
        requests,
        tuple(counter_keys),
        tuple(groups),
        clean and not rejected,
    )


# -- the report ------------------------------------------------------------------------------


def _hot_part(hot: _HotShard, method: Method) -> Part:
    calls_total = sum(m["calls"] for m in hot.masters)
    rows = [
        (
            f"master {index}",
            str(hot.groups[index]),
            str(hot.counter_keys[index]),
            f"{m['calls']:,.0f}",
            f"{m['calls'] / calls_total:.0%}" if calls_total else "",
            f"{m['usec'] / 1e6:.2f}",
            f"{m['cpu']:.2f}",
        )
        for index, m in enumerate(hot.masters)
    ]
    table = markdown_table(
        (
            "master",
            "partition groups held (of 256)",
            "hot-video counter sub-keys held (of 16)",
            "store commands",
            "share",
            "time in commands, s",
            "process CPU, s",
        ),
        rows,
    )
    calls = _median(hot.ratios_calls)
    usec = _median(hot.ratios_usec)
    section = (
        "Hot video on a 3-master cluster (no replicas, all on the wrk core): every view on one "
        f"video_id, one node, {hot.requests:,} requests over {method.runs} runs; "
        "`INFO commandstats` of the store's commands (the bench's own left out):\n\n"
        + table
        + "\n\nBusiest ÷ quietest per run, by calls: "
        + ", ".join(f"{r:.2f}" for r in hot.ratios_calls)
        + "; by time in commands: "
        + ", ".join(f"{r:.2f}" for r in hot.ratios_usec)
        + "."
    )
    metric = Metric(
        "hot video on a 3-master cluster: busiest ÷ quietest master (commandstats)",
        f"≤ {TARGET_HOT_SHARD:.2f}",
        f"{max(calls, usec):.2f}: {calls:.2f} by calls, {usec:.2f} by time in commands",
        max(calls, usec) <= TARGET_HOT_SHARD and hot.clean,
    )
    return section, [metric]
