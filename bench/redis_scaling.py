"""Part 4 of ``bench redis`` (:mod:`bench.redis_store`): scaling. Two 1-node deployments
loaded at once against one 2-node deployment on one Redis (and node A alone, for reading),
with its section of the report.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.redis_nodes import NodeRun, Part, _load_redis_nodes, _median, _paused
from bench.redis_servers import RedisProcess
from bench.report import Metric, markdown_table
from bench.servers import SERVER_CPU, ServerProcess
from bench.wrk import Method

TARGET_SCALING = 0.10


@dataclass(frozen=True)
class _Scaling:
    alone: list[NodeRun]  # node A alone, a core to itself (for reading)
    apart: list[NodeRun]  # A and C at once, each on a Redis of its own: two 1-node deployments
    shared: list[NodeRun]  # A and B at once on one Redis: a 2-node deployment


def _measure_scaling(
    a: ServerProcess,
    b: ServerProcess,
    c: ServerProcess,
    shared: RedisProcess,
    own: RedisProcess,
    data: Path,
    run_number: Callable[[], int],
    method: Method,
) -> _Scaling:
    """In turn: two 1-node deployments loaded at once (A on the shared Redis, C on its own),
    a 2-node deployment (A and B on the shared Redis), and A alone. The first two share the
    server core the same way, so their ratio is what a second node on the same Redis costs."""
    conns = method.connections

    def apart(duration: float) -> NodeRun:
        with _paused(b):
            return _load_redis_nodes([a, c], [shared, own], data, run_number, duration, conns)

    def together(duration: float) -> NodeRun:
        with _paused(c):
            return _load_redis_nodes([a, b], shared, data, run_number, duration, conns)

    def alone(duration: float) -> NodeRun:
        with _paused(b, c):
            return _load_redis_nodes([a], shared, data, run_number, duration, conns)

    for load in (apart, together, alone):
        load(method.warmup)
    result = _Scaling([], [], [])
    for _ in range(method.runs):
        result.apart.append(apart(method.duration))
        result.shared.append(together(method.duration))
        result.alone.append(alone(method.duration))
    return result


# -- the report ------------------------------------------------------------------------------


def _scaling_part(scaling: _Scaling, method: Method) -> Part:
    def row(label: str, runs: Sequence[NodeRun]) -> tuple[str, ...]:
        return (
            label,
            f"{_median(r.requests_per_s for r in runs):,.0f}",
            ", ".join(f"{r.requests_per_s / 1000:.1f}k" for r in runs),
            f"{_median(r.node_cores for r in runs):.2f}",
            f"{_median(r.node_us_per_request for r in runs):.1f}",
            f"{_median(r.redis_cores for r in runs):.2f}",
            f"{_median(r.redis_us_per_request for r in runs):.1f}",
            f"{_median(r.total_us_per_request for r in runs):.1f}",
            ", ".join(f"{r.others:.2f}" for r in runs),
        )

    table = markdown_table(
        (
            "load",
            "req/s, all nodes (median)",
            "runs",
            "node cores",
            "node CPU µs/req",
            "Redis cores",
            "Redis CPU µs/req",
            "node + Redis µs/req",
            "other processes, cores",
        ),
        [
            row("two 1-node deployments at once (A and C, a Redis each)", scaling.apart),
            row("one 2-node deployment (A and B, one Redis)", scaling.shared),
            row("node A alone, a core to itself (for reading)", scaling.alone),
        ],
    )

    def ratio(part: Callable[[NodeRun], float], runs: Sequence[NodeRun]) -> float:
        return _median(part(r) for r in scaling.shared) / _median(part(r) for r in runs)

    def total(r: NodeRun) -> float:
        return r.total_us_per_request

    def node(r: NodeRun) -> float:
        return r.node_us_per_request

    def redis(r: NodeRun) -> float:
        return r.redis_us_per_request

    scale = ratio(total, scaling.apart)
    unclean = [r for r in [*scaling.apart, *scaling.shared, *scaling.alone] if not r.clean]
    section = (
        f"Scaling, all nodes on CPU {SERVER_CPU}, each loaded by its own wrk of "
        f"{method.connections} connections, the three loads in turn. Two nodes must share the "
        "server core here, and sharing a core costs CPU per request by itself (a second heap "
        "in the caches, context switches); so the 1-node case is two independent 1-node "
        "deployments loaded at once, sharing the core the same way, and the 2-node case the "
        f"same two nodes on one Redis. Against node A alone the ratio is "
        f"{ratio(total, scaling.alone):.2f} (node {ratio(node, scaling.alone):.2f}, Redis "
        f"{ratio(redis, scaling.alone):.2f}): that is the shared core's price, not Redis's.\n\n"
        + table
        + (
            f"\n\nProblems (these void the result): {len(unclean)} runs not clean"
            if unclean
            else ""
        )
    )
    metric = Metric(
        "scaling: CPU per beacon (node + Redis), 2 nodes on one Redis ÷ 1 node",
        f"1.00 ± {TARGET_SCALING:.2f}",
        f"{scale:.2f}: {_median(total(r) for r in scaling.shared):.1f} vs "
        f"{_median(total(r) for r in scaling.apart):.1f} µs per request (node "
        f"{ratio(node, scaling.apart):.2f}, Redis {ratio(redis, scaling.apart):.2f}; against "
        f"one node alone on its core {ratio(total, scaling.alone):.2f})",
        abs(scale - 1) <= TARGET_SCALING and not unclean,
    )
    return section, [metric]
