"""Read ``GET /system/v1/live`` (the ids with most views now, with their peaks) with an
access token that has the ``data:read`` permission. Needs only httpx."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from headcount.history.model import LiveEntry
from headcount.sdk.client import DEFAULT_TIMEOUT, CountsAPIError, answer_body

__all__ = ["LiveClient"]


def _seconds(value: Any) -> float | None:
    return None if value is None else datetime.fromisoformat(str(value)).timestamp()


def _entry(row: Any) -> LiveEntry:
    return LiveEntry(
        id_type=str(row["id_type"]),
        id=str(row["id"]),
        views=int(row["views"]),
        viewers=int(row["viewers"]),
        peak_views=int(row["peak_views"]),
        peak_viewers=int(row["peak_viewers"]),
        peak_views_at=_seconds(row["peak_views_at"]),
        peak_viewers_at=_seconds(row["peak_viewers_at"]),
    )


class LiveClient:
    def __init__(
        self,
        base_url: str,
        token_id: str,
        token_secret: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/system/v1/live"
        self._http = httpx.Client(
            auth=(token_id, token_secret), timeout=timeout, transport=transport
        )

    def top(self, id_type: str | None = None, limit: int = 25, page: int = 1) -> list[LiveEntry]:
        params: dict[str, Any] = {"limit": limit, "page": page}
        if id_type:
            params["id_type"] = id_type
        body = answer_body(self._http.get(self.url, params=params))
        try:
            return [_entry(row) for row in body["data"]]
        except (TypeError, KeyError, ValueError):
            raise CountsAPIError(
                200, "invalid_response", ['expected {"data":[{"id_type","id",...}]}'], body
            ) from None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> LiveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
