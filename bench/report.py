"""Results: ratios between measurements, verdict rows, and the Markdown tables.

A benchmark turns its measured series into a :class:`Report`: PASS/FAIL/info rows for the final
table plus its own detail table. Comparing two series (by throughput, or by server CPU per
request when the core was shared) and rendering rows is presentation, not measurement, so it
lives here apart from the server and wrk machinery it reads from.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bench.wrk import Series

__all__ = [
    "SERIES_HEADERS",
    "Metric",
    "Ratio",
    "Report",
    "compare",
    "markdown_table",
    "metrics_table",
    "series_row",
]


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
