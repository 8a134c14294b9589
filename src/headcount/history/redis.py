"""History kept in Redis beside the counters (the Redis live store's).

* **Where counts are known.** A counter key's counts are the sums over its ``counter_shards``
  sub-keys (``environment_shards`` for an environment's own key), and every counter script
  call answers its sub-key's counts. The store hands those
  answers here (:meth:`RedisHistory.seen`) — from transitions, refreshes, sweeps and reads,
  never from a heartbeat — and at each sweep (:meth:`RedisHistory.flush`) sends one
  ``history.lua`` call per key seen since: the script keeps each sub-key's last counts (newest
  stamp wins, so nodes may flush in any order) and their sums (moved by each change, not
  added up again: an environment has a sub-key per slot) and records the key's minute and
  peaks (the rules of :mod:`headcount.history.record`, twinned in Lua). One round trip per
  sweep for history, whatever the traffic; a minute's maximum is therefore the highest sum
  seen at a sweep (≤ one sweep interval apart).
* **Top ids** without a scan: per environment one hash slot ``{t<env>}`` holds a sorted set per
  id type and one for all (score ``views * 10^6 + viewers``), updated in the same flush.
* **Layout**: :meth:`~headcount.stores.redis_keys.KeyLayout.history` and ``.ranking``. Records
  expire a retention window after their last write (a live key is written at least every
  refresh, half a liveness window); the minutes are a ring of ``2 x retention`` minutes of 20
  bytes in one string, so memory is bounded by retention x keys that were live.
"""

from __future__ import annotations

import struct
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

from headcount.core.identity import content_key
from headcount.history.model import ENVIRONMENT
from headcount.history.reads import Ranked
from headcount.history.record import MINUTE, KeyHistory
from headcount.stores.redis_keys import KeyLayout
from headcount.stores.redis_lua import HISTORY, Command

__all__ = ["RING", "SCORE", "RedisHistory", "history_from_redis"]

RING: Final = 2  # x retention: minutes the ring holds (the window, and what it carries in)
SCORE: Final = 1_000_000  # views * SCORE + viewers orders the rankings
_ENTRY: Final = struct.Struct("<5I")
_ALL: Final = "all"
Name = tuple[str, str, str]  # (environment id, id type, id)
Run = Callable[[Sequence[Command]], Awaitable[list[Any]]]


def _float(raw: Any, default: float | None) -> float | None:
    if raw is None:
        return default
    value = float(raw)
    return None if value < 0 else value


def history_from_redis(
    fields: Sequence[Any], ring: bytes | None, now: float, retention: float
) -> KeyHistory:
    """A :class:`KeyHistory` from a record's fields (``v u at pv pva pu pua``) and its ring:
    the kept minutes inside the window, and the value carried into it."""
    h = KeyHistory()
    v, u, at, pv, pva, pu, pua = fields
    h.views, h.viewers, h.changed_at = int(v or 0), int(u or 0), float(at or 0)
    h.peak_views, h.peak_views_at = int(pv or 0), _float(pva, None)
    h.peak_viewers, h.peak_viewers_at = int(pu or 0), _float(pua, None)
    first = int((now - retention) // MINUTE) + 1
    kept: list[tuple[int, ...]] = []
    base = (-1, 0, 0)
    for entry in _ENTRY.iter_unpack((ring or b"")[: len(ring or b"") // 20 * 20]):
        if entry[0] >= first:
            kept.append(entry)
        elif entry[0] > base[0] and entry[0] > 0:
            base = (entry[0], entry[1], entry[2])
    kept.sort()
    h.base_views, h.base_viewers = base[1], base[2]
    for entry in kept:
        h.minutes.extend(entry)
    return h


class RedisHistory:
    def __init__(self, layout: KeyLayout, retention: float) -> None:
        if retention <= 0:
            raise ValueError("retention must be positive")
        self.layout = layout
        self._retention = retention
        self._slots = RING * max(1, int(retention // MINUTE))
        self._run: Run | None = None
        # content hash -> shard -> (views, viewers, stamp), seen since the last flush
        self._seen: dict[bytes, dict[int, tuple[int, int, float]]] = {}
        # content hash -> its name, for the keys this node packed events of (bounded there)
        self.names: dict[bytes, Name] = {}

    @property
    def retention(self) -> float:
        return self._retention

    def connect(self, run: Run) -> None:
        self._run = run

    def seen(self, content: bytes, shard: int, views: int, viewers: int, now: float) -> None:
        """A counter sub-key answered these counts at ``now``."""
        self._seen.setdefault(content, {})[shard] = (views, viewers, now)

    async def flush(self, now: float) -> None:
        """Record every key seen since the last flush (two round trips: records, rankings)."""
        if not self._seen or self._run is None:
            return
        seen, self._seen = self._seen, {}
        commands = []
        for content, shards in seen.items():
            name = self.names.get(content)
            args: list[Any] = [now, self._retention, self._slots, "\0".join(name) if name else ""]
            for shard, (views, viewers, stamp) in shards.items():
                args += [shard, views, viewers, stamp]
            commands.append(
                HISTORY.command(self.layout.history(int.from_bytes(content, "little")), args)
            )
        try:
            results = await self._run(commands)
        except Exception:
            for content, shards in seen.items():  # try again at the next sweep
                self._seen.setdefault(content, {}).update(shards)
            raise
        ranking: list[Command] = []
        for views, viewers, raw_name in results:
            label = raw_name.decode() if isinstance(raw_name, bytes) else str(raw_name)
            if not label:
                continue
            environment_id, id_type, id_value = label.split("\0", 2)
            if id_type == ENVIRONMENT:
                continue
            keys = self.layout.ranking(self._environment_code(environment_id))
            for key, member in ((keys[id_type], id_value), (keys[_ALL], f"{id_type}\0{id_value}")):
                if int(views) > 0:
                    score = int(views) * SCORE + min(int(viewers), SCORE - 1)
                    ranking.append(("ZADD", key, score, member))
                else:
                    ranking.append(("ZREM", key, member))
        if ranking:
            await self._run(ranking)

    @staticmethod
    def _environment_code(environment_id: str) -> int:
        return content_key(environment_id, ENVIRONMENT, environment_id)

    async def _records(self, contents: Sequence[int], now: float) -> list[KeyHistory]:
        assert self._run is not None
        layout = self.layout
        commands: list[Command] = []
        for content in contents:
            record, ring = layout.history(content)
            commands.append(("HMGET", record, "v", "u", "at", "pv", "pva", "pu", "pua"))
            commands.append(("GET", ring))
        answers = await self._run(commands)
        return [
            history_from_redis(answers[i], answers[i + 1], now, self._retention)
            for i in range(0, len(answers), 2)
        ]

    async def record(
        self, environment_id: str, id_type: str, id: str, now: float
    ) -> KeyHistory | None:
        if self._run is None:
            return None
        history = (await self._records([content_key(environment_id, id_type, id)], now))[0]
        return history if history.changed_at else None

    async def ranked(
        self, environment_id: str, id_type: str | None, limit: int, offset: int, now: float
    ) -> list[Ranked]:
        if self._run is None:
            return []
        key = self.layout.ranking(self._environment_code(environment_id)).get(id_type or _ALL)
        if key is None:  # not a content id type (the environment's own key is not ranked)
            return []
        (members,) = await self._run([("ZREVRANGE", key, offset, offset + limit - 1)])
        names: list[tuple[str, str]] = []
        for raw in members:
            member = raw.decode() if isinstance(raw, bytes) else str(raw)
            if id_type:
                names.append((id_type, member))
            else:
                kind, _, value = member.partition("\0")
                names.append((kind, value))
        records = await self._records(
            [content_key(environment_id, kind, value) for kind, value in names], now
        )
        return [
            (kind, value, history)
            for (kind, value), history in zip(names, records, strict=True)
            if history.views > 0
        ]
