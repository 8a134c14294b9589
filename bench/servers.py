"""Server processes for the benchmarks: ports, pinned start-up, stopping, CPU accounting.

Every benchmark starts the server under test the same way: pinned to CPU 0 (``taskset -c 0``) in
its own process group, bound to 127.0.0.1 on a port checked to be free, waited for with a bounded
deadline, and stopped through that process group; the group's CPU time is what the load runs read
to tell whether the server owned its core. This module holds that machinery and the paths and
error type every other bench module shares, so nothing here knows about wrk or the report.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BENCH_DIR",
    "HOST",
    "RESULTS_DIR",
    "SERVER_CPU",
    "BenchError",
    "ServerProcess",
    "free_port",
    "group_cpu_seconds",
    "on_cpu",
    "port_is_free",
    "start_server",
]

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"
SERVER_CPU = "0"


class BenchError(RuntimeError):
    """A benchmark could not be run (missing tool, busy port, server that never answered)."""


# -- ports ---------------------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.2)
        # Something may listen on the wildcard address only; a connect would reach it.
        return probe.connect_ex((HOST, port)) != 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


# -- servers ---------------------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _group_members(pgid: int) -> list[tuple[int, float]]:
    """(pid, cpu seconds) of every live process in the process group ``pgid``."""
    members: list[tuple[int, float]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rfind(")") + 2 :].split()
        # fields[0] is the state (field 3 of proc(5)); pgrp is field 5, utime/stime 14/15.
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append((int(entry.name), (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS))
    return members


def group_cpu_seconds(pgid: int) -> float:
    """CPU time used so far by the live processes of the process group ``pgid``."""
    return sum(cpu for _, cpu in _group_members(pgid))


def _vm_rss(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass
class ServerProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str = "/") -> str:
        return f"http://{HOST}:{self.port}{path}"

    def cpu_seconds(self) -> float:
        """CPU time used so far by the server's process group (it and anything it started)."""
        return group_cpu_seconds(self.pid)

    def rss_bytes(self) -> int:
        """Resident memory of the server's process group: the sum of its members' ``VmRSS``."""
        return sum(_vm_rss(pid) for pid, _ in _group_members(self.pid))

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def _answers(port: int, path: str) -> bool:
    connection = http.client.HTTPConnection(HOST, port, timeout=1.0)
    try:
        connection.request("GET", path)
        connection.getresponse().read()
        return True
    except OSError:
        return False
    finally:
        connection.close()


def _stop(server: ServerProcess, timeout: float = 10.0) -> None:
    pgid = server.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    try:
        server.process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
        server.process.wait(timeout=timeout)
    # Workers of the group may outlive their parent for a moment; give them a bounded grace.
    deadline = time.monotonic() + timeout
    while _group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid, _ in _group_members(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@contextlib.contextmanager
def start_server(
    name: str,
    argv: Sequence[str],
    port: int,
    *,
    env: Mapping[str, str] | None = None,
    ready_path: str = "/",
    cpu: str = SERVER_CPU,
    timeout: float = 30.0,
    cwd: Path | None = None,
) -> Iterator[ServerProcess]:
    """Start ``argv`` pinned to ``cpu`` in its own process group; yield once it answers HTTP."""
    if not port_is_free(port):
        raise BenchError(f"port {port} on {HOST} is already in use; refusing to measure it")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    log_path = RESULTS_DIR / f"server-{name}.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            ["taskset", "-c", cpu, *argv],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,
        )
    server = ServerProcess(name, port, process, log_path)
    try:
        deadline = time.monotonic() + timeout
        while not _answers(port, ready_path):
            if process.poll() is not None:
                raise BenchError(f"{name} exited with {process.returncode}:\n{server.log_tail()}")
            if time.monotonic() > deadline:
                raise BenchError(f"{name} did not answer within {timeout:.0f} s")
            time.sleep(0.1)
        yield server
    finally:
        _stop(server)


@contextlib.contextmanager
def on_cpu(cpu: str) -> Iterator[None]:
    """Run this process (the load generator's side) on ``cpu`` for the block."""
    previous = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {int(cpu)})
    try:
        yield
    finally:
        os.sched_setaffinity(0, previous)
