"""What a heartbeat request's view step costs Redis, against a trivial ``EVALSHA`` in the same
run: ``python -m bench.redis_step_cost``.

It answers one question of the issue's Redis CPU target (events per Redis core-second at
least 0.3 times a trivial call's rate): how much of it the view step takes. One
``redis-server`` pinned to the wrk core; from this process, in turn, every round:

* **known**: ``RedisLiveStore.ingest`` of a heartbeat batch (``hb`` and two
  ``requestcompleted``, the bench bodies' commonest request) for a view the node wrote last,
  80 requests at once (one pipeline, as the group commit makes it under load): one
  ``view_write.lua`` call each, no counter call (nothing changes, no refresh is due);
* **moved**: the same batches through a second store (another node) that never saw the views:
  its first write finds each view moved and answers it, the second stores it (what a view
  costs when a load balancer sends its batches to another node than the last);
* **Lua twin (before)**: what the step cost when Redis ran it (session 7's ``partition.lua``
  step, 13.4 trivial calls per request, is in ``docs/benchmarks.md``; it is gone from the
  code, so this bench no longer measures it);
* **trivial**: ``EVALSHA`` of ``return 1``, pipelines of 80, from the same client.

Each is Redis CPU (``INFO cpu``) per request over 20,000 requests; the table gives medians of
the rounds and each as trivial calls.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import redis.asyncio as redis_asyncio

from bench.redis_servers import RedisProcess, start_redis
from bench.report import markdown_table
from bench.wrk import WRK_CPU
from headcount.core.events import ViewEvent
from headcount.stores.redis_connect import parse_redis_url
from headcount.stores.redis_live import RedisLiveStore

__all__ = ["main"]

VIEWS = 30_000
REQUESTS = 20_000
PIPELINE = 80
ROUNDS = 5
ENV = "bench-env"
T0 = 1_800_000_000.0


def _cpu(server: RedisProcess) -> float:
    info = server.info("cpu")
    return float(info["used_cpu_sys"]) + float(info["used_cpu_user"])


class _Run:
    """The stores, a client and the views of one measurement."""

    def __init__(self, store: RedisLiveStore, client: Any) -> None:
        self.store = store
        self.client = client
        self.views = [f"view-{i}" for i in range(VIEWS)]
        self.sequences = dict.fromkeys(self.views, 1)
        self.trivial = client.register_script("return 1")

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

    async def heartbeats(self, store: RedisLiveStore, sample: list[str], now: float) -> None:
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
            await asyncio.gather(*(store.ingest(ENV, b, now) for b in batches))

    async def trivial_calls(self) -> None:
        for i in range(0, REQUESTS, PIPELINE):
            pipe = self.client.pipeline(transaction=False)
            for _ in range(min(PIPELINE, REQUESTS - i)):
                await self.trivial(keys=[], args=[], client=pipe)
            await pipe.execute()


async def _measure(server: RedisProcess) -> dict[str, list[float]]:
    url = parse_redis_url(server.url + "?prefix=step")
    # Two nodes: the one that wrote the views last steps them at once; the other must find
    # each moved first (it never saw them, or knows an older state), then roles swap.
    last = RedisLiveStore(url, snapshot_interval=0)
    other = RedisLiveStore(url, snapshot_interval=0)
    await last.start(T0)
    await other.start(T0)
    client = redis_asyncio.Redis.from_url(server.url)
    run = _Run(last, client)
    rng = random.Random(7)
    now = T0
    await run.fill(now)
    results: dict[str, list[float]] = {"known": [], "moved": [], "trivial": []}
    sample = rng.sample(run.views, REQUESTS)  # distinct, the same every round: `last` wrote them
    for _ in range(ROUNDS):
        now += 1.0
        for name, store in (("known", last), ("moved", other)):
            before = _cpu(server)
            await run.heartbeats(store, sample, now)
            results[name].append((_cpu(server) - before) / REQUESTS * 1e6)
        before = _cpu(server)
        await run.trivial_calls()
        results["trivial"].append((_cpu(server) - before) / REQUESTS * 1e6)
        last, other = other, last
    await client.aclose()
    await last.close(now)
    await other.close(now)
    return results


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="headcount-step-cost-") as tmp,
        start_redis("redis-step-cost", Path(tmp), cpu=WRK_CPU) as server,
    ):
        results = asyncio.run(_measure(server))
    median = {name: statistics.median(values) for name, values in results.items()}
    trivial = median["trivial"]
    rows = [
        (
            label,
            f"{median[name]:.2f}",
            ", ".join(f"{v:.2f}" for v in results[name]),
            f"{median[name] / trivial:.1f}",
        )
        for label, name in (
            ("a view the node wrote last (one write)", "known"),
            ("a view another node wrote last (two writes)", "moved"),
            ("trivial EVALSHA (return 1)", "trivial"),
        )
    ]
    print(
        f"Redis CPU per heartbeat request ({REQUESTS:,} requests a round, {ROUNDS} rounds, "
        f"pipelines of {PIPELINE}, {VIEWS:,} views held):\n"
    )
    print(markdown_table(("step", "µs per request (median)", "rounds", "trivial calls"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
