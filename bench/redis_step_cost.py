"""What a heartbeat request's view step costs Redis, today's way and a node-side way, against a
trivial ``EVALSHA`` in the same run: ``python -m bench.redis_step_cost``.

It answers one question of the issue's Redis CPU target (events per Redis core-second at
least 0.3 times a trivial call's rate): how much of the gap the view step is, and what moving
the step to the nodes would leave. One ``redis-server`` pinned to the wrk core; from this
process, in turn, every round:

* **today**: ``RedisLiveStore.ingest`` of a heartbeat batch (``hb`` and two
  ``requestcompleted``, the bench bodies' commonest request) for a view it already holds, 80
  requests at once (one pipeline, as the group commit makes it under load): one
  ``partition.lua`` step call each, no counter call (nothing changes, no refresh is due);
* **node-side step**: what Redis would do if the node ran the core's tracker itself: the reads
  (``HGET`` of the packed state, ``ZSCORE`` of last-seen) for 80 views in one pipeline, then a
  compare-and-set script per view (``HGET``, compare, ``HSET``, ``ZADD``) in another;
* **trivial**: ``EVALSHA`` of ``return 1``, pipelines of 80, from the same client.

Each is Redis CPU (``INFO cpu``) per request over 20,000 requests; the table gives medians of
the rounds and each as trivial calls. Nothing here changes the store: it is the measurement
behind the session-7 notes in ``docs/benchmarks.md``.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import struct
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis.asyncio as redis_asyncio

from bench.redis_servers import RedisProcess, start_redis
from bench.report import markdown_table
from bench.wrk import WRK_CPU
from headcount.core.events import ViewEvent
from headcount.core.identity import view_key
from headcount.stores.redis_connect import parse_redis_url
from headcount.stores.redis_live import RedisLiveStore

__all__ = ["main"]

VIEWS = 30_000
REQUESTS = 20_000
PIPELINE = 80
ROUNDS = 5
ENV = "bench-env"
T0 = 1_800_000_000.0
_CAS = """
for i = 1, #KEYS, 2 do
  local a = (i - 1) / 2 * 3
  if redis.call('HGET', KEYS[i], ARGV[a + 1]) ~= ARGV[a + 2] then return 0 end
  redis.call('HSET', KEYS[i], ARGV[a + 1], ARGV[a + 3])
  redis.call('ZADD', KEYS[i + 1], ARGV[#ARGV], ARGV[a + 1])
end
return 1
"""


def _cpu(server: RedisProcess) -> float:
    info = server.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


class _Run:
    """The store, a client and the views of one measurement."""

    def __init__(self, server: RedisProcess, store: RedisLiveStore, client: Any) -> None:
        self.server = server
        self.store = store
        self.client = client
        self.views = [f"view-{i}" for i in range(VIEWS)]
        self.sequences = dict.fromkeys(self.views, 1)
        self.states: dict[str, Any] = {}
        self.cas = client.register_script(_CAS)
        self.trivial = client.register_script("return 1")

    def where(self, view: str) -> tuple[str, str, bytes]:
        key = view_key(ENV, view)
        skey, tkey = self.store.layout.sub(*self.store.layout.locate(key))
        return skey, tkey, struct.pack("<Q", key)

    async def fill(self, now: float) -> None:
        """Every view started, held as the store holds them."""
        for i in range(0, VIEWS, PIPELINE):
            await asyncio.gather(
                *(
                    self.store.ingest(
                        ENV,
                        [ViewEvent("viewstart", v, sequence=1, starts=True, video_id="vid-1")],
                        now,
                    )
                    for v in self.views[i : i + PIPELINE]
                )
            )

    async def today(self, sample: list[str], now: float) -> None:
        for i in range(0, REQUESTS, PIPELINE):
            batches = []
            for v in sample[i : i + PIPELINE]:
                s = self.sequences[v]
                self.sequences[v] = s + 3
                batches.append(
                    [
                        ViewEvent("requestcompleted", v, sequence=s + 1),
                        ViewEvent("requestcompleted", v, sequence=s + 2),
                        ViewEvent("hb", v, sequence=s + 3),
                    ]
                )
            await asyncio.gather(*(self.store.ingest(ENV, b, now) for b in batches))

    async def reads(self, sample: list[str], now: float) -> None:
        for i in range(0, REQUESTS, PIPELINE):
            pipe = self.client.pipeline(transaction=False)
            chunk = sample[i : i + PIPELINE]
            for v in chunk:
                skey, tkey, field = self.where(v)
                pipe.hget(skey, field)
                pipe.zscore(tkey, field)
            answers = await pipe.execute()
            for j, v in enumerate(chunk):
                self.states[v] = answers[2 * j]

    async def compare_and_set(self, sample: list[str], now: float) -> None:
        for i in range(0, REQUESTS, PIPELINE):
            pipe = self.client.pipeline(transaction=False)
            for v in sample[i : i + PIPELINE]:
                skey, tkey, field = self.where(v)
                # The state written back as read (a changed one costs Redis the same), so
                # the store's own views stay whole for the next round.
                old = self.states.get(v) or b""
                await self.cas(
                    keys=[skey, tkey], args=[field, old, old, int(now * 1000)], client=pipe
                )
            await pipe.execute()

    async def trivial_calls(self, sample: list[str], now: float) -> None:
        for i in range(0, REQUESTS, PIPELINE):
            pipe = self.client.pipeline(transaction=False)
            for _ in range(min(PIPELINE, REQUESTS - i)):
                await self.trivial(keys=[], args=[], client=pipe)
            await pipe.execute()


async def _measure(server: RedisProcess) -> dict[str, list[float]]:
    store = RedisLiveStore(parse_redis_url(server.url + "?prefix=step"), snapshot_interval=0)
    await store.start(T0)
    client = redis_asyncio.Redis.from_url(server.url)
    run = _Run(server, store, client)
    rng = random.Random(7)
    now = T0
    await run.fill(now)
    workloads: dict[str, Callable[[list[str], float], Awaitable[None]]] = {
        "today": run.today,
        "reads": run.reads,
        "cas": run.compare_and_set,
        "trivial": run.trivial_calls,
    }
    results: dict[str, list[float]] = {name: [] for name in workloads}
    for _ in range(ROUNDS):
        now += 1.0
        sample = [rng.choice(run.views) for _ in range(REQUESTS)]
        for name, work in workloads.items():
            before = _cpu(server)
            await work(sample, now)
            results[name].append((_cpu(server) - before) / REQUESTS * 1e6)
    await client.aclose()
    await store.close(now)
    return results


def _sums(a: list[float], b: list[float]) -> list[float]:
    return [x + y for x, y in zip(a, b, strict=True)]


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="headcount-step-cost-") as tmp,
        start_redis("redis-step-cost", Path(tmp), cpu=WRK_CPU) as server,
    ):
        results = asyncio.run(_measure(server))
    median = {name: statistics.median(values) for name, values in results.items()}
    trivial = median["trivial"]
    node_side = median["reads"] + median["cas"]
    rows = [
        (
            label,
            f"{value:.2f}",
            ", ".join(f"{v:.2f}" for v in values),
            f"{value / trivial:.1f}",
        )
        for label, value, values in (
            ("today: partition.lua step", median["today"], results["today"]),
            ("node-side: reads (HGET + ZSCORE)", median["reads"], results["reads"]),
            ("node-side: compare-and-set script", median["cas"], results["cas"]),
            ("node-side: both", node_side, _sums(results["reads"], results["cas"])),
            ("trivial EVALSHA (return 1)", trivial, results["trivial"]),
        )
    ]
    print(
        f"Redis CPU per heartbeat request ({REQUESTS:,} requests a round, {ROUNDS} rounds, "
        f"pipelines of {PIPELINE}, {VIEWS:,} views held):\n"
    )
    print(markdown_table(("step", "µs per request (median)", "rounds", "trivial calls"), rows))
    print(f"\nnode-side ÷ today: {node_side / median['today']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
