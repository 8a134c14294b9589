"""GET /counts — placeholder until the Counts API issue lands."""

from __future__ import annotations

from headcount.errors import NotFound
from headcount.http.reply import Reply
from headcount.runtime import Runtime


class CountsEndpoint:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    async def get(self, query_string: bytes, now: float) -> Reply:
        raise NotFound("The counts API is not built yet.")
