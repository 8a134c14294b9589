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
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import signal
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from redis.crc import key_slot

from bench.bodies import (
    PLACEHOLDERS,
    Lifecycle,
    fill,
    generate_lifecycles,
    popular_videos,
    split_template,
    write_lua_data,
)
from bench.deployment import Deployment, deployment, serve_headcount
from bench.freshness import percentile
from bench.ingest import check_accepted, metric_values
from bench.redis_servers import (
    RedisProcess,
    RedisStats,
    require_redis,
    slot_owners,
    start_cluster,
    start_redis,
)
from bench.report import SERIES_HEADERS, Metric, Report, markdown_table, series_row
from bench.servers import HOST, SERVER_CPU, BenchError, ServerProcess, free_port
from bench.tokens import mint_token
from bench.wrk import LUA_DIR, WRK_CPU, Load, Method, Series, WrkRun, run_wrk_together
from headcount.core.events import ViewEvent, playback_id_from_source_url
from headcount.core.identity import content_key
from headcount.settings import load_settings
from headcount.stores.redis_connect import parse_redis_url
from headcount.stores.redis_live import RedisLiveStore

__all__ = [
    "NodeRun",
    "RedisOptions",
    "TrivialRun",
    "measure_memory",
    "memory_breakdown",
    "run",
    "trivial_pipeline",
    "video_major_batches",
]

TARGET_NODE_RATIO = 2.0
TARGET_REDIS_RATIO = 0.3
TARGET_BYTES_PER_VIEW = 300
TARGET_SCALING = 0.10
TARGET_FRESH_P99 = 1.0
TARGET_HOT_SHARD = 1.5

MEMORY_NODE = "headcount serve --live memory:// (hot path)"
REDIS_NODE = "headcount serve --live redis:// (awaits Redis: a task per request)"
TRIVIAL_SCRIPT = "return 1"
TRIVIAL_SECONDS = 5.0  # per kept trivial run (sized from the warm-up's rate)
LIFECYCLES = 200
BATCH_VIEWS = 10_000  # views per ingest call when filling Redis for the memory measurement
CONCURRENT_BATCHES = 4
MEMORY_ENVIRONMENT = "env_bench_redis_memory_00000"
HOT_VIDEO = "hot-video-00000"
POLL_INTERVAL = 0.01
GIVE_UP = 10.0
CONCURRENCY = 10
ACCEPTED = "headcount_collector_events_accepted_total"
REJECTED = "headcount_collector_events_rejected_total"
BODIES = LUA_DIR / "bodies.lua"


@dataclass(frozen=True)
class RedisOptions:
    method: Method
    views: int = 1_000_000
    videos: int = 10_000
    samples: int = 100
    cluster: bool = True


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
def _on_cpu(cpu: str) -> Iterator[None]:
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(cpu)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)


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


# -- freshness across nodes ---------------------------------------------------------------------


async def _views(client: httpx.AsyncClient, url: str) -> int:
    answer = await client.get(url)
    if answer.status_code != 200:
        raise BenchError(f"/counts answered {answer.status_code}: {answer.text}")
    views: int = answer.json()["data"][0]["views"]
    return views


async def _seen_after(
    poster: httpx.AsyncClient, reader: httpx.AsyncClient, body: bytes, url: str, wanted: int
) -> float:
    """POST ``body`` to one node, poll the other's ``/counts`` until it reads ``wanted``."""
    started = time.perf_counter()
    answer = await poster.post("/", content=body, headers={"Content-Type": "text/plain"})
    if answer.status_code != 200 or answer.json().get("rejected"):
        raise BenchError(f"the collector refused a freshness body: {answer.text}")
    deadline = started + GIVE_UP
    while await _views(reader, url) != wanted:
        if time.perf_counter() > deadline:
            return float("inf")
        await asyncio.sleep(POLL_INTERVAL)
    return time.perf_counter() - started


async def _freshness(
    a: str, b: str, tokens: list[str], first: list[str | int], last: list[str | int], cache: float
) -> tuple[list[float], list[float]]:
    starts: list[float] = []
    ends: list[float] = []
    rng = random.Random(11)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(tokens)):
        queue.put_nowait(index)

    async def worker(poster: httpx.AsyncClient, reader: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            ids = {
                PLACEHOLDERS["@@VIEW@@"]: f"fa000000-0000-4000-8000-{index:012x}",
                PLACEHOLDERS["@@VIEWER@@"]: f"fa000000-0000-4000-9000-{index:012x}",
                PLACEHOLDERS["@@VIDEO@@"]: f"fresh-video-{index:05d}",
                PLACEHOLDERS["@@PLAYER@@"]: f"fa000000-0000-4000-a000-{index:012x}",
            }
            url = f"/counts?token={tokens[index]}"
            # An audience polls node B: its answer for this video is cached, and the POST falls
            # at a random moment of that answer's life.
            if await _views(reader, url) != 0:
                raise BenchError("a freshness video had views before its sample")
            await asyncio.sleep(rng.uniform(0, cache))
            starts.append(await _seen_after(poster, reader, fill(first, ids), url, 1))
            await asyncio.sleep(rng.uniform(0, cache))
            ends.append(await _seen_after(poster, reader, fill(last, ids), url, 0))

    async with (
        httpx.AsyncClient(base_url=a, timeout=GIVE_UP) as poster,
        httpx.AsyncClient(base_url=b, timeout=GIVE_UP) as reader,
    ):
        await asyncio.gather(*(worker(poster, reader) for _ in range(CONCURRENCY)))
    return starts, ends


def _fresh_tokens(target: Deployment, count: int) -> list[str]:
    key = serialization.load_pem_private_key(target.private_key_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BenchError("the signing key is not an RSA key")
    exp = int(time.time()) + 3600
    claims = [{"sub": f"fresh-video-{i:05d}", "aud": "video_id", "exp": exp} for i in range(count)]
    return [mint_token(key, target.key_id, c) for c in claims]


# -- memory ----------------------------------------------------------------------------------


def _uuid_like(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-4{hex32[13:16]}-a{hex32[17:20]}-{hex32[20:32]}"


def _videos(videos: int) -> tuple[list[str], list[str]]:
    ids = [f"video-{i:05d}" for i in range(videos)]
    urls = [f"https://stream.mux.com/PB{i:05d}xLocalOnly{i % 97:02d}.m3u8" for i in range(videos)]
    return ids, urls


def video_major_batches(
    views: int, videos: int, batch: int = BATCH_VIEWS
) -> Iterator[list[ViewEvent]]:
    """``views`` full-state ``viewstart`` events, view ``i`` on video ``i mod videos`` (the
    population of ``bench/memory.py``), sent video by video: a batch holds whole videos, so the
    counter memberships of a batch share sub-keys and the fill takes one round trip per sub-key
    rather than one per view. The order does not change what Redis keeps at the end."""
    ids, urls = _videos(videos)
    per_video = [views // videos + (1 if v < views % videos else 0) for v in range(videos)]
    pending: list[ViewEvent] = []
    for video in range(videos):
        count = per_video[video]
        blob = os.urandom(32 * count).hex()
        for j in range(count):
            pending.append(
                ViewEvent(
                    name="viewstart",
                    view_id=_uuid_like(blob[64 * j : 64 * j + 32]),
                    sequence=6,
                    starts=True,
                    video_id=ids[video],
                    source_url=urls[video],
                    mux_viewer_id=_uuid_like(blob[64 * j + 32 : 64 * j + 64]),
                )
            )
        if len(pending) >= batch:
            yield pending
            pending = []
    if pending:
        yield pending


async def _fill(store: RedisLiveStore, views: int, videos: int, now: float) -> float:
    started = time.perf_counter()
    in_flight: list[asyncio.Future[Any]] = []
    for batch in video_major_batches(views, videos):
        in_flight.append(asyncio.ensure_future(store.ingest(MEMORY_ENVIRONMENT, batch, now)))
        if len(in_flight) >= CONCURRENT_BATCHES:
            await in_flight.pop(0)
    await asyncio.gather(*in_flight)
    return time.perf_counter() - started


async def _count_all(store: RedisLiveStore, videos: int, now: float) -> int:
    ids, _ = _videos(videos)
    total = 0
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        counts = await asyncio.gather(
            *(store.counts(MEMORY_ENVIRONMENT, "video_id", v, now) for v in chunk)
        )
        total += sum(c.views for c in counts)
    return total


@dataclass(frozen=True)
class KeyKind:
    """What one kind of key costs: encodings seen, entries per key, bytes per view."""

    name: str
    keys: int  # keys of this kind (extrapolated for sampled kinds)
    sampled: int
    encodings: dict[str, int]
    entries: float  # median entries (fields, members) per key
    bytes_per_view: float


def _inspect(server: RedisProcess, names: Sequence[str]) -> list[tuple[str, int, int]]:
    """(encoding, MEMORY USAGE, entries) of each key; absent keys are left out."""
    found: list[tuple[str, int, int]] = []
    client = server.client
    for start in range(0, len(names), 2000):
        chunk = names[start : start + 2000]
        pipe = client.pipeline(transaction=False)
        for name in chunk:
            pipe.object("encoding", name)
            pipe.memory_usage(name, samples=0)
            pipe.type(name)
        replies = pipe.execute()
        sizes = client.pipeline(transaction=False)
        kept = []
        for i, name in enumerate(chunk):
            encoding, usage, kind = replies[3 * i : 3 * i + 3]
            if encoding is None:
                continue
            kind = kind.decode() if isinstance(kind, bytes) else kind
            (sizes.hlen if kind == "hash" else sizes.zcard)(name)
            kept.append((encoding, usage))
        for (encoding, usage), entries in zip(kept, sizes.execute(), strict=True):
            text = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
            found.append((text, int(usage), int(entries)))
    return found


def memory_breakdown(
    kinds: Sequence[tuple[str, Sequence[tuple[str, int, int]], float]], views: int
) -> list[KeyKind]:
    """Per kind (name, inspected keys, scale from the sample to every key of the kind)."""
    out = []
    for name, found, scale in kinds:
        total = sum(usage for _, usage, _ in found) * scale
        out.append(
            KeyKind(
                name,
                round(len(found) * scale),
                len(found),
                dict(Counter(encoding for encoding, _, _ in found)),
                statistics.median(e for _, _, e in found) if found else 0.0,
                total / views if views else 0.0,
            )
        )
    return out


@dataclass(frozen=True)
class _Memory:
    views: int
    videos: int
    used_before: int
    used_after: int
    fill_seconds: float
    kinds: tuple[KeyKind, ...]
    keys: int
    sub_keys: int  # partitions x sub-partitions: the state hashes and last-seen zsets
    limits: dict[str, int]  # the server's *-max-listpack-entries

    @property
    def per_view(self) -> float:
        return (self.used_after - self.used_before) / self.views


def measure_memory(directory: Path, views: int, videos: int) -> _Memory:
    """Fill a fresh Redis with ``views`` happening views and look at what it keeps."""
    with start_redis("redis-bench-memory", directory, cpu=WRK_CPU) as server, _on_cpu(SERVER_CPU):
        settings = load_settings({"live_url": server.url, "liveness_window": 3600.0}, environ={})
        store = RedisLiveStore.from_settings(settings, parse_redis_url(server.url))
        now = time.time()

        async def build() -> tuple[int, float, int, int]:
            await store.start(now)
            try:
                before = server.used_memory()
                seconds = await _fill(store, views, videos, now)
                after = server.used_memory()
                stats = await store.stats()
                counted = await _count_all(store, videos, now)
            finally:
                await store.close(now)
            if stats.happening != views or counted != views:
                raise BenchError(
                    f"Redis counts {stats.happening} happening views and {counted} by video, "
                    f"not {views}"
                )
            return before, seconds, after, stats.happening

        before, seconds, after, _ = asyncio.run(build())
        layout = store.layout
        groups = range(layout.partitions)
        subs = [(g, r) for g in groups for r in range(layout.subpartitions)]
        state = _inspect(server, [layout.sub(g, r)[0] for g, r in subs])
        seen = _inspect(server, [layout.sub(g, r)[1] for g, r in subs])
        group_keys = _inspect(server, [n for g in groups for n in layout.group(g)])
        ids, urls = _videos(videos)
        step = max(1, videos // 500)
        sample = range(0, videos, step)
        scale = videos / len(sample)
        counters: dict[str, list[tuple[str, int, int]]] = {}
        for id_type, values in (
            ("video_id", [ids[v] for v in sample]),
            ("playback_id", [playback_id_from_source_url(urls[v]) or "" for v in sample]),
        ):
            names = [
                layout.counter(content_key(MEMORY_ENVIRONMENT, id_type, value), shard)
                for value in values
                for shard in range(layout.counter_shards)
            ]
            counters[f"{id_type} counter hashes"] = _inspect(server, [h for h, _ in names])
            counters[f"{id_type} lease zsets"] = _inspect(server, [z for _, z in names])
        keys = int(server.client.dbsize())
        limits = {
            name.decode() if isinstance(name, bytes) else str(name): int(value)
            for name, value in server.client.config_get("*-max-listpack-entries").items()
        }
    kinds = memory_breakdown(
        [
            ("view state hashes (partition)", state, 1.0),
            ("last-seen zsets (partition)", seen, 1.0),
            ("due zsets + stats hashes (group)", group_keys, 1.0),
            *((name, found, scale) for name, found in counters.items()),
        ],
        views,
    )
    return _Memory(views, videos, before, after, seconds, tuple(kinds), keys, len(subs), limits)


# -- hot shard -------------------------------------------------------------------------------


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

Part = tuple[str, list[Metric]]


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


def _memory_part(memory: _Memory) -> Part:
    rows = []
    accounted = 0.0
    for kind in memory.kinds:
        accounted += kind.bytes_per_view
        encodings = ", ".join(f"{name} {count:,}" for name, count in sorted(kind.encodings.items()))
        sampled = "" if kind.sampled == kind.keys else f" (sample of {kind.sampled:,})"
        rows.append(
            (
                kind.name,
                f"{kind.keys:,}{sampled}",
                encodings,
                f"{kind.entries:.0f}",
                f"{kind.bytes_per_view:.0f}",
            )
        )
    rows.append(
        ("the rest: key space, expiry table", "", "", "", f"{memory.per_view - accounted:.0f}")
    )
    table = markdown_table(
        ("keys", "count", "encodings", "entries per key (median)", "B/view (MEMORY USAGE)"),
        rows,
    )
    zset_limit = memory.limits.get("zset-max-listpack-entries", 128)
    hash_limit = memory.limits.get("hash-max-listpack-entries", 512)
    section = (
        f"Redis memory: {memory.views:,} happening views over {memory.videos:,} videos, filled "
        f"through `RedisLiveStore.ingest` in {memory.fill_seconds:.0f} s; used_memory "
        f"{memory.used_before / 2**20:,.1f} -> {memory.used_after / 2**20:,.1f} MiB, "
        f"**{memory.per_view:.0f} B per view**; {memory.keys:,} keys. A last-seen zset stays a "
        f"listpack up to {zset_limit} views (`zset-max-listpack-entries`), a state hash up to "
        f"{hash_limit} (`hash-max-listpack-entries`): with {memory.sub_keys:,} sub-partitions "
        f"the zsets turn into skiplists past ~{memory.sub_keys * zset_limit:,} views.\n\n" + table
    )
    encodings = "; ".join(
        f"{k.name.split(' (')[0]} {'/'.join(sorted(k.encodings))}" for k in memory.kinds
    )
    metric = Metric(
        f"Redis memory per happening view, {memory.views:,} views / {memory.videos:,} videos",
        f"≤ {TARGET_BYTES_PER_VIEW} B",
        f"{memory.per_view:.0f} B (used_memory Δ); encodings: {encodings}",
        memory.per_view <= TARGET_BYTES_PER_VIEW,
    )
    return section, [metric]


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


def _fresh_row(label: str, values: list[float]) -> tuple[str, ...]:
    finite = [v for v in values if v != float("inf")]
    return (
        label,
        str(len(values)),
        f"{percentile(values, 0.5) * 1000:.0f}",
        f"{percentile(values, 0.99) * 1000:.0f}",
        f"{max(values) * 1000:.0f}",
        f"{statistics.fmean(finite) * 1000:.0f}" if finite else "inf",
    )


def _freshness_part(starts: list[float], ends: list[float], cache: float) -> Part:
    both = starts + ends
    p99 = percentile(both, 0.99)
    section = (
        f"Freshness across nodes: POST to node A, poll node B's /counts every "
        f"{POLL_INTERVAL * 1000:.0f} ms. B keeps each answer {cache:g} s (`snapshot_interval`); "
        "it is warm (read just before), and the POST falls at a random moment of its life; "
        f"{CONCURRENCY} samples at a time.\n\n"
        + markdown_table(
            ("POST to A", "samples", "p50 ms", "p99 ms", "max ms", "mean ms"),
            [
                _fresh_row("viewstart -> B shows views 1", starts),
                _fresh_row("viewend -> B shows views 0", ends),
                _fresh_row("all", both),
            ],
        )
    )
    metric = Metric(
        "freshness across nodes: POST on node A -> node B's /counts, p99",
        f"≤ {TARGET_FRESH_P99 * 1000:.0f} ms",
        f"{p99 * 1000:.0f} ms (p50 {percentile(both, 0.5) * 1000:.0f} ms, {len(both)} samples; "
        f"B keeps answers {cache:g} s)",
        p99 <= TARGET_FRESH_P99,
    )
    return section, [metric]


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
            with _paused(node_c), _on_cpu(WRK_CPU):
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
