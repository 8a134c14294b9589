"""What each of the live store's script calls costs Redis to execute, on cold keys with the
arguments a node sends: ``python -m bench.redis_script_cost`` (about a minute).

It answers where the Redis CPU per event of ``bench redis`` goes, against its trivial
``EVALSHA`` baseline: that baseline calls one script with no keys and the same arguments over
and over (its strings interned once, everything in the CPU's caches), while a node's calls each
name keys spread over the whole key space (every one of the store's 16,384 sub-partitions, and
16,384 counter sub-keys, as the environment's own counter has; names from
:class:`~headcount.stores.redis_keys.KeyLayout`) and carry arguments never seen before (a view
id, a packed state, a membership). One ``redis-server`` pinned to the wrk core; from this
process, pipelines of 50, in turn, every round, each on its own keys:

* **trivial**: ``EVALSHA`` of ``return 1`` (the bench's baseline);
* **empty call, a heartbeat's shape**: a script that returns at once, called with a heartbeat
  write's two keys and six arguments (a new view id and states each call): the fixed cost of a
  call before its first ``redis.call``;
* **view write, a known view**: ``view_write.lua`` storing a heartbeat's new state (its
  compare-and-set finds the state the node knew): HGET, HSET, ZADD;
* **counter membership, add or remove**: ``counter_apply.lua`` with one op, adds and removals in
  equal numbers, on sub-keys holding a few memberships each.

Each row is execution time per call (``INFO commandstats``: time in the command, no I/O), the
``redis.call``\\ s per call and their own share; medians of the rounds.
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

from bench.redis_servers import start_redis
from bench.report import markdown_table
from bench.wrk import WRK_CPU
from headcount.stores.redis_keys import KeyLayout
from headcount.stores.redis_lua import COUNTER, WRITE, Script

__all__ = ["CASES", "main", "measure"]

LAYOUT = KeyLayout("cost", partitions=256, subpartitions=64, counter_shards=8)  # the defaults
SUBKEYS = LAYOUT.environment_shards  # 16,384: sub-partitions, and an environment's counter
HELD = 3  # entries per sub-key at the start
CALLS = 40_000  # per case and round
PIPELINE = 50
ROUNDS = 3
STATE = 44  # bytes of a packed state with one content id (redis_codec)
NOW_MS = 1_800_000_000_000
TRIVIAL = Script.of("trivial", "return 1")
EMPTY = Script.of("empty", "return {}")

Call = Callable[[random.Random], tuple[Script, list[Any], list[Any]]]


class _Writes:
    """Views held in the state hashes and last-seen zsets of ``subkeys`` sub-partitions."""

    def __init__(self, client: redis.Redis, subkeys: int) -> None:
        self.keys = [LAYOUT.sub(*LAYOUT.locate(i)) for i in range(subkeys)]
        self.views: list[tuple[int, bytes, bytes]] = []
        pipe = client.pipeline(transaction=False)
        for i, (states, seen) in enumerate(self.keys):
            for _ in range(HELD):
                view, state = os.urandom(8), os.urandom(STATE)
                self.views.append((i, view, state))
                pipe.hset(states, view, state)
                pipe.zadd(seen, {view: NOW_MS})
            if len(pipe) >= 5000:
                pipe.execute()
        pipe.execute()

    def heartbeat(self, script: Script) -> Call:
        def call(rng: random.Random) -> tuple[Script, list[Any], list[Any]]:
            at = rng.randrange(len(self.views))
            i, view, state = self.views[at]
            new = os.urandom(STATE)
            if script is not EMPTY:  # stored: the next call of this view steps from it
                self.views[at] = (i, view, new)
            return script, list(self.keys[i]), [NOW_MS, "", 1, view, state, new]

        return call


class _Memberships:
    """The first ``subkeys`` sub-keys of one environment's counter, a few memberships each."""

    def __init__(self, client: redis.Redis, subkeys: int) -> None:
        environment, shards = 0x1234_5678_9ABC_DEF, LAYOUT.environment_shards
        self.keys = [LAYOUT.counter(environment, shard, shards) for shard in range(subkeys)]
        self.held: list[list[bytes]] = [[] for _ in range(subkeys)]
        pipe = client.pipeline(transaction=False)
        for i in range(subkeys):
            for _ in range(HELD):
                self._queue(pipe, i, self._new(i))
            if len(pipe) >= 2000:
                pipe.execute()
        pipe.execute()

    def _new(self, i: int) -> bytes:
        membership = os.urandom(8) + b"w" + os.urandom(8)
        self.held[i].append(membership)
        return b"+" + membership

    def _args(self, op: bytes) -> list[Any]:
        return [NOW_MS // 1000 - 10, NOW_MS // 1000 + 90, 181_000, op]

    def _queue(self, pipe: Any, i: int, op: bytes) -> None:
        pipe.evalsha(COUNTER.sha, 2, *self.keys[i], *self._args(op))

    def change(self, rng: random.Random) -> tuple[Script, list[Any], list[Any]]:
        i = rng.randrange(len(self.keys))
        held = self.held[i]
        if held and rng.random() < 0.5:
            op = b"-" + held.pop(rng.randrange(len(held)))
        else:
            op = self._new(i)
        return COUNTER, list(self.keys[i]), self._args(op)


Cost = tuple[float, float, float]  # exec µs per call, redis.calls per call, their µs per call
CASES = (
    "trivial EVALSHA (return 1), no keys",
    "empty call, a heartbeat write's keys and arguments",
    "view_write.lua, a known view's heartbeat",
    "counter_apply.lua, one membership added or removed",
)


def _measure(client: redis.Redis, call: Call, rng: random.Random, calls: int) -> Cost:
    client.config_resetstat()
    pipe = client.pipeline(transaction=False)
    for _ in range(calls):
        script, keys, args = call(rng)
        pipe.evalsha(script.sha, len(keys), *keys, *args)
        if len(pipe) >= PIPELINE:
            pipe.execute()
    pipe.execute()
    stats = client.info("commandstats")
    outer = stats["cmdstat_evalsha"]
    inner = [
        v for k, v in stats.items() if k not in ("cmdstat_evalsha", "cmdstat_config|resetstat")
    ]
    calls = outer["calls"]
    return (
        outer["usec"] / calls,
        sum(v["calls"] for v in inner) / calls,
        sum(v["usec"] for v in inner) / calls,
    )


def measure(port: int, subkeys: int, calls: int, rounds: int) -> dict[str, list[Cost]]:
    """Every case of :data:`CASES`, ``rounds`` times, on a Redis at ``port`` (127.0.0.1)."""
    client = redis.Redis(host="127.0.0.1", port=port)
    try:
        for script in (TRIVIAL, EMPTY, WRITE, COUNTER):
            if client.script_load(script.source) != script.sha:
                raise AssertionError(f"{script.name}: Redis names it by another SHA1")
        writes = _Writes(client, subkeys)
        memberships = _Memberships(client, subkeys)
        calls_of: list[Call] = [
            lambda rng: (TRIVIAL, [], []),
            writes.heartbeat(EMPTY),
            writes.heartbeat(WRITE),
            memberships.change,
        ]
        rng = random.Random(7)
        results: dict[str, list[Cost]] = {name: [] for name in CASES}
        for _ in range(rounds):
            for name, call in zip(CASES, calls_of, strict=True):
                results[name].append(_measure(client, call, rng, calls))
        return results
    finally:
        client.close()


def main() -> int:
    with (
        tempfile.TemporaryDirectory(prefix="headcount-script-cost-") as tmp,
        start_redis("redis-script-cost", Path(tmp), cpu=WRK_CPU) as server,
    ):
        print("filling...", flush=True)
        results = measure(server.port, SUBKEYS, CALLS, ROUNDS)
    trivial = statistics.median(r[0] for r in results[CASES[0]])
    rows = []
    for name, runs in results.items():
        execs = [r[0] for r in runs]
        median = statistics.median(execs)
        rows.append(
            (
                name,
                f"{median:.2f}",
                ", ".join(f"{v:.2f}" for v in execs),
                f"{median / trivial:.1f}",
                f"{statistics.median(r[1] for r in runs):.2f}",
                f"{statistics.median(r[2] for r in runs):.2f}",
            )
        )
    print(
        f"\nRedis execution time per script call ({CALLS:,} calls a case and round, {ROUNDS} "
        f"rounds, pipelines of {PIPELINE}; {SUBKEYS:,} sub-partitions and as many counter "
        f"sub-keys, {HELD} entries each):\n"
    )
    print(
        markdown_table(
            (
                "call",
                "µs per call (median)",
                "rounds",
                "x trivial",
                "redis.calls per call",
                "their µs per call",
            ),
            rows,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
