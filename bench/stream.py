"""Stream: idle ``GET /counts/stream`` subscribers held by one server process (issue "Stream").

Three numbers, each against ``headcount serve`` (memory live store, default settings, CPU 0) and
against the floor, a bare uvloop SSE server (``python -m bench.bare --stream``) holding the same
number of streams, in turn (bare 1, headcount 1, bare 2, ...), a fresh server every run:

- **subscribers held**: streams opened (at a bounded rate, by :mod:`bench.stream_client`
  processes on CPU 1, from several loopback source addresses) that answered ``200
  text/event-stream`` with a first event and stayed open to the end;
- **memory per subscriber**: the server process group's RSS (``VmRSS``) once every stream is
  open, less its RSS before the first one (after a warm-up stream), ÷ subscribers;
- **fan-out time**: :data:`CHANGES` changes of the counter (a mux-embed ``viewstart`` batch
  POSTed to the collector, views 0 → 1, then that view's ``viewend``, 1 → 0, ...), each timed
  from the moment the collector's answer was read to the arrival of the event carrying the new
  count, on every subscriber; p50/p99 over all subscribers x changes.

A process cannot hold more sockets than its ``RLIMIT_NOFILE`` allows: the bench raises the soft
limit to the hard one (for the servers and clients it starts, too) and, when the hard limit is
below the requested count plus :data:`FD_MARGIN`, measures at the largest count it allows and
says so in the report.
"""

from __future__ import annotations

import asyncio
import math
import random
import resource
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.freshness import percentile
from bench.report import Metric, Report, markdown_table

__all__ = [
    "CHANGES",
    "FD_MARGIN",
    "Change",
    "FdPlan",
    "StreamOptions",
    "fanout_latencies",
    "per_client_cap",
    "plan_fds",
    "quantile",
    "raise_fd_limit",
    "report",
    "run",
    "source_addresses",
    "split_clients",
    "summarize",
]

TARGET_SUBSCRIBERS = 50_000
TARGET_BYTES = 10 * 1024
TARGET_FANOUT = 1.0
FD_MARGIN = 256  # descriptors a process keeps for itself: listener, logs, pipes, the database
PER_CLIENT = 10_000
CHANGES = 5


@dataclass(frozen=True)
class StreamOptions:
    subscribers: int = TARGET_SUBSCRIBERS
    changes: int = CHANGES
    runs: int = 3
    per_client: int = PER_CLIENT
    rate: float = 2000.0  # connections opened per second, per client process


@dataclass(frozen=True)
class FdPlan:
    """How many subscribers one server process can be asked to hold here, and why not more."""

    wanted: int
    soft: int  # the soft RLIMIT_NOFILE before the bench raised it
    hard: int
    subscribers: int

    @property
    def clamped(self) -> bool:
        return self.subscribers < self.wanted

    def reason(self) -> str:
        if not self.clamped:
            return (
                f"RLIMIT_NOFILE {self.hard:,} allows {self.wanted:,} subscribers "
                f"plus {FD_MARGIN} descriptors of the server's own"
            )
        return (
            f"{self.wanted:,} subscribers cannot be measured on this machine: the hard "
            f"RLIMIT_NOFILE is {self.hard:,} descriptors per process (raising it needs "
            f"CAP_SYS_RESOURCE), so one server process holds at most {self.subscribers:,} "
            f"({self.hard:,} less {FD_MARGIN} of its own); measured at {self.subscribers:,}"
        )


def plan_fds(wanted: int, soft: int, hard: int, margin: int = FD_MARGIN) -> FdPlan:
    """``wanted`` clamped to what a process with a hard limit of ``hard`` descriptors holds."""
    if hard == resource.RLIM_INFINITY:
        return FdPlan(wanted, soft, hard, wanted)
    return FdPlan(wanted, soft, hard, max(0, min(wanted, hard - margin)))


def per_client_cap(plan: FdPlan, per_client: int) -> int:
    """Connections one client process may hold: its own descriptors count against the limit
    as the server's do."""
    if plan.hard == resource.RLIM_INFINITY:
        return per_client
    return max(1, min(per_client, plan.hard - FD_MARGIN))


def raise_fd_limit() -> tuple[int, int]:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit (children inherit it);
    returns (soft before, hard)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return soft, hard


def split_clients(count: int, per_client: int) -> list[int]:
    """``count`` connections over as few client processes of ≤ ``per_client`` as possible,
    shared out evenly."""
    if count <= 0:
        return []
    processes = -(-count // max(1, per_client))
    return [count // processes + (i < count % processes) for i in range(processes)]


def ephemeral_ports() -> int:
    """How many ephemeral ports one source address offers (``ip_local_port_range``)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return 28_232
    return int(high) - int(low) + 1


def source_addresses(first: int, count: int) -> list[str]:
    """``count`` loopback addresses from the ``first``-th on: 127.0.0.2, 127.0.0.3, ...
    (127.0.0.1 is the server's; all of 127.0.0.0/8 reaches the loopback device)."""
    return [f"127.0.{n // 250}.{2 + n % 250}" for n in range(first, first + count)]


@dataclass(frozen=True)
class Change:
    """One POST that changed the counter to ``views``: sent and acknowledged (monotonic s)."""

    views: int
    sent: float
    acked: float


def fanout_latencies(
    events: Sequence[Sequence[Sequence[float]]], changes: Sequence[Change]
) -> list[list[float]]:
    """Per change, per subscriber: seconds from the change's acknowledgement to the first
    event at or after its POST carrying its ``views`` (``inf``: it never came).

    ``events`` holds each subscriber's ``(arrival, views)`` pairs in arrival order; only
    subscribers that read a first event count."""
    held = [list(series) for series in events if series]
    out: list[list[float]] = []
    for change in changes:
        latencies: list[float] = []
        for series in held:
            arrival = next((t for t, v in series if t >= change.sent and v == change.views), None)
            latencies.append(math.inf if arrival is None else arrival - change.acked)
        out.append(latencies)
    return out


def quantile(values: Sequence[float], fraction: float) -> float:
    """:func:`bench.freshness.percentile`, with ``inf`` (never reached) when the rank falls on a
    subscriber that the change never reached."""
    ordered = sorted(values)
    if ordered[math.ceil((len(ordered) - 1) * fraction)] == math.inf:
        return math.inf
    return percentile(ordered, fraction)


@dataclass(frozen=True)
class Summary:
    """One run's fan-out, over every subscriber x change."""

    samples: int
    p50: float
    p99: float
    max: float
    within_target: float  # fraction of samples within TARGET_FANOUT

    def as_dict(self) -> dict[str, float]:
        return {**self.__dict__}


def summarize(latencies: Sequence[Sequence[float]]) -> Summary:
    flat = [value for change in latencies for value in change]
    if not flat:
        return Summary(0, math.inf, math.inf, math.inf, 0.0)
    return Summary(
        len(flat),
        quantile(flat, 0.5),
        quantile(flat, 0.99),
        max(flat),
        sum(value <= TARGET_FANOUT for value in flat) / len(flat),
    )


def _ms(seconds: float) -> str:
    return "never" if seconds == math.inf else f"{seconds * 1000:.0f}"


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else math.nan


def _kib(value: float) -> str:
    return f"{value / 1024:.2f}"


def report(plan: FdPlan, results: Sequence[dict[str, Any]]) -> Report:
    """The verdict rows and the detail tables of :func:`bench.stream_run.measure_all`'s runs."""
    kinds = {k: [r for r in results if r["kind"] == k] for k in ("bare", "headcount")}

    def med(kind: str, key: str) -> float:
        return _median([r[key] for r in kinds[kind]])

    def fan(kind: str, key: str) -> float:
        return _median([r["fanout"][key] for r in kinds[kind]])

    labels = {"bare": "bare uvloop SSE server (floor)", "headcount": "headcount serve"}
    rows = [
        [
            labels[kind],
            f"{min(r['held'] for r in runs):,} of {plan.subscribers:,}",
            f"{med(kind, 'connect_s'):.1f}",
            f"{med(kind, 'rss_before') / 2**20:.1f}",
            _kib(med(kind, "bytes_per_subscriber")),
            ", ".join(_kib(r["bytes_per_subscriber"]) for r in runs),
            _ms(fan(kind, "p50")),
            _ms(fan(kind, "p99")),
            _ms(fan(kind, "max")),
            f"{fan(kind, 'within_target') * 100:.2f} %",
            f"{med(kind, 'cpu_us_per_frame'):.1f}",
            f"{med(kind, 'client_cpu_us_per_frame'):.1f}",
            f"{med(kind, 'kernel_tcp_bytes_per_subscriber'):.0f}",
            ", ".join(f"{r['others_cores']:.2f}" for r in runs),
        ]
        for kind, runs in kinds.items()
        if runs
    ]
    changes = max(len(r["per_change"]) for r in results)
    per_change = [
        [f"{k + 1}: views -> {results[0]['per_change'][k]['views']}"]
        + [
            _ms(_median([r["per_change"][k][key] for r in kinds[kind]]))
            for kind in kinds
            for key in ("p50", "p99")
        ]
        for k in range(changes)
    ]
    held = min((r["held"] for r in kinds["headcount"]), default=0)
    kept = min((r["open_at_end"] for r in kinds["headcount"]), default=0)
    all_held = held == kept == plan.subscribers
    why = plan.reason() if plan.clamped else ""
    if not why and plan.subscribers < TARGET_SUBSCRIBERS:
        why = f"--subscribers {plan.subscribers:,} asked for fewer"
    memory, floor = med("headcount", "bytes_per_subscriber"), med("bare", "bytes_per_subscriber")
    p50, p99 = fan("headcount", "p50"), fan("headcount", "p99")
    floor_p50, floor_p99 = fan("bare", "p50"), fan("bare", "p99")
    within = fan("headcount", "within_target")
    cpu, floor_cpu = med("headcount", "cpu_us_per_frame"), med("bare", "cpu_us_per_frame")
    metrics = (
        Metric(
            "stream: subscribers held by one headcount serve process",
            f"≥ {TARGET_SUBSCRIBERS:,}",
            f"{held:,} of {plan.subscribers:,} opened held, {kept:,} still open at the end"
            + (f"; NOT MEASURED at {TARGET_SUBSCRIBERS:,}: {why}" if why else ""),
            False if not all_held else (None if why else True),
        ),
        Metric(
            f"stream: server memory per subscriber (RSS Δ ÷ {held:,} subscribers)",
            f"≤ {TARGET_BYTES // 1024} KiB",
            f"{_kib(memory)} KiB (the bare floor {_kib(floor)} KiB)",
            memory <= TARGET_BYTES,
        ),
        Metric(
            "stream: one change reaches every subscriber (from the collector's answer), p99",
            f"≤ {TARGET_FANOUT * 1000:.0f} ms",
            f"{_ms(p99)} ms (p50 {_ms(p50)} ms, {within * 100:.2f} % within "
            f"{TARGET_FANOUT * 1000:.0f} ms; {held:,} subscribers x {changes} changes)",
            p99 <= TARGET_FANOUT,
        ),
        Metric(
            "stream: headcount ÷ bare uvloop SSE floor (same run)",
            "",
            f"memory per subscriber {memory / floor:.2f}x; fan-out p50 {_ratio(p50, floor_p50)}, "
            f"p99 {_ratio(p99, floor_p99)} ({_ms(floor_p50)} / {_ms(floor_p99)} ms)",
            None,
        ),
        Metric(
            f"stream: server CPU per frame sent x {TARGET_SUBSCRIBERS:,} (one core's least "
            f"time to send one change to {TARGET_SUBSCRIBERS:,})",
            "",
            f"headcount {_ms(cpu * TARGET_SUBSCRIBERS / 1e6)} ms, the bare floor "
            f"{_ms(floor_cpu * TARGET_SUBSCRIBERS / 1e6)} ms ({cpu:.1f} / {floor_cpu:.1f} µs per "
            "frame)",
            None,
        ),
    )
    retry = all(r["retry_3000"] == r["held"] for r in results)
    layout = results[0]["clients"]
    details = (
        f"{plan.reason()}. Soft RLIMIT_NOFILE raised from {plan.soft:,} to {plan.hard:,} for "
        "the servers and the clients. "
        f"{len(layout)} client processes ({', '.join(map(str, layout))} connections) on CPU 1, "
        "the server on CPU 0, a fresh server per run, bare and "
        "headcount in turn; medians of the runs. Kernel TCP memory (both ends of every socket, "
        "`/proc/net/sockstat`) is not in the server's RSS and is shown apart. CPU per frame: "
        "over the changes, ÷ the events and keep-alive comments the clients read meanwhile. "
        "Other "
        "processes' cores: the machine's CPU time over the changes less the server's, the "
        "clients' and the bench's (above 0.1 the machine was shared). "
        + (
            "Every stream began with `retry: 3000`."
            if retry
            else "NOT every stream sent `retry: 3000`."
        )
        + "\n\n"
        + markdown_table(
            (
                "server",
                "subscribers held (fewest of the runs)",
                "connect s",
                "RSS before MiB",
                "RSS Δ KiB/subscriber",
                "runs",
                "fan-out p50 ms",
                "p99 ms",
                "max ms",
                "within 1 s",
                "server CPU µs per frame sent",
                "clients' CPU µs per frame read",
                "kernel TCP B/subscriber",
                "other processes, cores",
            ),
            rows,
        )
        + "\n\nPer change (medians of the runs, ms from the collector's answer):\n\n"
        + markdown_table(
            ("change", "bare p50", "bare p99", "headcount p50", "headcount p99"), per_change
        )
    )
    raw = {"plan": plan.__dict__, "runs": list(results)}
    return Report("stream", metrics, details, raw)


def _ratio(value: float, floor: float) -> str:
    if value == math.inf:
        return "never"
    return f"{value / floor:.1f}x" if floor > 0 else "n/a"


def run(options: StreamOptions) -> Report:
    from bench.stream_run import measure_all

    return report(*asyncio.run(measure_all(options, random.Random(9))))
