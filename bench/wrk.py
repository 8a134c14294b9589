"""Load runs: pinned wrk invocations, their parsed results, and interleaved medians.

The method (from ``docs/benchmarks.md``): the server under test runs on CPU 0 (``taskset -c 0``),
wrk on CPU 1 (``taskset -c 1 wrk -t1 -c64 --latency``); one warm-up run is thrown away, then at
least three runs are kept and the table shows their median. This module owns everything about
driving wrk and reading what it printed (including how much of its core each side used), so the
server machinery and the report formatting stay independent of the load tool.
"""

from __future__ import annotations

import contextlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench.servers import BENCH_DIR, BenchError, ServerProcess

__all__ = [
    "FULL_CORE",
    "LUA_DIR",
    "WRK_CPU",
    "Load",
    "Method",
    "Series",
    "Target",
    "WrkRun",
    "measure_interleaved",
    "parse_wrk",
    "require_wrk",
    "run_wrk",
    "run_wrk_together",
    "wrk_argv",
]

LUA_DIR = BENCH_DIR / "lua"
WRK_CPU = "1"
# A server that used less of its core than this during a run had to share it.
FULL_CORE = 0.85
# wrk above this share of its core may be what limits the rate.
WRK_SATURATED = 0.95


@dataclass(frozen=True)
class Method:
    """How long and how often every HTTP measurement runs."""

    duration: int = 10
    warmup: int = 3
    runs: int = 3
    connections: int = 64


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


def wrk_argv(
    url: str,
    *,
    duration: float,
    connections: int = 64,
    script: Path | None = None,
    script_args: Sequence[str] = (),
) -> list[str]:
    """The command line of one pinned wrk run."""
    argv = ["taskset", "-c", WRK_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration}s"]
    argv += ["--latency", "--timeout", "5s"]
    if script is not None:
        argv += ["-s", str(script)]
    argv.append(url)
    if script_args:
        argv += ["--", *script_args]
    return argv


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
    argv = wrk_argv(
        url, duration=duration, connections=connections, script=script, script_args=script_args
    )
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_before = server.cpu_seconds() if server else 0.0
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    elapsed = time.monotonic() - started
    server_after = server.cpu_seconds() if server else 0.0
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise BenchError(f"wrk failed ({done.returncode}): {(done.stderr or done.stdout).strip()}")
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
class Load:
    """One of several wrk runs made at the same time (:func:`run_wrk_together`)."""

    server: ServerProcess
    path: str
    script: Path | None = None
    script_args: Sequence[str] = ()


def run_wrk_together(loads: Sequence[Load], *, duration: float, connections: int) -> list[WrkRun]:
    """Several pinned wrk runs at once, one per load, all on the wrk core; each result carries
    its own wrk's CPU (from ``wait4``) and its server's (that server's process group), so two
    servers sharing the server core can be told apart."""
    with contextlib.ExitStack() as stack:
        outputs = [stack.enter_context(tempfile.TemporaryFile("w+")) for _ in loads]
        servers_before = [load.server.cpu_seconds() for load in loads]
        started = time.monotonic()
        processes = [
            subprocess.Popen(
                wrk_argv(
                    load.server.url(load.path),
                    duration=duration,
                    connections=connections,
                    script=load.script,
                    script_args=load.script_args,
                ),
                stdout=output,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for load, output in zip(loads, outputs, strict=True)
        ]
        usage: dict[int, float] = {}
        ended: dict[int, float] = {}
        servers_after: dict[int, float] = {}
        deadline = started + duration + 60
        while len(usage) < len(processes):
            for index, process in enumerate(processes):
                if index in usage:
                    continue
                pid, status, rusage = os.wait4(process.pid, os.WNOHANG)
                if pid:
                    process.returncode = os.waitstatus_to_exitcode(status)
                    usage[index] = rusage.ru_utime + rusage.ru_stime
                    ended[index] = time.monotonic()
                    servers_after[index] = loads[index].server.cpu_seconds()
            if time.monotonic() > deadline:
                for process in processes:
                    if process.returncode is None:
                        process.kill()
                raise BenchError("wrk did not finish in time")
            time.sleep(0.02)
        runs = []
        for index, (process, output) in enumerate(zip(processes, outputs, strict=True)):
            output.seek(0)
            text = output.read()
            if process.returncode != 0:
                raise BenchError(f"wrk failed ({process.returncode}): {text.strip()}")
            elapsed = ended[index] - started
            run = parse_wrk(text)
            runs.append(
                WrkRun(
                    **{
                        **run.__dict__,
                        "wrk_cores": usage[index] / elapsed,
                        "server_cores": (servers_after[index] - servers_before[index]) / elapsed,
                    }
                )
            )
        return runs


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
