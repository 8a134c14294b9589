"""The live store's Lua scripts: package data, registered once, run with ``EVALSHA``.

Each script is rendered once (:func:`headcount.stores.redis_codec.render_script`) and its SHA1
computed here; :meth:`ScriptRunner.load` sends ``SCRIPT LOAD`` (to every primary of a cluster, as
redis-py routes it). Calls go into pipelines as plain ``EVALSHA`` commands (in a cluster
pipeline ``execute_command("EVALSHA", ...)`` is routed by its keys). A Redis that lost its
script cache (restarted, or a replica promoted) answers ``NOSCRIPT``: :meth:`ScriptRunner.run`
then loads the scripts again and re-sends only the commands that failed so, once.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from redis.exceptions import NoScriptError

from headcount.stores.redis_codec import render_script

__all__ = ["COUNTER", "PARTITION", "Command", "Script", "ScriptRunner"]


@dataclass(frozen=True)
class Script:
    name: str
    source: str
    sha: str

    @classmethod
    def named(cls, name: str) -> Script:
        source = render_script(name)
        return cls(name, source, hashlib.sha1(source.encode()).hexdigest())  # noqa: S324

    def command(self, keys: Sequence[str], args: Sequence[Any]) -> Command:
        return ("EVALSHA", self.sha, len(keys), *keys, *args)


Command = tuple[Any, ...]

PARTITION: Final = Script.named("partition.lua")
COUNTER: Final = Script.named("counter_apply.lua")


class ScriptRunner:
    """Loads every script into a client's servers and runs pipelines of script calls. Whether
    the client is a cluster is decided once, here (its pipelines are built differently)."""

    ALL: Final = (PARTITION, COUNTER)

    def __init__(self, client: Any, *, cluster: bool) -> None:
        self._client = client
        self._pipeline: Callable[[], Any] = (
            client.pipeline if cluster else functools.partial(client.pipeline, transaction=False)
        )

    async def load(self) -> None:
        for script in self.ALL:
            await self._client.script_load(script.source)

    async def run(self, commands: Sequence[Command]) -> list[Any]:
        """Send ``commands`` in one pipeline; their results in order. Raises the first error
        any command met, after one reload-and-retry of the ``NOSCRIPT`` failures."""
        results = await self._send(commands)
        missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
        if missing:
            await self.load()
            retried = await self._send([commands[i] for i in missing])
            for i, result in zip(missing, retried, strict=True):
                results[i] = result
        for result in results:
            if isinstance(result, Exception):
                raise result
        return results

    async def _send(self, commands: Sequence[Command]) -> list[Any]:
        pipe = self._pipeline()
        for command in commands:
            pipe.execute_command(*command)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        return results
