"""Parts 1 and 2 of ``bench redis`` (:mod:`bench.redis_store`): node CPU per beacon,
``--live redis://`` against ``--live memory://``, and Redis CPU per event against a trivial
``EVALSHA`` (``redis-benchmark``) on the same server, with their sections of the report.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.bodies import Lifecycle
from bench.deployment import Deployment, serve_headcount
from bench.ingest import check_accepted, metric_values
from bench.redis_nodes import (
    REJECTED,
    NodeRun,
    Part,
    _load_node,
    _load_redis_nodes,
    _median,
    _paused,
)
from bench.redis_servers import RedisProcess, RedisStats, require_redis
from bench.report import SERIES_HEADERS, Metric, markdown_table, series_row
from bench.servers import HOST, SERVER_CPU, BenchError, ServerProcess, free_port
from bench.wrk import Method, Series

__all__ = ["TrivialRun", "trivial_pipeline"]

TARGET_NODE_RATIO = 2.0
TARGET_REDIS_RATIO = 0.3

MEMORY_NODE = "headcount serve --live memory:// (hot path)"
REDIS_NODE = "headcount serve --live redis:// (awaits Redis: a task per request)"
TRIVIAL_SCRIPT = "return 1"
TRIVIAL_SECONDS = 5.0  # per kept trivial run (sized from the warm-up's rate)


@dataclass(frozen=True)
class TrivialRun:
    """``redis-benchmark`` sending ``EVALSHA <return 1> 0`` to the same server."""

    calls: int
    redis: RedisStats
    seconds: float
    clients: int
    pipeline: int

    @property
    def calls_per_redis_second(self) -> float:
        return self.calls / self.redis.cpu if self.redis.cpu > 0 else 0.0

    @property
    def us_per_call(self) -> float:
        return self.redis.cpu / self.calls * 1e6 if self.calls else 0.0

    @property
    def commands_per_read(self) -> float:
        return self.calls / self.redis.reads if self.redis.reads else 0.0


def trivial_pipeline(runs: Sequence[NodeRun]) -> int:
    """Pipeline depth for the trivial baseline: the node's commands per socket read, rounded
    (what Redis sees arrive at once; redis-py writes a pipeline in one go)."""
    per_read = [r.commands_per_read for r in runs if r.commands_per_read > 0]
    return max(1, round(statistics.median(per_read))) if per_read else 1


def _trivial(server: RedisProcess, sha: str, clients: int, pipeline: int, calls: int) -> TrivialRun:
    _, _, benchmark = require_redis()
    argv = ["taskset", "-c", SERVER_CPU, benchmark, "-h", HOST, "-p", str(server.port)]
    argv += ["-c", str(clients), "-n", str(calls), "-P", str(pipeline), "-q", "EVALSHA", sha, "0"]
    before = server.stats()
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    seconds = time.monotonic() - started
    after = server.stats()
    if done.returncode != 0:
        raise BenchError(f"redis-benchmark failed ({done.returncode}): {done.stderr.strip()}")
    delta = after - before
    if delta.calls("evalsha") < calls:
        raise BenchError(f"redis-benchmark made {delta.calls('evalsha')} of {calls} EVALSHA calls")
    return TrivialRun(delta.calls("evalsha"), delta, seconds, clients, pipeline)


@dataclass(frozen=True)
class _NodeCpu:
    memory: Series
    redis: Series
    memory_others: tuple[float, ...]  # cores other processes used during each memory run
    redis_runs: tuple[NodeRun, ...]
    trivial: tuple[TrivialRun, ...]
    clients: int
    pipeline: int


def _measure_node_cpu(
    target: Deployment,
    redis_server: RedisProcess,
    redis_node: ServerProcess,
    data: Path,
    run_number: Callable[[], int],
    method: Method,
    lifecycle: Lifecycle,
) -> _NodeCpu:
    """The memory node and the Redis node loaded in turn (warm-up, then ``runs`` rounds), a
    trivial EVALSHA run after each Redis node run. The Redis node is stopped outside its runs."""
    sha = redis_server.client.script_load(TRIVIAL_SCRIPT)
    with (
        _paused(redis_node),
        serve_headcount(target, "headcount-redis-bench-memory", free_port()) as memory_node,
    ):
        check_accepted(memory_node.url("/"), lifecycle)
        memory_before = metric_values(memory_node.url("/metrics")).get(REJECTED, 0.0)
        conns = method.connections

        def redis_run(duration: float) -> NodeRun:
            os.killpg(redis_node.pid, signal.SIGCONT)
            try:
                return _load_redis_nodes(
                    [redis_node], redis_server, data, run_number, duration, conns
                )
            finally:
                os.killpg(redis_node.pid, signal.SIGSTOP)

        # Warm-up: each node once (thrown away); the Redis node's tells the trivial load's
        # shape (connections, pipeline depth), and a short trivial run its rate.
        warm = redis_run(method.warmup)
        clients = max(1, int(redis_server.info("clients")["connected_clients"]) - 1)
        pipeline = trivial_pipeline([warm])
        probe = _trivial(redis_server, sha, clients, pipeline, 200_000)
        per_run = max(10_000, int(probe.calls / probe.seconds * TRIVIAL_SECONDS))
        _load_node(memory_node, data, run_number, method.warmup, conns)
        memory_runs, memory_others, redis_runs, trivial_runs = [], [], [], []
        for _ in range(method.runs):
            redis_runs.append(redis_run(method.duration))
            trivial_runs.append(_trivial(redis_server, sha, clients, pipeline, per_run))
            run, others = _load_node(memory_node, data, run_number, method.duration, conns)
            memory_runs.append(run)
            memory_others.append(others)
        memory_rejected = metric_values(memory_node.url("/metrics")).get(REJECTED, 0.0)
    if memory_rejected - memory_before:
        raise BenchError("the memory node rejected benchmark events")
    return _NodeCpu(
        Series(MEMORY_NODE, tuple(memory_runs)),
        Series(REDIS_NODE, tuple(r.wrk[0] for r in redis_runs)),
        tuple(memory_others),
        tuple(redis_runs),
        tuple(trivial_runs),
        clients,
        pipeline,
    )


# -- the report ------------------------------------------------------------------------------


def _node_part(cpu: _NodeCpu, method: Method) -> tuple[Part, list[str]]:
    ratio = cpu.redis.cpu_us_per_request / cpu.memory.cpu_us_per_request
    problems = cpu.memory.problems() + cpu.redis.problems()
    problems += [
        f"a Redis node run: {r.rejected:.0f} events rejected" for r in cpu.redis_runs if r.rejected
    ]
    rows = [
        series_row(cpu.memory, "1.00 (reference)"),
        series_row(cpu.redis, f"{ratio:.2f} x memory"),
    ]
    table = markdown_table((*SERIES_HEADERS[:-1], "CPU/req ratio"), rows)
    section = (
        f"Node CPU per beacon (the two nodes loaded in turn, {method.duration} s runs, the same "
        "bodies; the Redis node stopped outside its own runs):\n\n"
        + table
        + "\n\n"
        + _others_text(
            {
                "the memory runs": cpu.memory_others,
                "the Redis runs": [r.others for r in cpu.redis_runs],
            }
        )
    )
    others = max([*cpu.memory_others, *(r.others for r in cpu.redis_runs)])
    shared = f" (machine shared: others used up to {others:.2f} cores)" if others > SHARED else ""
    metric = Metric(
        "node CPU per beacon, --live redis:// ÷ --live memory://",
        f"≤ {TARGET_NODE_RATIO:.2f}",
        f"{ratio:.2f}: {cpu.redis.cpu_us_per_request:.1f} vs {cpu.memory.cpu_us_per_request:.1f} "
        f"µs per request; {cpu.redis.requests_per_s:,.0f} vs {cpu.memory.requests_per_s:,.0f} "
        f"req/s{shared}",
        ratio <= TARGET_NODE_RATIO and not problems,
    )
    return (section, [metric]), problems


SHARED = 0.1  # cores used by other processes above which a run is noted as shared


def _others_text(groups: dict[str, Sequence[float]]) -> str:
    """What other processes on the machine used meanwhile (machine CPU time less ours)."""
    parts = [f"{name} {', '.join(f'{v:.2f}' for v in values)}" for name, values in groups.items()]
    text = "Cores used by other processes meanwhile (machine CPU time less ours): " + "; ".join(
        parts
    )
    if any(v > SHARED for values in groups.values() for v in values):
        text += (
            f". Above {SHARED} the machine was shared: neighbours slow a process down even on "
            "another core (caches, memory bandwidth), so CPU per request rises too"
        )
    return text + "."


def _redis_cpu_part(cpu: _NodeCpu, problems: list[str]) -> Part:
    rows = [
        (
            f"headcount run {index}",
            f"{run.requests:,}",
            f"{run.events:,.0f}",
            f"{run.redis_cores:.2f}",
            f"{run.redis_us_per_request:.1f}",
            f"{run.redis_us_per_event:.2f}",
            f"{run.events_per_redis_second:,.0f} events",
            f"{run.evalsha_per_request:.2f}",
            f"{run.commands_per_read:.1f}",
        )
        for index, run in enumerate(cpu.redis_runs, 1)
    ]
    rows += [
        (
            f"trivial EVALSHA run {index}",
            f"{trivial.calls:,} calls",
            "",
            f"{trivial.redis.cpu / trivial.seconds:.2f}",
            "",
            f"{trivial.us_per_call:.2f} per call",
            f"{trivial.calls_per_redis_second:,.0f} calls",
            "1",
            f"{trivial.commands_per_read:.1f}",
        )
        for index, trivial in enumerate(cpu.trivial, 1)
    ]
    table = markdown_table(
        (
            "load",
            "requests",
            "events",
            "Redis cores",
            "Redis CPU µs/request",
            "Redis CPU µs/event",
            "per Redis core-second",
            "EVALSHA/request",
            "commands per read",
        ),
        rows,
    )
    events_rate = _median(r.events_per_redis_second for r in cpu.redis_runs)
    trivial_rate = _median(t.calls_per_redis_second for t in cpu.trivial)
    ratio = events_rate / trivial_rate
    section = (
        "Redis CPU (`INFO cpu`) over each Headcount run, sweeps included, and over each trivial "
        f"`EVALSHA` (`{TRIVIAL_SCRIPT}`) run against the same server, right after it "
        f"(`redis-benchmark` on CPU {SERVER_CPU}: {cpu.clients} connections, as many as the node "
        f"had open; pipelines of {cpu.pipeline}, the node's commands per socket read):\n\n" + table
    )
    metric = Metric(
        "Redis: Headcount events per Redis core-second ÷ trivial EVALSHA calls per core-second",
        f"≥ {TARGET_REDIS_RATIO:.2f}",
        f"{ratio:.2f}: {events_rate:,.0f} events/core-s "
        f"({_median(r.redis_us_per_event for r in cpu.redis_runs):.1f} µs per event, "
        f"{_median(r.redis_us_per_request for r in cpu.redis_runs):.1f} µs per request) vs "
        f"{trivial_rate:,.0f} calls/core-s (pipelines of {cpu.pipeline})",
        ratio >= TARGET_REDIS_RATIO and not problems,
    )
    return section, [metric]
