"""Read ``GET /counts``: typed counts, or an exception carrying Mux's error envelope.

Works against Headcount and against Mux itself (``CountsClient("https://stats.mux.com")``):
the wire format is the same. Needs only httpx.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

import httpx

__all__ = ["AsyncCountsClient", "CountsAPIError", "CountsClient", "ViewerCounts", "answer_body"]

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True, slots=True)
class ViewerCounts:
    views: int  # views happening now (not unique)
    viewers: int  # distinct viewers among them
    updated_at: datetime  # when the counters were last brought up to date (UTC)


class CountsAPIError(Exception):
    """An answer other than counts: ``error_type`` and ``messages`` come from the envelope
    ``{"error":{"type":...,"messages":[...]}}`` (``envelope`` is the whole body, when JSON)."""

    def __init__(
        self, status_code: int, error_type: str, messages: list[str], envelope: Any = None
    ) -> None:
        self.status_code = status_code
        self.error_type = error_type
        self.messages = messages
        self.envelope = envelope
        super().__init__(f"{status_code} {error_type}: {'; '.join(messages) or 'no message'}")


def _counts_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    return base if base.endswith("/counts") else base + "/counts"


def answer_body(response: httpx.Response) -> Any:
    """The JSON body of a 200 answer; :class:`CountsAPIError` (from Mux's error envelope when
    there is one) for any other status."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict):
            messages = error.get("messages")
            raise CountsAPIError(
                response.status_code,
                str(error.get("type") or "error"),
                [str(m) for m in messages] if isinstance(messages, list) else [],
                body,
            )
        raise CountsAPIError(
            response.status_code,
            "http_error",
            [f"HTTP {response.status_code} without an error envelope"],
            body,
        )
    return body


def parse_counts_response(response: httpx.Response) -> ViewerCounts:
    """The counts in a ``/counts`` answer, or :class:`CountsAPIError`."""
    body = answer_body(response)
    try:
        first = body["data"][0]
        return ViewerCounts(
            views=int(first["views"]),
            viewers=int(first["viewers"]),
            updated_at=datetime.fromisoformat(first["updated_at"]).astimezone(UTC),
        )
    except (TypeError, KeyError, IndexError, ValueError):
        raise CountsAPIError(
            response.status_code,
            "invalid_response",
            ['expected {"data":[{"views":N,"viewers":M,"updated_at":"..."}]}'],
            body,
        ) from None


class CountsClient:
    """``CountsClient("http://127.0.0.1:8000").get(token)`` → :class:`ViewerCounts`."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = _counts_url(base_url)
        self._http = httpx.Client(timeout=timeout, transport=transport)

    def get(self, token: str) -> ViewerCounts:
        return parse_counts_response(self._http.get(self.url, params={"token": token}))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> CountsClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AsyncCountsClient:
    """The asyncio twin of :class:`CountsClient`: ``await client.get(token)``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = _counts_url(base_url)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def get(self, token: str) -> ViewerCounts:
        return parse_counts_response(await self._http.get(self.url, params={"token": token}))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncCountsClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
