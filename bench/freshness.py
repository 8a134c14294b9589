"""Freshness: how long after a ``viewstart`` (or ``viewend``) POST ``/counts`` shows it.

Against a live ``headcount serve`` with its default settings (server on CPU 0, this client on
CPU 1). Each sample is its own video and a brand-new view: the client POSTs the view's first
mux-embed batch (ending in ``viewstart``), then polls ``GET /counts`` for that video every
:data:`POLL_INTERVAL` until it reads 1 view; then it POSTs the view's ``viewend`` batch and
polls until it reads 0. The time of a sample runs from just before the POST is sent to the
answer that shows the change, so it includes both round trips; the poll interval bounds the
resolution. Ten samples run at a time, each bounded by :data:`GIVE_UP` seconds.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import httpx

from bench.bodies import PLACEHOLDERS, Lifecycle, fill, generate_lifecycles, split_template
from bench.deployment import deployment, serve_headcount
from bench.report import Metric, Report, markdown_table
from bench.servers import BenchError, free_port, on_cpu
from bench.tokens import mint_tokens
from bench.wrk import WRK_CPU

__all__ = ["FreshnessOptions", "percentile", "run", "sample_ids"]

POLL_INTERVAL = 0.01
GIVE_UP = 10.0
CONCURRENCY = 10
TARGET_P99 = 1.0


@dataclass(frozen=True)
class FreshnessOptions:
    samples: int = 100


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile by linear interpolation between closest ranks."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * fraction
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _ending_lifecycle(lifecycles: list[Lifecycle]) -> Lifecycle:
    for lifecycle in lifecycles:
        if lifecycle.ending == "viewend":
            return lifecycle
    raise BenchError("no lifecycle ends with a viewend")


def sample_ids(index: int, uuid_head: str, video_prefix: str) -> dict[int, str]:
    """The placeholders of one freshness sample's bodies: a view, viewer, player and video of
    its own (``uuid_head`` keeps two benchmarks' ids apart)."""
    return {
        PLACEHOLDERS["@@VIEW@@"]: f"{uuid_head}-0000-4000-8000-{index:012x}",
        PLACEHOLDERS["@@VIEWER@@"]: f"{uuid_head}-0000-4000-9000-{index:012x}",
        PLACEHOLDERS["@@VIDEO@@"]: f"{video_prefix}-{index:05d}",
        PLACEHOLDERS["@@PLAYER@@"]: f"{uuid_head}-0000-4000-a000-{index:012x}",
    }


async def _views_after(
    client: httpx.AsyncClient, body: bytes, counts_url: str, wanted: int
) -> float:
    """POST ``body``, then poll until ``/counts`` reads ``wanted`` views; seconds taken."""
    started = time.perf_counter()
    answer = await client.post("/", content=body, headers={"Content-Type": "text/plain"})
    if answer.status_code != 200 or answer.json().get("rejected"):
        raise BenchError(f"the collector refused a freshness body: {answer.text}")
    deadline = started + GIVE_UP
    while True:
        counts = await client.get(counts_url)
        if counts.status_code != 200:
            raise BenchError(f"/counts answered {counts.status_code}: {counts.text}")
        if counts.json()["data"][0]["views"] == wanted:
            return time.perf_counter() - started
        if time.perf_counter() > deadline:
            return float("inf")
        await asyncio.sleep(POLL_INTERVAL)


async def _sample_all(
    base_url: str, tokens: list[str], first: list[str | int], last: list[str | int]
) -> tuple[list[float], list[float]]:
    starts: list[float] = []
    ends: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(len(tokens)):
        queue.put_nowait(index)

    async def worker(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            index = queue.get_nowait()
            ids = sample_ids(index, "f0000000", "bench-video")
            counts_url = f"/counts?token={tokens[index]}"
            starts.append(await _views_after(client, fill(first, ids), counts_url, 1))
            ends.append(await _views_after(client, fill(last, ids), counts_url, 0))

    async with httpx.AsyncClient(base_url=base_url, timeout=GIVE_UP) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    return starts, ends


def run(options: FreshnessOptions) -> Report:
    with deployment() as target:
        lifecycle = _ending_lifecycle(generate_lifecycles(target.env_key))
        first = split_template(lifecycle.bodies[0])
        last = split_template(lifecycle.bodies[-1])
        # Token i reads bench-video-{i}: one video per sample, so samples never see each other.
        tokens = mint_tokens(
            target.private_key_pem, target.key_id, options.samples, videos=options.samples
        )
        port = free_port()
        with serve_headcount(target, "headcount-freshness", port) as server, on_cpu(WRK_CPU):
            starts, ends = asyncio.run(_sample_all(server.url(""), tokens, first, last))

    def row(label: str, values: list[float]) -> tuple[str, str, str, str, str, str]:
        return (
            label,
            str(len(values)),
            f"{percentile(values, 0.5) * 1000:.0f}",
            f"{percentile(values, 0.99) * 1000:.0f}",
            f"{max(values) * 1000:.0f}",
            f"{statistics.fmean(v for v in values if v != float('inf')) * 1000:.0f}",
        )

    both = starts + ends
    details = (
        f"Poll interval {POLL_INTERVAL * 1000:.0f} ms, {CONCURRENCY} samples at a time, "
        "`headcount serve` with default settings.\n\n"
        + markdown_table(
            ("POST", "samples", "p50 ms", "p99 ms", "max ms", "mean ms"),
            [
                row("viewstart -> views 1", starts),
                row("viewend -> views 0", ends),
                row("all", both),
            ],
        )
    )
    p99 = percentile(both, 0.99)
    metrics = (
        Metric(
            "freshness: POST viewstart/viewend -> /counts shows it, p99",
            f"≤ {TARGET_P99 * 1000:.0f} ms",
            f"{p99 * 1000:.0f} ms (p50 {percentile(both, 0.5) * 1000:.0f} ms, {len(both)} samples)",
            p99 <= TARGET_P99,
        ),
    )
    raw = {"samples": options.samples, "starts": starts, "ends": ends}
    return Report("freshness", metrics, details, raw)
