"""The seam with redis-py's and hiredis' connection internals (``REDIS_PY_INTERNALS``, used by
:class:`~headcount.stores.redis_wire.DirectPipeline`): each name is checked against the
installed versions, the bytes against redis-py's own encoder, and the replies against
redis-py's pipeline on a real Redis, so an upgrade that changes one fails here, by name."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Any

import hiredis
import pytest
import redis
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, ConnectionPool
from redis.exceptions import NoScriptError, ResponseError

from headcount.stores.redis_wire import REDIS_PY_INTERNALS, DirectPipeline, pack
from tests.redis_servers import RedisServer, new_key_prefix

pytestmark = pytest.mark.anyio


def test_the_seam_was_checked_against_these_versions() -> None:
    assert {"redis": redis.__version__, "hiredis": hiredis.__version__} == REDIS_PY_INTERNALS[
        "versions"
    ], (
        "redis-py or hiredis changed: re-read DirectPipeline's use of each name in "
        "REDIS_PY_INTERNALS against the new release, then update the versions there"
    )


def test_every_internal_the_direct_pipeline_uses_is_still_there() -> None:
    missing = [n for n in REDIS_PY_INTERNALS["pool_methods"] if not hasattr(ConnectionPool, n)]
    missing += [n for n in REDIS_PY_INTERNALS["connection_methods"] if not hasattr(Connection, n)]
    missing += [n for n in REDIS_PY_INTERNALS["hiredis_functions"] if not hasattr(hiredis, n)]
    connection = Connection()
    missing += [
        n for n in REDIS_PY_INTERNALS["connection_attributes"] if not hasattr(connection, n)
    ]
    assert not missing, f"no longer there: {missing}"
    # read_response(timeout=math.inf) reads with no timeout of its own: DirectPipeline puts one
    # around the whole batch instead.
    source = inspect.getsource(Connection.read_response)
    assert REDIS_PY_INTERNALS["read_response_without_timeout"] in source, (
        "read_response's math.inf branch is gone: DirectPipeline's replies need another way "
        "to be read without a timeout each"
    )


# The shapes of every argument the live store sends: names, key names, ints, floats (server
# time), bytes (packed events, ids with any byte).
ARGUMENTS: list[tuple[Any, ...]] = [
    ("EVALSHA", "0" * 40, 2, "hc:{p7}:due", "hc:{p7}:s3", b"\x00\xff\r\n", 1796129457.361, 0),
    ("EVALSHA", "f" * 40, 1, "hc:{c0a}.1", "read", 60.0, -1, 1e-05, 12345678901234567890),
    ("ZRANGEBYSCORE", "hc:{p0}:due", "-inf", 1796129457.25),
    ("HMGET", "hc:{p0}:n", "v", "h"),
]


@pytest.mark.parametrize("command", ARGUMENTS)
def test_commands_are_packed_as_redis_py_packs_them(command: tuple[Any, ...]) -> None:
    assert pack(command) == b"".join(Connection().pack_command(*command))


@pytest.fixture
async def client(redis_standalone: RedisServer) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_standalone.url)
    yield client
    await client.aclose()


async def test_replies_are_those_of_redis_py_pipeline(client: Redis) -> None:
    """For the commands the live store sends (EVALSHA, ZRANGEBYSCORE, HMGET) and their errors.
    Replies are raw: redis-py's per-command callbacks (``SET`` -> ``True``...) are not run,
    and none of these has one that changes its reply."""
    key = new_key_prefix()
    await client.set(key, b"\x00value")
    await client.hset(key + "h", "a", 1)
    await client.zadd(key + "z", {"m": 1.5})
    sha = await client.script_load(
        "return {1, 'two', {KEYS[1], ARGV[1]}, redis.status_reply('OK')}"
    )
    commands: list[tuple[Any, ...]] = [
        ("EVALSHA", sha, 1, key, 2.5),
        ("EVALSHA", "0" * 40, 0),  # unknown script: NOSCRIPT, in its place
        ("HMGET", key + "h", "a", "b"),
        ("ZRANGEBYSCORE", key + "z", "-inf", 2),
        ("ZRANGEBYSCORE", key, "-inf", 2),  # WRONGTYPE: an error reply, in its place
        ("EVALSHA", sha, 1, key, b"\xff"),  # and the connection goes on after errors
    ]
    direct = await DirectPipeline(client).execute(commands)
    pipe = client.pipeline(transaction=False)
    for command in commands:
        pipe.execute_command(*command)
    reference = await pipe.execute(raise_on_error=False)
    assert [_comparable(r) for r in direct] == [_comparable(r) for r in reference]
    assert isinstance(direct[1], NoScriptError) and isinstance(direct[4], ResponseError)
    assert direct[0] == [1, b"two", [key.encode(), b"2.5"], b"OK"]
    assert direct[2:4] == [[b"1", None], [b"m"]]


async def test_a_broken_connection_is_replaced_once(
    client: Redis, redis_standalone: RedisServer
) -> None:
    pipeline = DirectPipeline(client)
    assert await pipeline.execute([("ECHO", "first")]) == [b"first"]
    # Every client connection the server has is killed (the pool's idle one among them).
    async with Redis.from_url(redis_standalone.url) as killer:
        await killer.execute_command("CLIENT", "KILL", "TYPE", "normal")
    assert await pipeline.execute([("ECHO", "again")]) == [b"again"]


def _comparable(reply: Any) -> Any:
    if isinstance(reply, Exception):
        return (type(reply), str(reply))
    return reply
