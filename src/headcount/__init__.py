"""Headcount: a self-hosted, wire-compatible engagement counts service.

The light install (``pip install headcount``) is the SDK: :func:`sign_viewer_counts` and
:class:`CountsClient` need only PyJWT, cryptography and httpx. The server lives in
``headcount[server]``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from headcount.sdk import (
        AsyncCountsClient,
        CountsAPIError,
        CountsClient,
        ViewerCounts,
        sign_viewer_counts,
    )

__all__ = [
    "AsyncCountsClient",
    "CountsAPIError",
    "CountsClient",
    "ViewerCounts",
    "sign_viewer_counts",
]

__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # The SDK is imported on first use: the server and the CLI never pay for httpx and PyJWT
    # (~0.2 s of imports) unless they use them.
    if name in __all__:
        value = getattr(importlib.import_module("headcount.sdk"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'headcount' has no attribute {name!r}")
