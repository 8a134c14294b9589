"""POST / and /collect — placeholder until the collector issue lands."""

from __future__ import annotations

from headcount.errors import NotFound
from headcount.http.reply import Reply
from headcount.runtime import Runtime


class CollectorEndpoint:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def post(self, body: bytes, now: float) -> Reply:
        raise NotFound("The collector is not built yet.")
