"""Shared machinery: pinned servers, wrk runs, medians and Markdown tables.

The method (from ``docs/benchmarks.md``): the server under test runs on CPU 0 (``taskset -c 0``),
wrk on CPU 1 (``taskset -c 1 wrk -t1 -c64 --latency``); one warm-up run is thrown away, then at
least three runs are kept and the table shows their median. Everything binds 127.0.0.1, every
wait is bounded, and servers are stopped through the process group they were started in.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BENCH_DIR",
    "FULL_CORE",
    "LUA_DIR",
    "RESULTS_DIR",
    "SERIES_HEADERS",
    "SERVER_CPU",
    "WRK_CPU",
    "BenchError",
    "Method",
    "Metric",
    "Ratio",
    "Report",
    "Series",
    "ServerProcess",
    "Target",
    "WrkRun",
    "compare",
    "free_port",
    "markdown_table",
    "measure_interleaved",
    "metrics_table",
    "parse_wrk",
    "port_is_free",
    "require_wrk",
    "run_wrk",
    "series_row",
    "start_server",
]

BENCH_DIR = Path(__file__).resolve().parent
LUA_DIR = BENCH_DIR / "lua"
RESULTS_DIR = BENCH_DIR / "results"
HOST = "127.0.0.1"
SERVER_CPU = "0"
WRK_CPU = "1"
# A server that used less of its core than this during a run had to share it.
FULL_CORE = 0.85
# wrk above this share of its core may be what limits the rate.
WRK_SATURATED = 0.95


class BenchError(RuntimeError):
    """A benchmark could not be run (missing tool, busy port, server that never answered)."""


@dataclass(frozen=True)
class Method:
    """How long and how often every HTTP measurement runs."""

    duration: int = 10
    warmup: int = 3
    runs: int = 3
    connections: int = 64


# -- ports and tools -------------------------------------------------------------------------


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


def require_wrk() -> str:
    path = shutil.which("wrk")
    if path is None:
        raise BenchError(
            "wrk is not installed. On Debian/Ubuntu: `sudo apt-get install -y wrk` "
            "(macOS: `brew install wrk`), then run the benchmark again."
        )
    if shutil.which("taskset") is None:
        raise BenchError("taskset is missing (Debian package util-linux); it pins the processes.")
    if (os.cpu_count() or 1) < 2:
        raise BenchError("the benchmarks need two cores: the server on one, wrk on the other.")
    return path


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
        """CPU time used so far by the server and the workers it spawned (granian forks)."""
        return sum(cpu for _, cpu in _group_members(self.pid))

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


# -- wrk -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkRun:
    requests: int
    seconds: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: int = 0
    # ``bench key=value`` lines printed by a Lua script's done() (e.g. tokens used).
    script: Mapping[str, str] = field(default_factory=dict)
    wrk_cores: float = 0.0
    server_cores: float = 0.0

    @property
    def clean(self) -> bool:
        return self.non_2xx == 0 and self.socket_errors == 0 and self.requests > 0

    @property
    def cpu_us_per_request(self) -> float:
        """Server CPU time per answered request: unlike req/s, it does not drop when another
        process takes part of the server core."""
        return self.server_cores / self.requests_per_s * 1e6 if self.requests_per_s else 0.0


_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_LATENCY = re.compile(r"^\s*(50|99)(?:\.0+)?%\s+([\d.]+)(us|ms|s|m|h)\s*$", re.MULTILINE)
_TOTAL = re.compile(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h)", re.MULTILINE)
_RATE = re.compile(r"^Requests/sec:\s+([\d.]+)", re.MULTILINE)
_NON_2XX = re.compile(r"Non-2xx or 3xx responses:\s+(\d+)")
_SOCKET = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_SCRIPT = re.compile(r"^bench (.*)$", re.MULTILINE)


def parse_wrk(text: str) -> WrkRun:
    """Read req/s, p50/p99 (ms), errors and script lines from ``wrk --latency`` output."""
    rate = _RATE.search(text)
    total = _TOTAL.search(text)
    if rate is None or total is None:
        raise BenchError(f"unexpected wrk output:\n{text}")
    latency = {
        m.group(1): float(m.group(2)) * _UNITS_MS[m.group(3)] for m in _LATENCY.finditer(text)
    }
    if set(latency) != {"50", "99"}:
        raise BenchError(f"wrk output has no latency distribution (was --latency given?):\n{text}")
    non_2xx = _NON_2XX.search(text)
    sockets = _SOCKET.search(text)
    script: dict[str, str] = {}
    for line in _SCRIPT.finditer(text):
        for pair in line.group(1).split():
            key, _, value = pair.partition("=")
            script[key] = value
    return WrkRun(
        requests=int(total.group(1)),
        seconds=float(total.group(2)) * _UNITS_MS[total.group(3)] / 1000.0,
        requests_per_s=float(rate.group(1)),
        p50_ms=latency["50"],
        p99_ms=latency["99"],
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        script=script,
    )


def run_wrk(
    url: str,
    *,
    duration: float,
    connections: int = 64,
    script: Path | None = None,
    script_args: Sequence[str] = (),
    server: ServerProcess | None = None,
) -> WrkRun:
    """One pinned wrk run; also records how many cores wrk and the server used meanwhile."""
    argv = ["taskset", "-c", WRK_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    argv += ["--latency", "--timeout", "5s"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server.cpu_seconds() if server else 0.0
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    elapsed = time.monotonic() - started
    server_after = server.cpu_seconds() if server else 0.0
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {done.stderr.strip()}")
    run = parse_wrk(done.stdout)
    wrk_cpu = (after_children.ru_utime - before_children.ru_utime) + (
        after_children.ru_stime - before_children.ru_stime
    )
    return WrkRun(
        **{
            **run.__dict__,
            "wrk_cores": wrk_cpu / elapsed,
            "server_cores": (server_after - server_before) / elapsed,
        }
    )


@dataclass(frozen=True)
class Series:
    """The kept runs of one measurement; the table shows medians."""

    label: str
    runs: tuple[WrkRun, ...]

    @property
    def requests_per_s(self) -> float:
        return statistics.median(r.requests_per_s for r in self.runs)

    @property
    def p50_ms(self) -> float:
        return statistics.median(r.p50_ms for r in self.runs)

    @property
    def p99_ms(self) -> float:
        return statistics.median(r.p99_ms for r in self.runs)

    @property
    def clean(self) -> bool:
        return bool(self.runs) and all(r.clean for r in self.runs)

    @property
    def server_cores(self) -> float:
        return statistics.median(r.server_cores for r in self.runs)

    @property
    def wrk_cores(self) -> float:
        return statistics.median(r.wrk_cores for r in self.runs)

    @property
    def cpu_us_per_request(self) -> float:
        return statistics.median(r.cpu_us_per_request for r in self.runs)

    @property
    def contended(self) -> bool:
        """Some kept run got less than :data:`FULL_CORE` of the server core: other processes
        shared it, so req/s understates the server."""
        return any(r.server_cores < FULL_CORE for r in self.runs)

    def problems(self) -> list[str]:
        notes = []
        for index, run in enumerate(self.runs, 1):
            if run.non_2xx:
                notes.append(f"run {index}: {run.non_2xx} non-2xx answers")
            if run.socket_errors:
                notes.append(f"run {index}: {run.socket_errors} socket errors")
        return notes

    def notes(self) -> list[str]:
        """Conditions that do not void a run but colour it."""
        notes = []
        if any(r.wrk_cores > WRK_SATURATED for r in self.runs):
            notes.append(f"{self.label}: wrk used most of its core (the rate may be wrk's limit)")
        if self.contended:
            cores = ", ".join(f"{r.server_cores:.2f}" for r in self.runs)
            notes.append(f"{self.label}: the server core was shared (server used {cores} cores)")
        return notes

    def runs_text(self) -> str:
        return ", ".join(f"{r.requests_per_s / 1000:.1f}k" for r in self.runs)


@dataclass(frozen=True)
class Target:
    """One thing to load: a running server, a path, and optionally a wrk Lua script whose
    arguments may depend on the run number (0 is the warm-up)."""

    label: str
    server: ServerProcess
    path: str
    script: Path | None = None
    script_args: Callable[[int], Sequence[str]] | None = None

    def run(self, duration: float, connections: int, number: int) -> WrkRun:
        return run_wrk(
            self.server.url(self.path),
            duration=duration,
            connections=connections,
            script=self.script,
            script_args=self.script_args(number) if self.script_args else (),
            server=self.server,
        )


def measure_interleaved(targets: Sequence[Target], method: Method) -> dict[str, Series]:
    """Warm every target up once (thrown away), then run them in turn ``method.runs`` times:
    A1 B1 A2 B2 A3 B3, so a slow minute on the shared machine hits both sides of a ratio."""
    for target in targets:
        target.run(method.warmup, method.connections, 0)
    kept: dict[str, list[WrkRun]] = {target.label: [] for target in targets}
    for number in range(1, method.runs + 1):
        for target in targets:
            kept[target.label].append(target.run(method.duration, method.connections, number))
    return {label: Series(label, tuple(runs)) for label, runs in kept.items()}


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ratio:
    """``measured`` against ``reference``, by throughput and by server CPU per request.

    The targets are throughput ratios with each server owning its core. When another process
    took part of the core during a run (``contended``), throughput says more about the neighbour
    than about the server, and the CPU ratio is the one the verdict uses: it is the throughput
    ratio the two would have on an idle core, provided both keep their core busy (64 connections
    always have a request waiting)."""

    throughput: float
    cpu: float
    contended: bool

    @property
    def decisive(self) -> float:
        return self.cpu if self.contended else self.throughput

    def text(self) -> str:
        if self.contended:
            return (
                f"{self.cpu:.2f} by CPU per request "
                f"(core shared with other processes; by req/s {self.throughput:.2f})"
            )
        return f"{self.throughput:.2f} by req/s (by CPU per request {self.cpu:.2f})"


SERIES_HEADERS = (
    "server",
    "req/s (median)",
    "runs",
    "p50 ms",
    "p99 ms",
    "server cores",
    "server CPU µs/req",
    "wrk cores",
    "ratio",
)


def series_row(series: Series, ratio: str) -> list[str]:
    """One row under :data:`SERIES_HEADERS`."""
    return [
        series.label,
        f"{series.requests_per_s:,.0f}",
        series.runs_text(),
        f"{series.p50_ms:.2f}",
        f"{series.p99_ms:.2f}",
        f"{series.server_cores:.2f}",
        f"{series.cpu_us_per_request:.1f}",
        f"{series.wrk_cores:.2f}",
        ratio,
    ]


def compare(measured: Series, reference: Series) -> Ratio:
    return Ratio(
        throughput=measured.requests_per_s / reference.requests_per_s,
        cpu=reference.cpu_us_per_request / measured.cpu_us_per_request,
        contended=measured.contended or reference.contended,
    )


@dataclass(frozen=True)
class Metric:
    """One row of the final table."""

    name: str
    target: str
    measured: str
    passed: bool | None  # None: informational, no target

    @property
    def verdict(self) -> str:
        if self.passed is None:
            return "info"
        return "PASS" if self.passed else "FAIL"


@dataclass(frozen=True)
class Report:
    """What one benchmark hands back: rows for the final table, its own detail table, and the
    raw numbers written under ``bench/results/``."""

    name: str
    metrics: tuple[Metric, ...]
    details: str
    raw: Mapping[str, object]


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    out = [line(headers), "|" + "|".join("---" for _ in headers) + "|"]
    out += [line(row) for row in rows]
    return "\n".join(out)


def metrics_table(metrics: Sequence[Metric]) -> str:
    return markdown_table(
        ("metric", "target", "measured", "result"),
        [(m.name, m.target, m.measured, m.verdict) for m in metrics],
    )
