"""Redis adapter of the LiveStore port: any number of stateless nodes share one Redis or Redis
Cluster (DESIGN.md "Scale-out"; key layout in :mod:`headcount.stores.redis_keys`).

* **Views** live in partition groups, as packed states and last-seen times
  (:mod:`headcount.stores.redis_codec`). The node steps them itself, with the core's tracker
  (:mod:`headcount.stores.redis_views`), from the state it last wrote for each view (a bounded
  memory, :mod:`headcount.stores.redis_writes`), and stores the results with one
  ``view_write.lua`` call per group, all groups in one pipeline: a compare-and-set, so that a
  view another node or a sweep moved since (or one this node never saw) is answered as it is
  now and stepped again from that. A batch's views cost one round trip while they stay with
  one node, two when they move.
* **Counters** are memberships ``view -> viewer`` with a lease, in counter sub-keys chosen by
  ``hash(viewer)``; the view step returns what changed and this adapter applies it
  (:mod:`headcount.stores.redis_memberships`) in a second pipeline, one script call per
  sub-key (``counter_apply.lua``). Nothing spans two slots.
* **Self-healing.** A node may die between the two pipelines, before it answered: the client
  re-sends the batch, and a view with a duplicate event in its batch re-sends its memberships at
  once (or their removal, when it no longer counts). Without a re-send, time heals: a happening
  view re-sends its memberships at least every half liveness window
  (:data:`~headcount.stores.redis_memberships.REFRESH`), so a lost add comes back within half a
  window plus a heartbeat; a view that stopped counting sends its removal again when it expires
  (one window after its last event), so a lost remove goes within a window. A membership's lease
  is one and a half windows (:data:`~headcount.stores.redis_memberships.LEASE`: it must outlive
  the view's own liveness, or a healthy view would lapse between two refreshes); it is what is
  left for the rare stale membership neither covers (a lost change of ids, or a lost sweep).
  Counts are never negative (a membership is there or not), and a re-sent or refreshed
  membership never counts twice (one membership per view and viewer per sub-key); a view counts
  twice only while a lost change of its viewer waits for the old membership's lease. Leases
  lapse by the clock of the last sweep (``updated_at``), not of the read: between two sweeps
  nothing moves, as with the memory store.
* **Reads** of one counter key sum its ``counter_shards`` sub-keys, and a node keeps each
  answer for half the snapshot interval (:data:`READ_CACHE`): readers cost Redis two reads per
  id per node per interval, however many browsers poll. While Redis cannot be reached, a node
  answers from the counts it last read (their ``updated_at`` tells how old: the last sweep that
  succeeded), and with a 503 envelope for ids it never read.
* **History** (:mod:`headcount.history.redis`): every counter sub-key's answer (and every read
  that found new counts) is handed to it, and it records the keys at each sweep, after
  ``updated_at`` moved. Every view also counts under its environment's own key.
* **Faults.** Every Redis failure is a :class:`~headcount.errors.StoreUnavailable` (503): the
  collector does not acknowledge what it could not store, and mux-embed sends it again.
  A Redis that comes back empty is refilled by the tracker's first-seen rules.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from typing import Any, Final

from redis.exceptions import RedisClusterException, RedisError

from headcount.core.events import ViewEvent
from headcount.core.identity import content_key, view_key
from headcount.errors import StoreUnavailable
from headcount.history.redis import RedisHistory
from headcount.metrics import Histogram
from headcount.settings import Settings
from headcount.stores.live import Counts, IngestResult, LiveStats
from headcount.stores.redis_codec import ContentHashes, to8
from headcount.stores.redis_connect import RedisTarget, connect
from headcount.stores.redis_keys import KeyLayout
from headcount.stores.redis_lua import COUNTER, PARTITION, Command, ScriptRunner
from headcount.stores.redis_memberships import REFRESH, Lease, membership_commands
from headcount.stores.redis_views import StepRules
from headcount.stores.redis_writes import Pending, ViewWrites

__all__ = ["RedisLiveStore"]

log = logging.getLogger("headcount.live")

_ZERO: Final = Counts(0, 0)
SWEEP_BUDGET: Final = 2000  # views one sweep call may expire; the sweep loops for the rest
RECONNECT_INTERVAL: Final = 1.0
WRITE_ATTEMPTS: Final = 8  # writes of one batch while other nodes keep moving its views
MAX_CACHED: Final = 100_000
# x snapshot interval: how long a node reuses counts it read. Half, so that a change reaches
# every node's /counts within one snapshot interval (bench: freshness across nodes, p99 <= 1 s
# at the default 1 s), at two reads per id per node per interval.
READ_CACHE: Final = 0.5
# What "Redis cannot be reached" looks like. redis-py's cluster client raises
# RedisClusterException, which is not a RedisError, when no node answers (e.g. "Redis Cluster
# cannot be connected"): without it here a node started while its cluster is away would crash
# instead of retrying, and a request would get a 500 instead of a 503.
_UNREACHABLE: Final = (RedisError, RedisClusterException, OSError)


def _milliseconds(seconds: float) -> int:
    """A time as the partition script keeps it: whole milliseconds, so that a last-seen score
    is an integer (10 bytes in a listpack; a fraction of a second takes 19). The liveness rule
    is therefore applied to the millisecond, where the memory store compares floats."""
    return round(seconds * 1000)


class RedisLiveStore:
    def __init__(
        self,
        target: RedisTarget,
        *,
        liveness_window: float = 60.0,
        count_paused: bool = False,
        partitions: int = 256,
        subpartitions: int = 64,
        counter_shards: int = 8,
        snapshot_interval: float = 1.0,
        history_retention: float = 86_400.0,
    ) -> None:
        if liveness_window <= 0:
            raise ValueError("liveness_window must be positive")
        self.target = target
        self.liveness_window = liveness_window
        self.count_paused = count_paused
        self.snapshot_interval = snapshot_interval
        self._window_ms = _milliseconds(liveness_window)
        self._lease = Lease.of(liveness_window)
        self.layout = KeyLayout(
            target.prefix,
            partitions=partitions,
            subpartitions=subpartitions,
            counter_shards=counter_shards,
        )
        self._writes = ViewWrites(
            self.layout,
            StepRules(
                self._window_ms, count_paused, self._lease.seconds, REFRESH * liveness_window
            ),
        )
        self._client: Any = None
        self._runner: ScriptRunner | None = None
        self._ready = False
        self._loaded = False  # the scripts were loaded once: later failures are outages
        self._updated_at = 0.0
        self._reconnect: asyncio.Task[None] | None = None
        self._cache: dict[tuple[str, str, str], tuple[float, Counts]] = {}
        self._reading: dict[tuple[str, str, str], asyncio.Future[Counts]] = {}
        self._content_hashes: dict[tuple[str, str, str], bytes] = {}
        self.reads = 0  # counter keys read from Redis (observability and tests)
        self.history = RedisHistory(self.layout, history_retention)
        self.latency = Histogram()  # pipelines sent, timed (GET /metrics)

    @classmethod
    def from_settings(cls, settings: Settings, target: RedisTarget) -> RedisLiveStore:
        return cls(
            target,
            liveness_window=settings.liveness_window,
            count_paused=settings.count_paused,
            partitions=settings.partitions,
            counter_shards=settings.counter_shards,
            snapshot_interval=settings.snapshot_interval,
            history_retention=settings.history_retention,
        )

    def immediate(self) -> None:
        return None  # every call is a round trip to Redis

    @property
    def updated_at(self) -> float:
        return self._updated_at

    @property
    def ready(self) -> bool:
        """Whether Redis answers: not before the scripts were loaded once, nor since the last
        call failed (the sweep, every second, finds out when it answers again)."""
        return self._ready

    # -- plumbing --------------------------------------------------------------------------

    async def _run(self, commands: Sequence[Command]) -> list[Any]:
        if self._runner is None:
            raise StoreUnavailable("The live store (Redis) is not connected yet.")
        try:
            results = await self._runner.run(commands)
        except _UNREACHABLE as exc:
            self._ready = False  # /readyz: 503 until Redis answers again (the sweep asks 1/s)
            raise StoreUnavailable(
                "The live store (Redis) cannot be reached; try again shortly."
            ) from exc
        self._ready = self._loaded
        return results

    async def _apply_counters(self, changes: Sequence[bytes], now: float) -> None:
        """Apply a step's changes to the counter sub-keys; their answers go to the history."""
        targets, commands = self._counter_commands(changes, now)
        results = await self._run(commands)
        seen = self.history.seen
        for (content, shard), (views, viewers) in zip(targets, results, strict=True):
            seen(content, shard, int(views), int(viewers), now)

    def _counter_commands(
        self, changes: Sequence[bytes], now: float
    ) -> tuple[list[tuple[bytes, int]], list[Command]]:
        return membership_commands(self.layout, changes, now, self._updated_at, self._lease)

    # -- events ----------------------------------------------------------------------------

    async def ingest(
        self, environment_id: str, events: Sequence[ViewEvent], now: float
    ) -> IngestResult:
        by_view: dict[int, list[ViewEvent]] = {}
        last_view_id: str | None = None
        batch: list[ViewEvent] = []
        for event in events:
            if event.view_id != last_view_id:  # a batch is mostly one view's events
                last_view_id = event.view_id
                key = view_key(environment_id, event.view_id)
                found = by_view.get(key)
                batch = by_view[key] = [] if found is None else found
            batch.append(event)
        hashes = ContentHashes(environment_id, self._content_hashes, self.history.names)
        now_ms = _milliseconds(now)
        duplicates = 0
        changes: list[bytes] = []
        pending: Pending = list(by_view.items())
        writes = self._writes
        for _ in range(WRITE_ATTEMPTS):
            stepped, commands = writes.commands(pending, hashes, now_ms)
            stored, pending = writes.settle(stepped, await self._run(commands), changes)
            duplicates += stored
            if not pending:
                break
        if changes:
            await self._apply_counters(changes, now)  # the views stored, even if some were not
        if pending:
            raise StoreUnavailable(
                "Views of this batch kept changing under it (other nodes); try again shortly."
            )
        return IngestResult(applied=len(events) - duplicates, duplicates=duplicates)

    async def sweep(self, now: float) -> int:
        layout = self.layout
        groups = range(layout.partitions)
        now_ms = _milliseconds(now)
        due_lists = await self._run(
            [("ZRANGEBYSCORE", layout.group(g)[0], "-inf", now_ms) for g in groups]
        )
        pending = [(g, [int(r) for r in due]) for g, due in zip(groups, due_lists, strict=True)]
        pending = [(g, due) for g, due in pending if due]
        removed = 0
        while pending:
            commands = [
                PARTITION.command(
                    [*layout.group(g), *(n for r in due for n in layout.sub(g, r))],
                    (
                        now_ms,
                        self._window_ms,
                        " ".join(map(str, due)),
                        int(self.count_paused),
                        self._lease.seconds,
                        SWEEP_BUDGET,
                    ),
                )
                for g, due in pending
            ]
            changes: list[bytes] = []
            again = []
            for (g, due), result in zip(pending, await self._run(commands), strict=True):
                more, expired, *rest = result
                removed += expired
                changes.extend(rest)
                if more:
                    again.append((g, due))
            if changes:
                await self._apply_counters(changes, now)
            pending = again
        self._updated_at = now  # the counters are up to date, whatever the history does next
        await self.history.flush(now)
        return removed

    # -- reads -----------------------------------------------------------------------------

    async def counts(self, environment_id: str, id_type: str, id_value: str, now: float) -> Counts:
        key = (environment_id, id_type, id_value)
        cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        reading = self._reading.get(key)
        if reading is None:
            reading = asyncio.ensure_future(self._read(key, now))
            self._reading[key] = reading
            reading.add_done_callback(lambda _: self._reading.pop(key, None))
        try:
            return await asyncio.shield(reading)
        except StoreUnavailable:
            if cached is not None:
                return cached[1]  # stale, and its updated_at (the last sweep) says so
            raise

    async def _read(self, key: tuple[str, str, str], now: float) -> Counts:
        content = content_key(*key)
        layout = self.layout
        results = await self._run(
            [
                COUNTER.command(layout.counter(content, shard), (self._updated_at, 0, 0))
                for shard in range(layout.counter_shards)
            ]
        )
        self.reads += 1
        views = sum(int(r[0]) for r in results)
        counts = Counts(views, sum(int(r[1]) for r in results)) if views else _ZERO
        previous = self._cache.get(key)
        if previous is None or previous[1] != counts:
            # A read may find counts no step of this node reported (another node's lapsed
            # leases): the history hears of it. Unchanged reads cost the history nothing.
            hashed = to8(content)
            for shard, (shard_views, shard_viewers) in enumerate(results):
                self.history.seen(hashed, shard, int(shard_views), int(shard_viewers), now)
        if self.snapshot_interval > 0:
            if len(self._cache) >= MAX_CACHED:
                del self._cache[next(iter(self._cache))]
            self._cache.pop(key, None)
            self._cache[key] = (now + READ_CACHE * self.snapshot_interval, counts)
        return counts

    async def stats(self) -> LiveStats:
        layout = self.layout
        rows = await self._run(
            [("HMGET", layout.group(g)[1], "v", "h") for g in range(layout.partitions)]
        )
        return LiveStats(
            views=sum(int(v or 0) for v, _ in rows), happening=sum(int(h or 0) for _, h in rows)
        )

    # -- life cycle ------------------------------------------------------------------------

    async def save(self, now: float) -> None:
        return None  # Redis keeps the state (its own persistence settings decide for how long)

    async def start(self, now: float) -> None:
        self._client, cluster = connect(self.target)
        self._runner = ScriptRunner(self._client, cluster=cluster, latency=self.latency)
        self.history.connect(self._run)
        self._updated_at = now
        if not await self._try_connect():
            log.warning(
                "Redis at %s is not reachable yet; retrying every %.0f s "
                "(this node is not ready until it answers)",
                self.target.display,
                RECONNECT_INTERVAL,
            )
            self._reconnect = asyncio.ensure_future(self._keep_trying())

    async def _try_connect(self) -> bool:
        assert self._runner is not None
        try:
            await self._runner.load()
        except _UNREACHABLE:
            return False
        self._loaded = self._ready = True
        return True

    async def _keep_trying(self) -> None:
        while not await self._try_connect():
            await asyncio.sleep(RECONNECT_INTERVAL)
        log.info("Redis at %s answers; this node is ready", self.target.display)

    async def close(self, now: float) -> None:
        if self._reconnect is not None:
            self._reconnect.cancel()
            with suppress(asyncio.CancelledError):
                await self._reconnect
            self._reconnect = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None
