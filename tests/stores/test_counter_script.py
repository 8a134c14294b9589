"""``counter_apply.lua`` on a real Redis, called as the store calls it: memberships set and
removed, leases that lapse, and what a call costs (the ``#n`` bound spares most calls the
look for lapsed leases)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from redis import Redis

from headcount.stores.redis_lua import COUNTER
from tests.redis_servers import RedisServer
from tests.stores.test_redis_cost import command_calls

H, L = "{c1}:m1.0", "{c1}:m1.0:l"
TTL = 100_000


def _membership(view: int, viewer: int) -> bytes:
    return view.to_bytes(8, "little") + b"w" + viewer.to_bytes(8, "little")


@pytest.fixture
def redis(private_redis: RedisServer) -> Iterator[Redis]:
    client = Redis.from_url(private_redis.url)
    client.script_load(COUNTER.source)
    yield client
    client.close()


def _call(redis: Redis, lapsed_before: float, lease: float, *ops: bytes) -> Any:
    ttl = TTL if ops else 0
    return redis.evalsha(COUNTER.sha, 2, H, L, lapsed_before, lease, ttl, *ops)


def test_a_lease_lapses_at_the_first_call_after_it_and_not_before(redis: Redis) -> None:
    assert _call(redis, 50, 100, b"+" + _membership(1, 7)) == [1, 1]
    assert _call(redis, 60, 130, b"+" + _membership(2, 7)) == [2, 1]  # same viewer
    assert _call(redis, 100, 0) == [2, 1]  # a lease ending at 100 holds until after 100
    assert _call(redis, 101, 0) == [1, 1]  # view 1 lapsed; view 2 holds to 130
    assert _call(redis, 131, 0) == [0, 0]
    assert redis.exists(H, L) == 0


def test_a_sub_key_from_before_the_bound_still_drops_its_lapsed_leases(redis: Redis) -> None:
    assert _call(redis, 50, 100, b"+" + _membership(1, 7)) == [1, 1]
    redis.hdel(H, "#n")  # as the sub-keys of an earlier version hold them
    assert _call(redis, 101, 0) == [0, 0]


def test_a_change_costs_four_commands_and_a_read_one(
    redis: Redis, private_redis: RedisServer
) -> None:
    _call(redis, 50, 100, b"+" + _membership(1, 7))
    redis.config_resetstat()
    assert _call(redis, 60, 110, b"+" + _membership(2, 8)) == [2, 2]
    assert _call(redis, 70, 115, b"-" + _membership(1, 7)) == [1, 1]
    assert _call(redis, 80, 0) == [1, 1]
    calls = command_calls(private_redis.port)
    calls.pop("config|resetstat")
    # add: HMGET ZADD HINCRBY HSET; remove: HMGET ZREM HINCRBY (HDEL: its viewer's last view)
    # HSET; read: HMGET.
    expected = {"hmget": 3, "zadd": 1, "zrem": 1, "hincrby": 2, "hdel": 1, "hset": 2}
    assert calls == {"evalsha": 3, **expected}
