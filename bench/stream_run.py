"""The processes of the ``stream`` benchmark: servers, subscriber clients, changes, samples.

:func:`measure_all` makes one Headcount deployment, then for each kept run starts a fresh bare
SSE floor and then a fresh ``headcount serve`` (CPU 0), and for each: one warm-up stream read
and closed, the server's RSS, the subscriber processes (:mod:`bench.stream_client`, CPU 1) until
every connection has been tried, the RSS again, :data:`bench.stream.CHANGES` changes POSTed to
the collector (each waited for until every subscriber has it, at most :data:`CHANGE_GIVE_UP`
seconds), and every subscriber's events. The numbers are made in :mod:`bench.stream`.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.bodies import PLACEHOLDERS, fill, generate_lifecycles, split_template
from bench.deployment import Deployment, deployment, serve_headcount
from bench.freshness import sample_ids
from bench.redis_nodes import machine_cpu_seconds
from bench.servers import (
    BENCH_DIR,
    HOST,
    RESULTS_DIR,
    BenchError,
    ServerProcess,
    free_port,
    group_cpu_seconds,
    on_cpu,
    start_server,
)
from bench.sse import Dechunker, EventReader, parse_head
from bench.stream import (
    Change,
    FdPlan,
    StreamOptions,
    ephemeral_ports,
    fanout_latencies,
    per_client_cap,
    plan_fds,
    raise_fd_limit,
    source_addresses,
    split_clients,
    summarize,
)
from bench.tokens import mint_tokens
from bench.wrk import WRK_CPU

__all__ = ["CHANGE_GAP", "CHANGE_GIVE_UP", "measure_all"]

STREAM_VIDEO = "bench-video-00000"  # the one video of mint_tokens(..., videos=1)
CHANGE_GAP = 2.0  # seconds (plus up to 1 s at random) between changes: past the 1/s coalescing
CHANGE_GIVE_UP = 10.0
POLL = 0.05
SETTLE = 1.0
WARM_UP_TIMEOUT = 10.0


@dataclass
class Client:
    """One :mod:`bench.stream_client` process and its JSON-lines channel."""

    process: asyncio.subprocess.Process
    count: int

    async def read(self, timeout: float) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout)
        if not line:
            raise BenchError(f"a stream client exited ({self.process.returncode})")
        answer: dict[str, Any] = orjson.loads(line)
        return answer

    async def ask(self, command: str, timeout: float = 30.0) -> dict[str, Any]:
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return await self.read(timeout)

    async def stop(self) -> None:
        if self.process.returncode is None:
            with contextlib.suppress(OSError):
                assert self.process.stdin is not None
                self.process.stdin.write(b"quit\n")
                await self.process.stdin.drain()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def _start_clients(
    name: str, port: int, path: str, plan: list[int], first_address: int, options: StreamOptions
) -> list[Client]:
    per_address = int(ephemeral_ports() * 0.6)
    clients: list[Client] = []
    for index, count in enumerate(plan):
        addresses = source_addresses(first_address + 8 * index, max(2, -(-count // per_address)))
        argv = ["taskset", "-c", WRK_CPU, sys.executable, "-m", "bench.stream_client"]
        argv += ["--port", str(port), "--path", path, "--count", str(count)]
        argv += ["--sources", ",".join(addresses), "--rate", str(options.rate)]
        log = (RESULTS_DIR / f"client-{name}-{index + 1}.log").open("wb")
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            cwd=BENCH_DIR.parent,
            start_new_session=True,
        )
        log.close()
        clients.append(Client(process, count))
    return clients


async def _warm_up(port: int, path: str) -> None:
    """Open one stream, read its first event, close it: a server that does not stream fails
    here with what it answered."""
    reader, writer = await asyncio.open_connection(HOST, port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n".encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WARM_UP_TIMEOUT)
        status, headers = parse_head(head[:-4])
        if status != 200 or not headers.get("content-type", "").startswith("text/event-stream"):
            body = await asyncio.wait_for(reader.read(300), WARM_UP_TIMEOUT)
            raise BenchError(f"{path.split('?')[0]} answered {status}: {body[:200]!r}")
        dechunker = Dechunker() if "chunked" in headers.get("transfer-encoding", "") else None
        events = EventReader()
        deadline = time.monotonic() + WARM_UP_TIMEOUT
        while time.monotonic() < deadline:
            data = await asyncio.wait_for(reader.read(65_536), WARM_UP_TIMEOUT)
            if not data:
                raise BenchError("the stream closed before its first event")
            payload = dechunker.feed(data) if dechunker else data
            if any(event.data for event in events.feed(payload)):
                return
        raise BenchError(f"no first event within {WARM_UP_TIMEOUT:.0f} s")
    finally:
        writer.close()


def _bodies(target: Deployment, changes: int) -> list[tuple[int, bytes]]:
    """(views after, body) of each change: view k's first batch, then its viewend batch."""
    lifecycle = next(c for c in generate_lifecycles(target.env_key) if c.ending == "viewend")
    first, last = split_template(lifecycle.bodies[0]), split_template(lifecycle.bodies[-1])
    out: list[tuple[int, bytes]] = []
    for k in range(changes):
        ids = sample_ids(k // 2, "5e000000", "bench-stream")
        ids[PLACEHOLDERS["@@VIDEO@@"]] = STREAM_VIDEO
        out.append((1, fill(first, ids)) if k % 2 == 0 else (0, fill(last, ids)))
    return out


def _clients_cpu(clients: list[Client]) -> float:
    return sum(group_cpu_seconds(c.process.pid) for c in clients)


def _kernel_tcp_pages() -> int:
    for line in Path("/proc/net/sockstat").read_text().splitlines():
        if line.startswith("TCP:"):
            fields = line.split()
            return int(fields[fields.index("mem") + 1])
    return 0


async def _changes(
    server: ServerProcess,
    clients: list[Client],
    bodies: list[tuple[int, bytes]],
    held: int,
    rng: random.Random,
) -> list[Change]:
    changes: list[Change] = []
    async with httpx.AsyncClient(base_url=server.url(""), timeout=CHANGE_GIVE_UP) as http:
        for views, body in bodies:
            await asyncio.sleep(CHANGE_GAP + rng.random())
            sent = time.monotonic()
            answer = await http.post("/", content=body, headers={"Content-Type": "text/plain"})
            acked = time.monotonic()
            if answer.status_code != 200 or answer.json().get("rejected"):
                raise BenchError(f"the collector refused a change: {answer.text[:300]}")
            changes.append(Change(views, sent, acked))
            while time.monotonic() < acked + CHANGE_GIVE_UP:
                counts = await asyncio.gather(*(c.ask(f"count {views}") for c in clients))
                if sum(answer["count"] for answer in counts) >= held:
                    break
                await asyncio.sleep(POLL)
    return changes


async def _measure(
    server: ServerProcess,
    path: str,
    plan: FdPlan,
    options: StreamOptions,
    first_address: int,
    bodies: list[tuple[int, bytes]],
    rng: random.Random,
) -> dict[str, Any]:
    await _warm_up(server.port, path)
    await asyncio.sleep(SETTLE)
    rss_before, tcp_before = server.rss_bytes(), _kernel_tcp_pages()
    layout = split_clients(plan.subscribers, per_client_cap(plan, options.per_client))
    clients = await _start_clients(server.name, server.port, path, layout, first_address, options)
    try:
        bound = max(layout) / options.rate + 60.0
        ready = await asyncio.gather(*(c.read(bound) for c in clients))
        held = sum(r["ready"] for r in ready)
        await asyncio.sleep(SETTLE)
        rss_held, tcp_held = server.rss_bytes(), _kernel_tcp_pages()
        cpu_before, client_before = server.cpu_seconds(), _clients_cpu(clients)
        machine_before, own_before, start = (
            machine_cpu_seconds(),
            time.process_time(),
            time.monotonic(),
        )
        changes = await _changes(server, clients, bodies, held, rng)
        end = time.monotonic()
        cpu = server.cpu_seconds() - cpu_before
        client_cpu = _clients_cpu(clients) - client_before
        ours = cpu + client_cpu + time.process_time() - own_before
        others = max(0.0, machine_cpu_seconds() - machine_before - ours) / (end - start)
        rss_end = server.rss_bytes()
        events: list[Any] = []
        dumps: list[dict[str, Any]] = []
        with tempfile.TemporaryDirectory(prefix="headcount-stream-") as folder:
            for index, client in enumerate(clients):
                file = Path(folder) / f"client-{index}.json"
                await client.ask(f"dump {file}", timeout=60.0)
                dump = orjson.loads(file.read_bytes())
                events += dump.pop("events")
                dumps.append(dump)
    finally:
        await asyncio.gather(*(c.stop() for c in clients))
    latencies = fanout_latencies(events, changes)
    # What the server sent and the clients read meanwhile: the events, and keep-alive comments.
    frames = held * len(changes) + sum(start <= t <= end for d in dumps for t in d["keepalives"])
    failures: dict[str, int] = {}
    for item in [*ready, *dumps]:
        for why, n in item.get("failures", {}).items():
            failures[why] = failures.get(why, 0) + n
    return {
        "server": server.name,
        "tried": plan.subscribers,
        "held": held,
        "open_at_end": sum(d["open"] for d in dumps),
        "connect_s": max(r["seconds"] for r in ready),
        "clients": layout,
        "rss_before": rss_before,
        "rss_held": rss_held,
        "rss_end": rss_end,
        "bytes_per_subscriber": (rss_held - rss_before) / held if held else float("inf"),
        "kernel_tcp_bytes_per_subscriber": (tcp_held - tcp_before) * 4096 / held if held else 0,
        "server_cpu_s": cpu,
        "cpu_us_per_frame": cpu * 1e6 / frames if frames else 0.0,
        "client_cpu_us_per_frame": client_cpu * 1e6 / frames if frames else 0.0,
        "others_cores": others,
        "retry_3000": sum(d["retries"].get("3000", 0) for d in dumps),
        "fanout": summarize(latencies).as_dict(),
        "per_change": [
            summarize([c]).as_dict() | {"views": ch.views}
            for c, ch in zip(latencies, changes, strict=True)
        ],
        "keepalives_during_changes": frames - held * len(changes),
        "failures": failures,
    }


@contextlib.contextmanager
def _bare(name: str, port: int) -> Iterator[ServerProcess]:
    argv = [sys.executable, "-m", "bench.bare", "--stream", "--port", str(port)]
    with start_server(name, argv, port, cwd=BENCH_DIR.parent) as server:
        yield server


async def measure_all(
    options: StreamOptions, rng: random.Random
) -> tuple[FdPlan, list[dict[str, Any]]]:
    """Every kept run of both servers, in turn (bare first): ``(plan, results)``."""
    soft, hard = raise_fd_limit()
    plan = plan_fds(options.subscribers, soft, hard)
    if plan.subscribers <= 0:
        raise BenchError(f"RLIMIT_NOFILE {hard} leaves no room for subscribers")
    results: list[dict[str, Any]] = []
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    with deployment() as target:
        token = mint_tokens(target.private_key_pem, target.key_id, 1, videos=1)[0]
        path = f"/counts/stream?token={token}"
        bodies = _bodies(target, options.changes)
        addresses = 0
        with on_cpu(WRK_CPU):
            for index in range(options.runs):
                for kind in ("bare", "headcount"):
                    port = free_port()
                    gc.collect()
                    name = f"stream-{kind}-{index + 1}"
                    serve = (
                        _bare(name, port) if kind == "bare" else serve_headcount(target, name, port)
                    )
                    with serve as server:
                        result = await _measure(server, path, plan, options, addresses, bodies, rng)
                    results.append({"kind": kind, "run": index + 1, **result})
                    addresses += 8 * len(result["clients"])
                    print(
                        f"  {name}: held {result['held']:,}, "
                        f"{result['bytes_per_subscriber'] / 1024:.2f} KiB each, fan-out p99 "
                        f"{result['fanout']['p99'] * 1000:.0f} ms",
                        flush=True,
                    )
    return plan, results
