"""The SDK: sign viewer-count tokens and read ``/counts``, with PyJWT, cryptography and httpx
only (no server packages), so it works from the light install ``pip install headcount``."""

from __future__ import annotations

from headcount.sdk.client import AsyncCountsClient, CountsAPIError, CountsClient, ViewerCounts
from headcount.sdk.signing import load_private_key, parse_timespan, sign_viewer_counts

__all__ = [
    "AsyncCountsClient",
    "CountsAPIError",
    "CountsClient",
    "ViewerCounts",
    "load_private_key",
    "parse_timespan",
    "sign_viewer_counts",
]
