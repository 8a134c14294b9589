"""Part 3 of ``bench redis`` (:mod:`bench.redis_store`): Redis memory per happening view. A
fresh server filled through ``RedisLiveStore.ingest``, every view checked, and what Redis keeps
by kind of key (``OBJECT ENCODING``, ``MEMORY USAGE``), with its section of the report.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.redis_nodes import Part
from bench.redis_servers import RedisProcess, start_redis
from bench.report import Metric, markdown_table
from bench.servers import SERVER_CPU, BenchError, on_cpu
from bench.wrk import WRK_CPU
from headcount.core.events import ViewEvent, playback_id_from_source_url
from headcount.core.identity import content_key
from headcount.history.model import ENVIRONMENT
from headcount.settings import load_settings
from headcount.stores.redis_connect import parse_redis_url
from headcount.stores.redis_live import RedisLiveStore

__all__ = ["measure_memory", "memory_breakdown", "video_major_batches"]

TARGET_BYTES_PER_VIEW = 300

BATCH_VIEWS = 10_000  # views per ingest call when filling Redis for the memory measurement
CONCURRENT_BATCHES = 4
MEMORY_ENVIRONMENT = "env_bench_redis_memory_00000"


def _uuid_like(hex32: str) -> str:
    return f"{hex32[:8]}-{hex32[8:12]}-4{hex32[13:16]}-a{hex32[17:20]}-{hex32[20:32]}"


def _videos(videos: int) -> tuple[list[str], list[str]]:
    ids = [f"video-{i:05d}" for i in range(videos)]
    urls = [f"https://stream.mux.com/PB{i:05d}xLocalOnly{i % 97:02d}.m3u8" for i in range(videos)]
    return ids, urls


def video_major_batches(
    views: int, videos: int, batch: int = BATCH_VIEWS
) -> Iterator[list[ViewEvent]]:
    """``views`` full-state ``viewstart`` events, view ``i`` on video ``i mod videos`` (the
    population of ``bench/memory.py``), sent video by video: a batch holds whole videos, so the
    counter memberships of a batch share sub-keys and the fill takes one round trip per sub-key
    rather than one per view. The order does not change what Redis keeps at the end."""
    ids, urls = _videos(videos)
    per_video = [views // videos + (1 if v < views % videos else 0) for v in range(videos)]
    pending: list[ViewEvent] = []
    for video in range(videos):
        count = per_video[video]
        blob = os.urandom(32 * count).hex()
        for j in range(count):
            pending.append(
                ViewEvent(
                    name="viewstart",
                    view_id=_uuid_like(blob[64 * j : 64 * j + 32]),
                    sequence=6,
                    starts=True,
                    video_id=ids[video],
                    source_url=urls[video],
                    mux_viewer_id=_uuid_like(blob[64 * j + 32 : 64 * j + 64]),
                )
            )
        if len(pending) >= batch:
            yield pending
            pending = []
    if pending:
        yield pending


async def _fill(store: RedisLiveStore, views: int, videos: int, now: float) -> float:
    started = time.perf_counter()
    in_flight: list[asyncio.Future[Any]] = []
    for batch in video_major_batches(views, videos):
        in_flight.append(asyncio.ensure_future(store.ingest(MEMORY_ENVIRONMENT, batch, now)))
        if len(in_flight) >= CONCURRENT_BATCHES:
            await in_flight.pop(0)
    await asyncio.gather(*in_flight)
    return time.perf_counter() - started


async def _count_all(store: RedisLiveStore, videos: int, now: float) -> int:
    ids, _ = _videos(videos)
    total = 0
    for start in range(0, len(ids), 200):
        chunk = ids[start : start + 200]
        counts = await asyncio.gather(
            *(store.counts(MEMORY_ENVIRONMENT, "video_id", v, now) for v in chunk)
        )
        total += sum(c.views for c in counts)
    return total


@dataclass(frozen=True)
class KeyKind:
    """What one kind of key costs: encodings seen, entries per key, bytes per view."""

    name: str
    keys: int  # keys of this kind (extrapolated for sampled kinds)
    sampled: int
    encodings: dict[str, int]
    entries: float  # median entries (fields, members) per key
    bytes_per_view: float


def _inspect(server: RedisProcess, names: Sequence[str]) -> list[tuple[str, int, int]]:
    """(encoding, MEMORY USAGE, entries) of each key; absent keys are left out."""
    found: list[tuple[str, int, int]] = []
    client = server.client
    for start in range(0, len(names), 2000):
        chunk = names[start : start + 2000]
        pipe = client.pipeline(transaction=False)
        for name in chunk:
            pipe.object("encoding", name)
            pipe.memory_usage(name, samples=0)
            pipe.type(name)
        replies = pipe.execute()
        sizes = client.pipeline(transaction=False)
        kept = []
        for i, name in enumerate(chunk):
            encoding, usage, kind = replies[3 * i : 3 * i + 3]
            if encoding is None:
                continue
            kind = kind.decode() if isinstance(kind, bytes) else kind
            (sizes.hlen if kind == "hash" else sizes.zcard)(name)
            kept.append((encoding, usage))
        for (encoding, usage), entries in zip(kept, sizes.execute(), strict=True):
            text = encoding.decode() if isinstance(encoding, bytes) else str(encoding)
            found.append((text, int(usage), int(entries)))
    return found


def memory_breakdown(
    kinds: Sequence[tuple[str, Sequence[tuple[str, int, int]], float]], views: int
) -> list[KeyKind]:
    """Per kind (name, inspected keys, scale from the sample to every key of the kind)."""
    out = []
    for name, found, scale in kinds:
        total = sum(usage for _, usage, _ in found) * scale
        out.append(
            KeyKind(
                name,
                round(len(found) * scale),
                len(found),
                dict(Counter(encoding for encoding, _, _ in found)),
                statistics.median(e for _, _, e in found) if found else 0.0,
                total / views if views else 0.0,
            )
        )
    return out


@dataclass(frozen=True)
class _Memory:
    views: int
    videos: int
    used_before: int
    used_after: int
    fill_seconds: float
    kinds: tuple[KeyKind, ...]
    keys: int
    sub_keys: int  # partitions x sub-partitions: the state hashes and last-seen zsets
    limits: dict[str, int]  # the server's *-max-listpack-entries

    @property
    def per_view(self) -> float:
        return (self.used_after - self.used_before) / self.views


def measure_memory(directory: Path, views: int, videos: int) -> _Memory:
    """Fill a fresh Redis with ``views`` happening views and look at what it keeps."""
    with start_redis("redis-bench-memory", directory, cpu=WRK_CPU) as server, on_cpu(SERVER_CPU):
        settings = load_settings({"live_url": server.url, "liveness_window": 3600.0}, environ={})
        store = RedisLiveStore.from_settings(settings, parse_redis_url(server.url))
        now = time.time()

        async def build() -> tuple[int, float, int, int]:
            await store.start(now)
            try:
                before = server.used_memory()
                seconds = await _fill(store, views, videos, now)
                after = server.used_memory()
                stats = await store.stats()
                counted = await _count_all(store, videos, now)
            finally:
                await store.close(now)
            if stats.happening != views or counted != views:
                raise BenchError(
                    f"Redis counts {stats.happening} happening views and {counted} by video, "
                    f"not {views}"
                )
            return before, seconds, after, stats.happening

        before, seconds, after, _ = asyncio.run(build())
        layout = store.layout
        groups = range(layout.partitions)
        subs = [(g, r) for g in groups for r in range(layout.subpartitions)]
        state = _inspect(server, [layout.sub(g, r)[0] for g, r in subs])
        seen = _inspect(server, [layout.sub(g, r)[1] for g, r in subs])
        group_keys = _inspect(server, [n for g in groups for n in layout.group(g)])
        ids, urls = _videos(videos)
        step = max(1, videos // 500)
        sample = range(0, videos, step)
        scale = videos / len(sample)
        counters: dict[str, list[tuple[str, int, int]]] = {}
        for id_type, values in (
            ("video_id", [ids[v] for v in sample]),
            ("playback_id", [playback_id_from_source_url(urls[v]) or "" for v in sample]),
        ):
            names = [
                layout.counter(content_key(MEMORY_ENVIRONMENT, id_type, value), shard)
                for value in values
                for shard in range(layout.counter_shards)
            ]
            counters[f"{id_type} counter hashes"] = _inspect(server, [h for h, _ in names])
            counters[f"{id_type} lease zsets"] = _inspect(server, [z for _, z in names])
        environment = content_key(MEMORY_ENVIRONMENT, ENVIRONMENT, MEMORY_ENVIRONMENT)
        names = [
            layout.counter(environment, shard, layout.environment_shards)
            for shard in range(layout.environment_shards)
        ]
        environment_counter = {
            "environment counter hashes": _inspect(server, [h for h, _ in names]),
            "environment lease zsets": _inspect(server, [z for _, z in names]),
        }
        keys = int(server.client.dbsize())
        limits = {
            name.decode() if isinstance(name, bytes) else str(name): int(value)
            for name, value in server.client.config_get("*-max-listpack-entries").items()
        }
    kinds = memory_breakdown(
        [
            ("view state hashes (partition)", state, 1.0),
            ("last-seen zsets (partition)", seen, 1.0),
            ("due zsets + stats hashes (group)", group_keys, 1.0),
            *((name, found, scale) for name, found in counters.items()),
            *((name, found, 1.0) for name, found in environment_counter.items()),
        ],
        views,
    )
    return _Memory(views, videos, before, after, seconds, tuple(kinds), keys, len(subs), limits)


# -- the report ------------------------------------------------------------------------------


def _memory_part(memory: _Memory) -> Part:
    rows = []
    accounted = 0.0
    for kind in memory.kinds:
        accounted += kind.bytes_per_view
        encodings = ", ".join(f"{name} {count:,}" for name, count in sorted(kind.encodings.items()))
        sampled = "" if kind.sampled == kind.keys else f" (sample of {kind.sampled:,})"
        rows.append(
            (
                kind.name,
                f"{kind.keys:,}{sampled}",
                encodings,
                f"{kind.entries:.0f}",
                f"{kind.bytes_per_view:.0f}",
            )
        )
    rows.append(
        ("the rest: key space, expiry table", "", "", "", f"{memory.per_view - accounted:.0f}")
    )
    table = markdown_table(
        ("keys", "count", "encodings", "entries per key (median)", "B/view (MEMORY USAGE)"),
        rows,
    )
    zset_limit = memory.limits.get("zset-max-listpack-entries", 128)
    hash_limit = memory.limits.get("hash-max-listpack-entries", 512)
    section = (
        f"Redis memory: {memory.views:,} happening views over {memory.videos:,} videos, filled "
        f"through `RedisLiveStore.ingest` in {memory.fill_seconds:.0f} s; used_memory "
        f"{memory.used_before / 2**20:,.1f} -> {memory.used_after / 2**20:,.1f} MiB, "
        f"**{memory.per_view:.0f} B per view**; {memory.keys:,} keys. A last-seen zset stays a "
        f"listpack up to {zset_limit} views (`zset-max-listpack-entries`), a state hash up to "
        f"{hash_limit} (`hash-max-listpack-entries`): with {memory.sub_keys:,} sub-partitions "
        f"the zsets turn into skiplists past ~{memory.sub_keys * zset_limit:,} views.\n\n" + table
    )
    encodings = "; ".join(
        f"{k.name.split(' (')[0]} {'/'.join(sorted(k.encodings))}" for k in memory.kinds
    )
    metric = Metric(
        f"Redis memory per happening view, {memory.views:,} views / {memory.videos:,} videos",
        f"≤ {TARGET_BYTES_PER_VIEW} B",
        f"{memory.per_view:.0f} B (used_memory Δ); encodings: {encodings}",
        memory.per_view <= TARGET_BYTES_PER_VIEW,
    )
    return section, [metric]
