"""Pipelines to one Redis server without redis-py's pipeline machinery: the one seam with
redis-py's (and hiredis') connection internals.

py-spy on a node under collector load showed a third of its CPU in redis-py's pipeline:
``pack_command`` encoding each of a partition call's ~20 arguments in Python (7x
``hiredis.pack_command`` on the same arguments), the per-command response callbacks and the
pipeline's bookkeeping. :class:`DirectPipeline` sends the same commands in one write, packed
by hiredis, and reads the replies with the connection's own parser (hiredis too), on a
connection of the client's own pool, so connecting, TLS, passwords, timeouts and
``NOSCRIPT`` → :class:`~redis.exceptions.NoScriptError` stay redis-py's. It is used for a
standalone Redis only, decided once (:class:`~headcount.stores.redis_lua.ScriptRunner`); a
cluster keeps redis-py's cluster pipeline, which routes by slot and follows ``MOVED``/``ASK``.

Everything of redis-py and hiredis used here is named in :data:`REDIS_PY_INTERNALS`;
``tests/stores/test_redis_wire.py`` checks each against the installed versions and compares
the bytes and replies with redis-py's pipeline, so an upgrade that changes one fails there.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Any, Final

import hiredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

__all__ = ["REDIS_PY_INTERNALS", "DirectPipeline", "pack"]

REDIS_PY_INTERNALS: Final[dict[str, Any]] = {
    "versions": {"redis": "8.1.0", "hiredis": "3.5.0"},  # last checked against
    "pool_methods": ("get_connection", "release"),  # redis.asyncio.ConnectionPool
    "connection_methods": ("send_packed_command", "read_response", "disconnect"),
    # Connection.socket_timeout, and read_response(timeout=math.inf): a read with no timeout of
    # its own (the batch has one, for all its replies: a timeout context per reply cost ~6 % of
    # a node's CPU under collector load).
    "connection_attributes": ("socket_timeout",),
    "read_response_without_timeout": "if timeout == math.inf:",
    "hiredis_functions": ("pack_command",),
}

# Retried once, on a new connection: a connection that broke (Redis restarted, an idle
# connection closed by a proxy), as the client's own Retry(NoBackoff(), 1) would. Every script
# call is idempotent (views are deduped by sequence number, counter memberships are set, not
# added), so sending a batch again is safe. Not a timeout: a Redis that hangs stays hung, and
# the request must fail within one socket timeout (the collector then answers 503).
_RETRIED: Final = (RedisConnectionError, ConnectionError)


def pack(command: Sequence[Any]) -> bytes:
    """One command in RESP, as redis-py's encoder writes it (str, bytes, int, float)."""
    return hiredis.pack_command(tuple(command))  # type: ignore[no-any-return]


class DirectPipeline:
    """Sends batches of commands over the connections of a redis-py ``Redis`` client's pool."""

    def __init__(self, client: Any) -> None:
        self._pool = client.connection_pool

    async def execute(self, commands: Sequence[Sequence[Any]]) -> list[Any]:
        """The replies, in order; an error reply is returned in its place as the exception
        (like ``pipeline.execute(raise_on_error=False)``); a broken connection raises."""
        packed = [pack(command) for command in commands]
        try:
            return await self._once(packed)
        except _RETRIED:
            return await self._once(packed)

    async def _once(self, packed: list[bytes]) -> list[Any]:
        pool = self._pool
        connection = await pool.get_connection()
        try:
            await connection.send_packed_command(packed, check_health=False)
            # One timeout for the batch's replies, the connection's socket timeout, as
            # redis-py gives each read (a hung Redis fails the batch within it).
            async with asyncio.timeout(connection.socket_timeout):
                replies = [await _reply(connection) for _ in packed]
        except TimeoutError as exc:  # asyncio's: the batch's replies did not all come in time
            await connection.disconnect()
            raise RedisTimeoutError("Timeout reading the replies of a pipeline") from exc
        except BaseException:
            # Replies may be left unread (a timeout, a cancellation): never reuse the socket.
            await connection.disconnect()
            raise
        finally:
            await pool.release(connection)
        return replies


async def _reply(connection: Any) -> Any:
    """One reply, an error reply returned as its exception; no timeout of its own."""
    try:
        return await connection.read_response(timeout=math.inf)
    except ResponseError as exc:
        return exc
