"""Beacon ingest: realistic 1-3 KB mux-embed batches POSTed to Headcount vs the bare ceiling.

The servers run at once on the server core and are loaded in turn (warm-up, then A1 B1 C1
A2 B2 C2 A3 B3 C3) by the same wrk script (``bench/lua/bodies.lua``) with the same bodies: view
lifecycles from :mod:`bench.bodies` whose ids wrk fills in, so every run sends views never seen
before (the run number is part of each view id). The bare server parses the JSON and answers;
Headcount decodes the abbreviated keys, checks every event, dedupes and counts. The third
server, for reading only, is the same app under stock uvicorn without the hot-path protocol
(:func:`bench.deployment.serve_plain_uvicorn`): what the hot path buys.

Before loading, one lifecycle is POSTed to each Headcount and every event must be accepted: a
body the collector rejected would be cheaper to handle and void the comparison. After loading,
their ``/metrics`` must show no rejected event.

Why not ``headcount.sim`` for the bodies: its batches are what one player sends every 10 s with
a plain ``<video>`` (a single heartbeat is ~0.4 KB, the median batch ~0.4 KB); this benchmark
asks for 1-3 KB batches, which is what an HLS player such as mux-player sends once its
``requestcompleted`` events ride along, and it needs templates wrk can fill without Python.
"""

from __future__ import annotations

import json
import re
import statistics
import sys
import urllib.request
from dataclasses import asdict

from bench.bodies import (
    PLACEHOLDERS,
    Lifecycle,
    fill,
    generate_lifecycles,
    popular_videos,
    split_template,
    write_lua_data,
)
from bench.deployment import deployment, serve_headcount, serve_plain_uvicorn
from bench.report import SERIES_HEADERS, Metric, Report, compare, markdown_table, series_row
from bench.servers import BenchError, free_port, start_server
from bench.wrk import LUA_DIR, Method, Target, measure_interleaved

__all__ = ["body_sizes", "check_accepted", "metric_values", "run"]

TARGET_RATIO = 0.4
CEILING = "bare uvloop+httptools POST (ceiling)"
COLLECTOR = "headcount POST /"
PLAIN = "headcount over plain uvicorn (ASGI way, no hot path), POST /"
LIFECYCLES = 200
REJECTED = "headcount_collector_events_rejected_total"
SAMPLE_IDS = {
    PLACEHOLDERS["@@VIEW@@"]: "00000001-0000-4000-8000-000000000001",
    PLACEHOLDERS["@@VIEWER@@"]: "00000001-0000-4000-9000-000000000000",
    PLACEHOLDERS["@@VIDEO@@"]: "bench-video-00001",
    PLACEHOLDERS["@@PLAYER@@"]: "00000001-0000-4000-a000-000000000001",
}


def body_sizes(lifecycles: list[Lifecycle]) -> list[int]:
    """Sizes of every body as wrk sends it (ids filled in: 36-character UUIDs)."""
    return [len(fill(split_template(b), SAMPLE_IDS)) for lc in lifecycles for b in lc.bodies]


def _post(url: str, body: bytes) -> dict[str, object]:
    request = urllib.request.Request(  # noqa: S310 (127.0.0.1 only)
        url, data=body, method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
        result: dict[str, object] = json.loads(answer.read())
    return result


def check_accepted(url: str, lifecycle: Lifecycle) -> None:
    ids = {**SAMPLE_IDS, PLACEHOLDERS["@@VIEW@@"]: "ffffffff-ffff-4fff-8fff-ffffffffffff"}
    for body in lifecycle.bodies:
        filled = fill(split_template(body), ids)
        events = len(json.loads(filled)["events"])
        answer = _post(url, filled)
        if answer.get("accepted") != events or answer.get("rejected"):
            raise BenchError(f"the collector did not accept a benchmark body: {answer}")


def metric_values(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310
        text = answer.read().decode()
    values: dict[str, float] = {}
    for match in re.finditer(r"^(headcount_[a-z_]+)(?:\{[^}]*\})? ([0-9.e+-]+)$", text, re.M):
        values[match.group(1)] = values.get(match.group(1), 0.0) + float(match.group(2))
    return values


def run(method: Method) -> Report:
    with deployment() as target:
        lifecycles = generate_lifecycles(target.env_key, LIFECYCLES)
        sizes = sorted(body_sizes(lifecycles))
        data = target.directory / "bodies.lua"
        write_lua_data(data, lifecycles, popular_videos())
        bare_port, plain_port, headcount_port = free_port(), free_port(), free_port()
        bare_argv = [sys.executable, "-m", "bench.bare", "--port", str(bare_port)]
        with (
            start_server("bare-post", bare_argv, bare_port) as bare,
            serve_plain_uvicorn(target, "headcount-plain-ingest", plain_port) as plain_server,
            serve_headcount(target, "headcount-ingest", headcount_port) as headcount,
        ):
            check_accepted(headcount.url("/"), lifecycles[0])
            check_accepted(plain_server.url("/"), lifecycles[0])
            before = metric_values(headcount.url("/metrics"))
            plain_before = metric_values(plain_server.url("/metrics"))

            def script_args(number: int) -> list[str]:
                return [str(data), str(number)]

            bodies = LUA_DIR / "bodies.lua"
            series = measure_interleaved(
                [
                    Target(CEILING, bare, "/", bodies, script_args),
                    Target(PLAIN, plain_server, "/", bodies, script_args),
                    Target(COLLECTOR, headcount, "/", bodies, script_args),
                ],
                method,
            )
            after = metric_values(headcount.url("/metrics"))
            plain_after = metric_values(plain_server.url("/metrics"))

    ceiling = series[CEILING]
    plain = series[PLAIN]
    collector = series[COLLECTOR]
    ratio = compare(collector, ceiling)

    def delta(name: str) -> float:
        return after.get(name, 0.0) - before.get(name, 0.0)

    accepted = delta("headcount_collector_events_accepted_total")
    duplicates = delta("headcount_collector_events_duplicate_total")
    rejected = delta(REJECTED)
    plain_rejected = plain_after.get(REJECTED, 0.0) - plain_before.get(REJECTED, 0.0)
    details = "\n\n".join(
        [
            f"Bodies: {len(sizes):,} templates from {LIFECYCLES} view lifecycles, "
            f"{sizes[0]:,}-{sizes[-1]:,} bytes (median {statistics.median(sizes):,.0f}); "
            f"Headcount accepted {accepted:,.0f} events while loaded ({duplicates:,.0f} of them "
            f"duplicates by design: the unload pair), rejected {rejected:,.0f}; "
            f"{after.get('headcount_views_happening', 0):,.0f} views happening at the end.",
            markdown_table(
                SERIES_HEADERS,
                [
                    series_row(ceiling, "1.00 (ceiling)"),
                    series_row(plain, f"{compare(plain, ceiling).decisive:.2f} x ceiling"),
                    series_row(collector, f"{ratio.decisive:.2f} x ceiling"),
                ],
            ),
        ]
    )
    notes = ceiling.notes() + plain.notes() + collector.notes()
    if notes:
        details += "\n\nNotes: " + "; ".join(notes) + "."
    problems = ceiling.problems() + plain.problems() + collector.problems()
    if rejected:
        problems.append(f"Headcount rejected {rejected:,.0f} events")
    if plain_rejected:
        problems.append(f"Headcount over plain uvicorn rejected {plain_rejected:,.0f} events")
    if problems:
        details += "\n\nProblems (these void the result): " + "; ".join(problems)
    metrics = (
        Metric(
            "ingest, 1-3 KB mux-embed batches ÷ bare POST ceiling",
            f"≥ {TARGET_RATIO:.2f}",
            f"{ratio.text()}; {collector.requests_per_s:,.0f} vs "
            f"{ceiling.requests_per_s:,.0f} req/s",
            ratio.decisive >= TARGET_RATIO and not problems,
        ),
        Metric(
            "headcount over plain uvicorn (ASGI way, no hot path), ingest ÷ bare ceiling",
            "",
            compare(plain, ceiling).text(),
            None,
        ),
        Metric(
            "ingest p50 / p99",
            "",
            f"{collector.p50_ms:.2f} / {collector.p99_ms:.2f} ms",
            None,
        ),
    )
    raw = {
        "method": asdict(method),
        "body_sizes": {"min": sizes[0], "median": statistics.median(sizes), "max": sizes[-1]},
        "bare": [asdict(r) for r in ceiling.runs],
        "plain_uvicorn": [asdict(r) for r in plain.runs],
        "headcount": [asdict(r) for r in collector.runs],
        "metrics_before": before,
        "metrics_after": after,
    }
    return Report("ingest", metrics, details, raw)
