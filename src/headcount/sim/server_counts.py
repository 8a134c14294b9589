"""What a server's ``GET /counts`` shows for the simulated videos: the demo's second column.

Tokens are signed with the SDK (:func:`headcount.sign_viewer_counts`, one per video, reused) and
read with its :class:`~headcount.sdk.AsyncCountsClient`; a failed read is remembered in
``error`` and the run goes on.
"""

from __future__ import annotations

import httpx

from headcount.sdk import AsyncCountsClient, CountsAPIError, sign_viewer_counts
from headcount.stores.live import Counts

__all__ = ["ServerCounts"]


class ServerCounts:
    def __init__(self, url: str, *, key_id: str, private_key: str) -> None:
        self.key_id = key_id
        self.private_key = private_key
        self.client = AsyncCountsClient(url)
        self.latest: dict[str, Counts] = {}
        self.error: str | None = None
        self._tokens: dict[str, str] = {}

    def _token(self, video_id: str) -> str:
        if video_id not in self._tokens:
            self._tokens[video_id] = sign_viewer_counts(
                video_id, type="video_id", key_id=self.key_id, private_key=self.private_key
            )
        return self._tokens[video_id]

    async def read(self, video_ids: list[str]) -> dict[str, Counts]:
        """The server's counts for ``video_ids`` (the last good reading of each)."""
        for video_id in video_ids:
            try:
                seen = await self.client.get(self._token(video_id))
            except (httpx.HTTPError, CountsAPIError) as exc:
                self.error = f"{type(exc).__name__}: {exc}"
                continue
            self.latest[video_id] = Counts(seen.views, seen.viewers)
        return {v: self.latest[v] for v in video_ids if v in self.latest}

    async def aclose(self) -> None:
        await self.client.aclose()
