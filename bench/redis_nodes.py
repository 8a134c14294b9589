"""Loading Headcount nodes on Redis, for ``bench redis`` (:mod:`bench.redis_store`): the
record of one load (:class:`NodeRun`: wrk per node, the Redis counters and the machine's CPU
time over it), process control (pausing idle nodes, pinning the bench's own clients, a Redis
node up and ready) and the loads themselves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.deployment import Deployment, serve_headcount
from bench.ingest import metric_values
from bench.redis_servers import RedisProcess, RedisStats
from bench.report import Metric
from bench.servers import BenchError, ServerProcess, free_port
from bench.wrk import LUA_DIR, Load, WrkRun, run_wrk_together

__all__ = ["NodeRun"]

ACCEPTED = "headcount_collector_events_accepted_total"
REJECTED = "headcount_collector_events_rejected_total"
BODIES = LUA_DIR / "bodies.lua"

# A part of the report: its section (Markdown) and its metrics.
Part = tuple[str, list[Metric]]


# -- runs and what they measured ------------------------------------------------------------


@dataclass(frozen=True)
class NodeRun:
    """One load of one or more Redis nodes at once, with the Redis server's counters over it."""

    wrk: tuple[WrkRun, ...]  # one per node loaded
    redis: RedisStats  # delta over the run
    events: float  # events the loaded nodes accepted (their /metrics)
    rejected: float
    seconds: float
    others: float = 0.0  # cores that processes outside the run used meanwhile (machine - ours)

    @property
    def requests(self) -> int:
        return sum(w.requests for w in self.wrk)

    @property
    def requests_per_s(self) -> float:
        return sum(w.requests_per_s for w in self.wrk)

    @property
    def node_us_per_request(self) -> float:
        """Node CPU per request over every node loaded (each node's CPU over its requests)."""
        cpu = sum(w.cpu_us_per_request * w.requests for w in self.wrk)
        return cpu / self.requests if self.requests else 0.0

    @property
    def node_cores(self) -> float:
        return sum(w.server_cores for w in self.wrk)

    @property
    def redis_us_per_request(self) -> float:
        return self.redis.cpu / self.requests * 1e6 if self.requests else 0.0

    @property
    def total_us_per_request(self) -> float:
        return self.node_us_per_request + self.redis_us_per_request

    @property
    def redis_us_per_event(self) -> float:
        return self.redis.cpu / self.events * 1e6 if self.events else 0.0

    @property
    def events_per_redis_second(self) -> float:
        return self.events / self.redis.cpu if self.redis.cpu > 0 else 0.0

    @property
    def redis_cores(self) -> float:
        return self.redis.cpu / self.seconds

    @property
    def evalsha_per_request(self) -> float:
        return self.redis.calls("evalsha") / self.requests if self.requests else 0.0

    @property
    def commands_per_read(self) -> float:
        calls, _ = self.redis.work
        return calls / self.redis.reads if self.redis.reads else 0.0

    @property
    def clean(self) -> bool:
        return all(w.clean for w in self.wrk) and not self.rejected


def _median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


# -- process control ------------------------------------------------------------------------


@contextlib.contextmanager
def _paused(*servers: ServerProcess) -> Iterator[None]:
    """Stop ``servers`` (SIGSTOP to their process groups) meanwhile: an idle node's sweeper
    must not add its work to someone else's run."""
    for server in servers:
        os.killpg(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for server in servers:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGCONT)


@contextlib.contextmanager
def _serve_redis_node(target: Deployment, name: str, redis_url: str) -> Iterator[ServerProcess]:
    port = free_port()
    with serve_headcount(target, name, port, {"HEADCOUNT_LIVE_URL": redis_url}) as node:
        _wait_ready(node)
        yield node


def _wait_ready(node: ServerProcess, timeout: float = 15.0) -> None:
    """Until the node's live store answered Redis (``/readyz``)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(node.url("/readyz"), timeout=2).status_code == 200:
                return
        time.sleep(0.1)
    raise BenchError(f"{node.name} did not become ready within {timeout:.0f} s")


# -- loading nodes ----------------------------------------------------------------------------


def _accepted(urls: Sequence[str]) -> tuple[float, float]:
    accepted = rejected = 0.0
    for url in urls:
        values = metric_values(url)
        accepted += values.get(ACCEPTED, 0.0)
        rejected += values.get(REJECTED, 0.0)
    return accepted, rejected


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float:
    """CPU time every process on the machine used so far (user, nice, system, irq, softirq)."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:8]]
    user, nice, system, _idle, _iowait, irq, softirq = fields
    return (user + nice + system + irq + softirq) / _CLOCK_TICKS


def _others(machine: float, runs: Sequence[WrkRun], redis_cpu: float, seconds: float) -> float:
    """Cores used during a run by processes that are not part of it: the machine's CPU time
    less the loaded servers', the wrk processes' and Redis's."""
    ours = sum(r.server_cores + r.wrk_cores for r in runs) * seconds + redis_cpu
    return max(0.0, (machine - ours) / seconds)


def _load_redis_nodes(
    nodes: Sequence[ServerProcess],
    redis_servers: RedisProcess | Sequence[RedisProcess],
    data: Path,
    run_number: Callable[[], int],
    duration: float,
    connections: int,
) -> NodeRun:
    """Load ``nodes`` at once, each with its own wrk; the Redis counters are those of every
    server in ``redis_servers``, added up."""
    servers = [redis_servers] if isinstance(redis_servers, RedisProcess) else list(redis_servers)
    metrics = [n.url("/metrics") for n in nodes]
    accepted_before, rejected_before = _accepted(metrics)
    loads = [Load(n, "/", BODIES, (str(data), str(run_number()))) for n in nodes]
    before = [server.stats() for server in servers]
    machine = machine_cpu_seconds()
    started = time.monotonic()
    runs = run_wrk_together(loads, duration=duration, connections=connections)
    seconds = time.monotonic() - started
    machine = machine_cpu_seconds() - machine
    redis = RedisStats(0.0, 0)
    for server, earlier in zip(servers, before, strict=True):
        redis = redis + (server.stats() - earlier)
    accepted_after, rejected_after = _accepted(metrics)
    return NodeRun(
        tuple(runs),
        redis,
        accepted_after - accepted_before,
        rejected_after - rejected_before,
        seconds,
        _others(machine, runs, redis.cpu, seconds),
    )


def _load_node(
    node: ServerProcess, data: Path, run_number: Callable[[], int], duration: float, conns: int
) -> tuple[WrkRun, float]:
    """One wrk run against one node; with the cores other processes used meanwhile."""
    load = Load(node, "/", BODIES, (str(data), str(run_number())))
    machine = machine_cpu_seconds()
    started = time.monotonic()
    run = run_wrk_together([load], duration=duration, connections=conns)[0]
    seconds = time.monotonic() - started
    return run, _others(machine_cpu_seconds() - machine, [run], 0.0, seconds)
