"""Redis servers for the ``redis`` benchmark: ``redis-server`` processes of its own.

A standalone server (``--save "" --appendonly no``, 127.0.0.1, a port checked to be free) or a
cluster of masters without replicas (``redis-cli --cluster create``), each process pinned to a
core with ``taskset`` in its own process group, waited for with bounded polls and stopped by
its process group id, like every other benchmark server (:mod:`bench.servers`). The bench does
not import the test suite's helpers (``tests/redis_servers.py``): this is the little it needs.

The statistics the benchmark reads come from ``INFO`` through a synchronous redis-py client:
CPU (``used_cpu_sys`` + ``used_cpu_user``), ``commandstats``, ``total_reads_processed`` and
``used_memory``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from bench.servers import HOST, RESULTS_DIR, BenchError, free_port, port_is_free

__all__ = [
    "CLUSTER_SLOTS",
    "RedisProcess",
    "RedisStats",
    "require_redis",
    "slot_owners",
    "start_cluster",
    "start_redis",
]

CLUSTER_SLOTS = 16384
BUS_PORT_OFFSET = 10000
START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
CLUSTER_TIMEOUT = 60.0
# Commands the bench itself sends (polling, statistics, set-up): not the store's work.
INFRASTRUCTURE = ("info", "ping", "config", "cluster", "command", "client", "script", "memory")


def require_redis() -> tuple[str, str, str]:
    """Paths of redis-server, redis-cli and redis-benchmark, or BenchError saying how to get
    them (Debian's ``redis-server`` package brings all three)."""
    paths = tuple(shutil.which(name) for name in ("redis-server", "redis-cli", "redis-benchmark"))
    if None in paths:
        raise BenchError(
            "redis-server, redis-cli and redis-benchmark are needed. On Debian/Ubuntu: "
            "`sudo apt-get install -y redis-server` (macOS: `brew install redis`)."
        )
    server, cli, benchmark = (str(p) for p in paths)
    return server, cli, benchmark


@dataclass(frozen=True)
class RedisStats:
    """One look at a server's counters (``INFO``), to subtract from a later one."""

    cpu: float  # used_cpu_sys + used_cpu_user, seconds
    reads: int  # total_reads_processed: reads from client sockets
    commands: Mapping[str, tuple[int, int]] = field(default_factory=dict)  # name -> calls, usec

    def __sub__(self, earlier: RedisStats) -> RedisStats:
        names = set(self.commands) | set(earlier.commands)
        commands = {}
        for name in names:
            calls, usec = self.commands.get(name, (0, 0))
            calls0, usec0 = earlier.commands.get(name, (0, 0))
            if calls - calls0:
                commands[name] = (calls - calls0, usec - usec0)
        return RedisStats(self.cpu - earlier.cpu, self.reads - earlier.reads, commands)

    def __add__(self, other: RedisStats) -> RedisStats:
        """Two servers' counters as one's."""
        commands = dict(self.commands)
        for name, (calls, usec) in other.commands.items():
            calls0, usec0 = commands.get(name, (0, 0))
            commands[name] = (calls0 + calls, usec0 + usec)
        return RedisStats(self.cpu + other.cpu, self.reads + other.reads, commands)

    def calls(self, name: str) -> int:
        return self.commands.get(name, (0, 0))[0]

    @property
    def work(self) -> tuple[int, int]:
        """(calls, usec) of every command but the bench's own (:data:`INFRASTRUCTURE`)."""
        kept = [
            value
            for name, value in self.commands.items()
            if name.split("|", 1)[0] not in INFRASTRUCTURE
        ]
        return sum(c for c, _ in kept), sum(u for _, u in kept)


@dataclass
class RedisProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    directory: Path
    log_path: Path
    _client: Any = None

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def client(self) -> Any:
        """A synchronous redis-py client (for statistics and set-up, not for the measured load)."""
        if self._client is None:
            self._client = redis.Redis(host=HOST, port=self.port, socket_timeout=30)
        return self._client

    def info(self, section: str) -> dict[str, Any]:
        result: dict[str, Any] = self.client.info(section)
        return result

    def stats(self) -> RedisStats:
        cpu = self.info("cpu")
        reads = int(self.info("stats")["total_reads_processed"])
        commands = {
            name.removeprefix("cmdstat_"): (int(value["calls"]), int(value["usec"]))
            for name, value in self.info("commandstats").items()
        }
        return RedisStats(float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]), reads, commands)

    def used_memory(self) -> int:
        return int(self.info("memory")["used_memory"])

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def close_client(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _free_port_with_bus(avoid: Sequence[int]) -> int:
    """A free port whose cluster bus port (``port + 10000``) is free too."""
    for _ in range(200):
        port = free_port()
        bus = port + BUS_PORT_OFFSET
        if port in avoid or bus > 65535 or not port_is_free(bus):
            continue
        return port
    raise BenchError("found no free port with a free cluster bus port in 200 tries")


def _stop(server: RedisProcess) -> None:
    server.close_client()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=STOP_TIMEOUT)


def _wait_answers(server: RedisProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if server.process.poll() is not None:
            raise BenchError(
                f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            if server.client.ping():
                return
        except (redis.RedisError, OSError):
            server.close_client()
        if time.monotonic() > deadline:
            raise BenchError(f"{server.name} did not answer PING within {START_TIMEOUT:.0f} s")
        time.sleep(0.05)


@contextlib.contextmanager
def start_redis(
    name: str,
    directory: Path,
    *,
    cpu: str,
    port: int | None = None,
    extra_args: Sequence[str] = (),
) -> Iterator[RedisProcess]:
    """One ``redis-server`` pinned to ``cpu``, no persistence; yields once it answers PING."""
    server_path, _, _ = require_redis()
    port = port if port is not None else free_port()
    if not port_is_free(port):
        raise BenchError(f"port {port} on {HOST} is already in use; refusing to measure it")
    directory.mkdir(parents=True, exist_ok=True)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS_DIR / f"server-{name}.log"
    argv = [
        "taskset",
        "-c",
        cpu,
        server_path,
        "--bind",
        HOST,
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(directory),
        *extra_args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = RedisProcess(name, port, process, directory, log_path)
    try:
        _wait_answers(server)
        yield server
    finally:
        _stop(server)


def _cluster_problem(masters: Sequence[RedisProcess]) -> str | None:
    for server in masters:
        try:
            info = server.client.cluster("info")
        except (redis.RedisError, OSError) as exc:
            return f"{server.name}: {exc}"
        if info.get("cluster_state") != "ok":
            return f"{server.name}: cluster_state {info.get('cluster_state')}"
        if int(info.get("cluster_slots_assigned", 0)) != CLUSTER_SLOTS:
            return f"{server.name}: {info.get('cluster_slots_assigned')} slots assigned"
        if int(info.get("cluster_known_nodes", 0)) != len(masters):
            return f"{server.name}: knows {info.get('cluster_known_nodes')} nodes"
    return None


@contextlib.contextmanager
def start_cluster(directory: Path, *, masters: int, cpu: str) -> Iterator[list[RedisProcess]]:
    """``masters`` cluster-mode servers pinned to ``cpu``, joined by ``redis-cli --cluster
    create`` with no replicas; yields once every node reports the cluster ``ok``."""
    _, cli_path, _ = require_redis()
    with contextlib.ExitStack() as stack:
        servers: list[RedisProcess] = []
        for index in range(masters):
            port = _free_port_with_bus([s.port for s in servers])
            servers.append(
                stack.enter_context(
                    start_redis(
                        f"redis-cluster-{index}",
                        directory / f"node-{index}",
                        cpu=cpu,
                        port=port,
                        extra_args=(
                            "--cluster-enabled",
                            "yes",
                            "--cluster-config-file",
                            "nodes.conf",
                            "--cluster-node-timeout",
                            "5000",
                        ),
                    )
                )
            )
        done = subprocess.run(
            [
                cli_path,
                "--cluster",
                "create",
                *(f"{HOST}:{s.port}" for s in servers),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=CLUSTER_TIMEOUT,
            check=False,
        )
        if done.returncode != 0 or "[ERR]" in done.stdout:
            raise BenchError(f"redis-cli --cluster create failed:\n{done.stdout}{done.stderr}")
        deadline = time.monotonic() + CLUSTER_TIMEOUT
        while (problem := _cluster_problem(servers)) is not None:
            if time.monotonic() > deadline:
                raise BenchError(f"no settled cluster in {CLUSTER_TIMEOUT:.0f} s: {problem}")
            time.sleep(0.1)
        yield servers


def slot_owners(servers: Sequence[RedisProcess]) -> list[int]:
    """For each hash slot, the index in ``servers`` of the master that serves it."""
    by_port = {s.port: i for i, s in enumerate(servers)}
    owners = [-1] * CLUSTER_SLOTS
    for start, stop, master, *_ in servers[0].client.execute_command("CLUSTER", "SLOTS"):
        port = int(master[1])
        for slot in range(int(start), int(stop) + 1):
            owners[slot] = by_port[port]
    return owners
