"""The Redis live store (issue "Redis live store"): what a node and Redis pay per beacon, Redis
memory per view, scaling over nodes, freshness across nodes, and a hot video on a cluster.

Two cores: every ``headcount serve`` runs on CPU 0 (``taskset``), wrk, ``redis-server`` and the
benchmark's own clients on CPU 1, so a node under load has its core to itself and the CPU it
uses per request is its own. Redis runs standalone (``--save "" --appendonly no``) on a free
127.0.0.1 port; the cluster of the last part is three masters without replicas. Every number is
a ratio to something measured in the same run, of CPU times per unit of work, which move less
than rates when another process takes part of a core (each run prints how much other processes
used meanwhile).

1. **Node CPU per beacon.** ``headcount serve --live redis://...`` against ``--live memory://``:
   the same mux-embed bodies (:mod:`bench.bodies`, ``bench/lua/bodies.lua``) loaded in turn,
   warm-up then ``runs`` kept runs, server CPU time per request of each. A node that waits for
   Redis cannot answer in the parser callback (that serves only stores that answer without
   I/O): each of its requests is answered from a task (``HeadcountApp.reply_later``).
2. **Redis CPU per event.** ``INFO cpu`` (``used_cpu_sys`` + ``used_cpu_user``) deltas over each
   Redis node run, divided by the events the node accepted (its ``/metrics``); against it, right
   after each run, ``redis-benchmark`` sending ``EVALSHA`` of ``return 1`` to the same server
   with as many connections as the node had open and pipelines as deep as the node's commands
   per socket read (``total_reads_processed``). The Redis node is stopped (``SIGSTOP``) while
   anything else runs, so all of its work, the sweeps of views it expires included, falls in its
   own runs and none in the trivial ones.
3. **Redis memory per happening view.** A fresh server, filled through ``RedisLiveStore.ingest``
   from Python (``views`` full-state ``viewstart`` events over ``videos`` videos, each with a
   Mux source URL and a ``mux_viewer_id``, in batches of :data:`BATCH_VIEWS`); ``used_memory``
   delta per view, every view checked by ``stats()`` and by the sum of the counts per video, and
   the encodings Redis gave the keys (``OBJECT ENCODING``, ``MEMORY USAGE``) by kind of key.
4. **Scaling.** All nodes on CPU 0, each loaded by its own wrk, in turn: two independent
   1-node deployments at once (node A on the Redis, node C on a Redis of its own) and one
   2-node deployment (A and B on the one Redis), which share the core the same way; node +
   Redis CPU per beacon must stay the same. Node A alone on its core is printed beside them:
   two nodes on one core cost more per request than one, Redis or not.
5. **Freshness across nodes.** A ``viewstart`` (then the ``viewend``) POSTed to node A, polled
   on node B's ``/counts`` every 10 ms. B's cache is warm (an audience polls it) and the POST
   falls at a random moment of its life, as it does in production: B shows the change when the
   answer it keeps for ``snapshot_interval`` (1 s) runs out.
6. **No hot shard.** Every view on one ``video_id``, one node on a 3-master cluster; per master,
   the ``INFO commandstats`` calls and time of the store's commands: busiest ÷ quietest.

The parts are measured and written up in their own modules: :mod:`bench.redis_cpu` (1, 2),
:mod:`bench.redis_memory` (3), :mod:`bench.redis_scaling` (4), :mod:`bench.redis_freshness` (5)
and :mod:`bench.redis_hot_shard` (6), on the loads of :mod:`bench.redis_nodes`; this module
holds the options, runs the parts in turn and puts the report together.
"""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench.bodies import generate_lifecycles, popular_videos, split_template, write_lua_data
from bench.deployment import Deployment, deployment
from bench.ingest import check_accepted
from bench.redis_cpu import TrivialRun, _measure_node_cpu, _node_part, _NodeCpu, _redis_cpu_part
from bench.redis_freshness import _fresh_tokens, _freshness, _freshness_part
from bench.redis_hot_shard import _hot_part, _HotShard, _measure_hot_shard
from bench.redis_memory import _Memory, _memory_part, measure_memory
from bench.redis_nodes import NodeRun, _paused, _serve_redis_node
from bench.redis_scaling import _measure_scaling, _Scaling, _scaling_part
from bench.redis_servers import require_redis, start_redis
from bench.report import Report
from bench.servers import on_cpu
from bench.wrk import WRK_CPU, Method
from headcount.settings import load_settings

__all__ = ["RedisOptions", "run"]

LIFECYCLES = 200


@dataclass(frozen=True)
class RedisOptions:
    method: Method
    views: int = 1_000_000
    videos: int = 10_000
    samples: int = 100
    cluster: bool = True


# -- the report ------------------------------------------------------------------------------


def _node_run_raw(run: NodeRun) -> dict[str, Any]:
    return {
        "wrk": [asdict(w) for w in run.wrk],
        "redis_cpu": run.redis.cpu,
        "redis_reads": run.redis.reads,
        "redis_commands": dict(run.redis.commands),
        "events": run.events,
        "seconds": run.seconds,
        "node_us_per_request": run.node_us_per_request,
        "redis_us_per_request": run.redis_us_per_request,
    }


def _trivial_raw(run: TrivialRun) -> dict[str, Any]:
    return {
        "calls": run.calls,
        "redis_cpu": run.redis.cpu,
        "redis_reads": run.redis.reads,
        "seconds": run.seconds,
        "clients": run.clients,
        "pipeline": run.pipeline,
    }


# -- the benchmark -----------------------------------------------------------------------------


@dataclass
class _Measured:
    cpu: _NodeCpu
    scaling: _Scaling
    starts: list[float]
    ends: list[float]
    memory: _Memory
    hot: _HotShard | None


def _measure(options: RedisOptions, target: Deployment, directory: Path) -> _Measured:
    method = options.method
    numbers = itertools.count(1)  # every load's run number: no two loads share a view id

    def run_number() -> int:
        return next(numbers)

    lifecycles = generate_lifecycles(target.env_key, LIFECYCLES)
    lifecycle = lifecycles[0]
    data = target.directory / "bodies.lua"
    write_lua_data(data, lifecycles, popular_videos())
    ending = next(lc for lc in lifecycles if lc.ending == "viewend")
    tokens = _fresh_tokens(target, options.samples)
    cache = load_settings({}, environ={}).snapshot_interval
    with (
        start_redis("redis-bench", directory / "standalone", cpu=WRK_CPU) as redis_server,
        _serve_redis_node(target, "headcount-redis-a", redis_server.url) as node_a,
    ):
        check_accepted(node_a.url("/"), lifecycle)
        print("  node CPU: the memory node and the Redis node in turn...", flush=True)
        cpu = _measure_node_cpu(target, redis_server, node_a, data, run_number, method, lifecycle)
        with (
            _serve_redis_node(target, "headcount-redis-b", redis_server.url) as node_b,
            start_redis("redis-bench-own", directory / "own", cpu=WRK_CPU) as own_redis,
            _serve_redis_node(target, "headcount-redis-c", own_redis.url) as node_c,
        ):
            check_accepted(node_b.url("/"), lifecycle)
            check_accepted(node_c.url("/"), lifecycle)
            print("  scaling: two 1-node deployments, one 2-node deployment...", flush=True)
            scaling = _measure_scaling(
                node_a, node_b, node_c, redis_server, own_redis, data, run_number, method
            )
            print("  freshness across nodes...", flush=True)
            first, last = split_template(ending.bodies[0]), split_template(ending.bodies[-1])
            with _paused(node_c), on_cpu(WRK_CPU):
                starts, ends = asyncio.run(
                    _freshness(node_a.url(""), node_b.url(""), tokens, first, last, cache)
                )
    print(f"  memory: {options.views:,} views...", flush=True)
    memory = measure_memory(directory / "memory", options.views, options.videos)
    hot = None
    if options.cluster:
        print("  hot video on a 3-master cluster...", flush=True)
        hot = _measure_hot_shard(target, directory, lifecycles, method)
    return _Measured(cpu, scaling, starts, ends, memory, hot)


def run(options: RedisOptions) -> Report:
    require_redis()
    method = options.method
    with deployment() as target, tempfile.TemporaryDirectory(prefix="headcount-redis-") as tmp:
        measured = _measure(options, target, Path(tmp))
    cpu = measured.cpu
    node, problems = _node_part(cpu, method)
    parts = [
        node,
        _redis_cpu_part(cpu, problems),
        _memory_part(measured.memory),
        _scaling_part(measured.scaling, method),
        _freshness_part(
            measured.starts, measured.ends, load_settings({}, environ={}).snapshot_interval
        ),
    ]
    if measured.hot is not None:
        parts.append(_hot_part(measured.hot, method))
    details = "\n\n".join(section for section, _ in parts)
    notes = cpu.memory.notes() + cpu.redis.notes()
    if notes:
        details += "\n\nNotes: " + "; ".join(notes) + "."
    if problems:
        details += "\n\nProblems (these void the result): " + "; ".join(problems)
    raw: dict[str, Any] = {
        "options": asdict(options),
        "node_cpu": {
            "memory": [asdict(r) for r in cpu.memory.runs],
            "redis": [_node_run_raw(r) for r in cpu.redis_runs],
            "trivial": [_trivial_raw(t) for t in cpu.trivial],
        },
        "scaling": {
            "apart": [_node_run_raw(r) for r in measured.scaling.apart],
            "shared": [_node_run_raw(r) for r in measured.scaling.shared],
            "alone": [_node_run_raw(r) for r in measured.scaling.alone],
        },
        "freshness": {"starts": measured.starts, "ends": measured.ends},
        "memory": asdict(measured.memory),
        "hot_shard": asdict(measured.hot) if measured.hot is not None else None,
    }
    metrics = tuple(m for _, part_metrics in parts for m in part_metrics)
    return Report("redis", metrics, details, raw)
