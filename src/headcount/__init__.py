"""Headcount: a self-hosted, wire-compatible engagement counts service.

The light install (``pip install headcount``) is the SDK: :func:`sign_viewer_counts` and
:class:`CountsClient` need only PyJWT, cryptography and httpx. The server lives in
``headcount[server]``.
"""

from __future__ import annotations

__all__: list[str] = []

__version__ = "0.1.0"
