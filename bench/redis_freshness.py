"""Part 5 of ``bench redis`` (:mod:`bench.redis_store`): freshness across nodes. A POST to
node A, polled on node B's ``/counts`` until it shows, with its section of the report.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.bodies import fill
from bench.deployment import Deployment
from bench.freshness import percentile, sample_ids
from bench.redis_nodes import Part
from bench.report import Metric, markdown_table
from bench.servers import BenchError
from bench.tokens import mint_token

TARGET_FRESH_P99 = 1.0

POLL_INTERVAL = 0.01
GIVE_UP = 10.0
CONCURRENCY = 10


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
            ids = sample_ids(index, "fa000000", "fresh-video")
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


# -- the report ------------------------------------------------------------------------------


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
