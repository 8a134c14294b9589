"""What the attack-named token tests share: the app's verifier, and assertions on a refused or
accepted GET /counts."""

from __future__ import annotations

import base64

import httpx

from headcount.auth.tokens import TokenVerifier
from headcount.http.app import HeadcountApp


def verifier_of(app: HeadcountApp) -> TokenVerifier:
    assert app.counts is not None
    return app.counts.verifier


async def refused(client: httpx.AsyncClient, token: str, error_type: str) -> str:
    """GET /counts with ``token``; assert a 403 envelope of ``error_type``; return its message."""
    response = await client.get("/counts", params={"token": token})
    assert response.status_code == 403, response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"
    error = response.json()["error"]
    assert error["type"] == error_type, error
    assert len(error["messages"]) == 1 and error["messages"][0]
    return str(error["messages"][0])


async def accepted(client: httpx.AsyncClient, token: str) -> None:
    response = await client.get("/counts", params={"token": token})
    assert response.status_code == 200, response.text


def b64decode(segment_text: str) -> bytes:
    return base64.urlsafe_b64decode(segment_text + "=" * (-len(segment_text) % 4))


def client_of(app: HeadcountApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
