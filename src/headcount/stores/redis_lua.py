"""The live store's Lua scripts: package data, registered once, run with ``EVALSHA``.

Each script is rendered once (:func:`headcount.stores.redis_codec.render_script`) and its SHA1
computed here; :meth:`ScriptRunner.load` sends ``SCRIPT LOAD`` (to every primary of a cluster, as
redis-py routes it). Calls go into pipelines as plain ``EVALSHA`` commands (in a cluster
pipeline ``execute_command("EVALSHA", ...)`` is routed by its keys; to one server they go
through :class:`~headcount.stores.redis_wire.DirectPipeline`). A Redis that lost its
script cache (restarted, or a replica promoted) answers ``NOSCRIPT``: :meth:`ScriptRunner.run`
then loads the scripts again and re-sends only the commands that failed so, once.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis.exceptions import NoScriptError

from headcount.metrics import Histogram
from headcount.stores.redis_codec import render_script
from headcount.stores.redis_wire import DirectPipeline

__all__ = ["COUNTER", "HISTORY", "PARTITION", "WRITE", "Command", "Script", "ScriptRunner"]


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str

    @classmethod
    def named(cls, name: str) -> Script:
        """A script of the package (``lua/<name>``), rendered."""
        return cls.of(name, render_script(name))

    @classmethod
    def of(cls, name: str, source: str) -> Script:
        """A script from its source, named by the SHA1 Redis gives it."""
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())  # noqa: S324

    def command(self, keys: Sequence[str], args: Sequence[Any]) -> Command:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


Command = tuple[Any, ...]

PARTITION: Final = Script.named("partition.lua")
WRITE: Final = Script.named("view_write.lua")
COUNTER: Final = Script.named("counter_apply.lua")
HISTORY: Final = Script.named("history.lua")


class ScriptRunner:
    """Loads every script into a client's servers and runs pipelines of script calls. Whether
    the client is a cluster is decided once, here (its pipelines are built differently).

    Built inside the event loop it serves, which it keeps: ``asyncio.get_running_loop()``
    checks the process id with a ``getpid`` system call on every call (Python 3.11), two per
    beacon request on this path before."""

    ALL: Final = (WRITE, PARTITION, COUNTER, HISTORY)

    def __init__(self, client: Any, *, cluster: bool, latency: Histogram | None = None) -> None:
        self._client = client
        # One observation per pipeline sent (a batch of every caller's commands), not per call.
        self._latency = latency
        # A cluster's pipeline routes each call by its keys' slot and follows MOVED/ASK; one
        # server gets the calls in one write without redis-py's pipeline machinery (a third
        # of a node's CPU under collector load: :mod:`~headcount.stores.redis_wire`).
        self._send: Callable[[Sequence[Command]], Awaitable[list[Any]]] = (
            self._send_pipelined if cluster else DirectPipeline(client).execute
        )
        self._queue: list[tuple[Sequence[Command], asyncio.Future[list[Any]]]] = []
        self._sending: set[asyncio.Task[None]] = set()
        self._loop = asyncio.get_running_loop()

    async def load(self) -> None:
        for script in self.ALL:
            await self._client.script_load(script.source)

    async def run(self, commands: Sequence[Command]) -> list[Any]:
        """The results of ``commands``, in order; raises the first error any of them met.

        Calls made in the same turn of the event loop share one pipeline (a group commit):
        under load the requests of a turn cost Redis and redis-py one round trip together,
        not one each. ``NOSCRIPT`` failures are retried once after loading the scripts."""
        future: asyncio.Future[list[Any]] = self._loop.create_future()
        self._queue.append((commands, future))
        if len(self._queue) == 1:
            self._loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        queue, self._queue = self._queue, []
        task = self._loop.create_task(self._deliver(queue))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _deliver(
        self, queue: list[tuple[Sequence[Command], asyncio.Future[list[Any]]]]
    ) -> None:
        flat = [command for commands, _ in queue for command in commands]
        started = time.perf_counter()
        try:
            results = await self._send_retrying(flat)
        except Exception as exc:  # the pipeline itself failed (connection lost...): all of it
            for _, future in queue:
                if not future.done():
                    future.set_exception(exc)
            return
        if self._latency is not None:
            self._latency.since(started)
        start = 0
        for commands, future in queue:
            part = results[start : start + len(commands)]
            start += len(commands)
            if future.done():  # its caller went away
                continue
            error = next((r for r in part if isinstance(r, Exception)), None)
            if error is None:
                future.set_result(part)
            else:
                future.set_exception(error)

    async def _send_retrying(self, commands: Sequence[Command]) -> list[Any]:
        results = await self._send(commands)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            await self.load()
            retried = await self._send([commands[i] for i in missing])
            for i, result in zip(missing, retried, strict=True):
                results[i] = result
        return results

    async def _send_pipelined(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self._client.pipeline()
        for command in commands:
            pipe.execute_command(*command)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        return results
