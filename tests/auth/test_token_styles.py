"""Token styles real clients produce, each accepted by GET /counts.

Keys are created through our System API (in-process), exactly as a customer would: the
private key arrives as base64 of a PKCS#1 PEM. The tokens are then signed the way the Mux
guide's examples and the real ``@mux/mux-node@15.3.0`` SDK (run with node) sign them.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from headcount import sign_viewer_counts
from headcount.auth.environments import initialize
from headcount.http.app import HeadcountApp
from headcount.runtime import Runtime
from headcount.settings import Settings
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.live import Counts
from tests.conftest import FakeClock
from tests.token_kit import TableLiveStore, forge

pytestmark = pytest.mark.anyio

CLIENTS = Path(__file__).resolve().parent.parent / "clients"
NODE_TIMEOUT = 60.0


class ApiKey:
    """A signing key as the System API hands it out."""

    def __init__(self, created: dict[str, Any]) -> None:
        self.id: str = created["id"]
        self.private_key_base64: str = created["private_key"]
        self.pem: bytes = base64.b64decode(self.private_key_base64)

    def key_object(self) -> rsa.RSAPrivateKey:
        key = serialization.load_pem_private_key(self.pem, password=None)
        assert isinstance(key, rsa.RSAPrivateKey)
        return key

    def pkcs8_pem(self) -> bytes:
        return self.key_object().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


@pytest.fixture
def real_time(clock: FakeClock) -> float:
    # Real SDKs stamp exp from the machine clock, so the server's clock must agree with it.
    clock.now = time.time()
    return clock.now


@pytest.fixture
async def api_key(
    client: httpx.AsyncClient, control: MemoryControlStore, real_time: float
) -> ApiKey:
    _, access = initialize(control, "production", int(real_time))
    response = await client.post("/system/v1/signing-keys", auth=(access.token.id, access.secret))
    assert response.status_code == 201, response.text
    return ApiKey(response.json()["data"])


async def counts(client: httpx.AsyncClient, token: str) -> dict[str, Any]:
    response = await client.get("/counts", params={"token": token})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"][0]
    return data


def header_and_claims(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, payload, _ = token.split(".")
    return tuple(  # type: ignore[return-value]
        json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
        for part in (head, payload)
    )


def mux_node_sign(jobs: list[dict[str, Any]]) -> list[str]:
    """Tokens signed by @mux/mux-node's ``mux.jwt.signViewerCounts``, one per job."""
    result = subprocess.run(
        ["node", "sign_viewer_counts.mjs"],
        input=json.dumps(jobs),
        capture_output=True,
        text=True,
        cwd=CLIENTS,
        timeout=NODE_TIMEOUT,
    )
    assert result.returncode == 0, result.stderr
    tokens: list[str] = json.loads(result.stdout)
    assert len(tokens) == len(jobs)
    return tokens


async def test_seed_python_example_kid_in_header(
    client: httpx.AsyncClient, api_key: ApiKey, real_time: float
) -> None:
    # The guide's Python example, verbatim apart from the values.
    private_key = base64.b64decode(api_key.private_key_base64)
    payload = {"sub": "my-video", "aud": "video_id", "exp": int(time.time()) + 3600}
    headers = {"kid": api_key.id}
    token = jwt.encode(payload, private_key, algorithm="RS256", headers=headers)
    header, claims = header_and_claims(token)
    assert header["kid"] == api_key.id and "kid" not in claims
    data = await counts(client, token)
    assert (data["views"], data["viewers"]) == (0, 0)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", data["updated_at"])


@pytest.mark.parametrize("typ", ["JWT", None], ids=["with-typ(go,php)", "without-typ(ruby)"])
async def test_seed_go_php_ruby_examples_kid_as_payload_claim(
    client: httpx.AsyncClient, api_key: ApiKey, typ: str | None
) -> None:
    claims = {
        "sub": "my-video",
        "aud": "video_id",
        "exp": int(time.time()) + 600,
        "kid": api_key.id,
    }
    # PyJWT drops a falsy typ: ruby-jwt's header is {"alg":"RS256"} alone.
    token = jwt.encode(claims, api_key.pem, algorithm="RS256", headers={"typ": typ})
    header, _ = header_and_claims(token)
    assert "kid" not in header and header.get("typ") == typ
    assert (await counts(client, token))["views"] == 0


async def test_extra_claims_and_unusual_typ_are_accepted(
    client: httpx.AsyncClient, api_key: ApiKey
) -> None:
    claims = {
        "sub": "my-video",
        "aud": "video_id",
        "exp": int(time.time()) + 600,
        "kid": api_key.id,
        "iss": "my-app",
        "custom": {"nested": [1, 2]},
        "iat": int(time.time()),
        "nbf": int(time.time()) - 5,
    }
    token = forge({"alg": "RS256", "typ": "at+jwt", "x": 1}, claims, api_key.key_object())
    assert (await counts(client, token))["views"] == 0


async def test_mux_node_sign_viewer_counts_all_four_types(
    client: httpx.AsyncClient, api_key: ApiKey
) -> None:
    types = ["video", "asset", "playback", "live_stream"]
    jobs = [
        {"id": f"id-{t}", "type": t, "keyId": api_key.id, "keySecret": api_key.private_key_base64}
        for t in types
    ]
    tokens = mux_node_sign(jobs)
    for kind, token in zip(types, tokens, strict=True):
        header, claims = header_and_claims(token)
        assert header == {"alg": "RS256", "typ": "JWT"}
        assert claims["kid"] == api_key.id and claims["sub"] == f"id-{kind}"
        assert claims["aud"] == f"{kind}_id"
        assert (await counts(client, token))["views"] == 0


async def test_mux_node_tokens_read_their_own_counter_key(
    settings: Settings, control: MemoryControlStore, clock: FakeClock
) -> None:
    # The same four tokens against a live store with numbers: each reads (env, aud, sub).
    clock.now = time.time()
    live = TableLiveStore()
    runtime = Runtime(settings=settings, control=control, live=live, clock=clock)
    app = HeadcountApp(runtime, clock=clock)
    environment, access = initialize(control, "production", int(clock.now))
    types = ["video", "asset", "playback", "live_stream"]
    for n, kind in enumerate(types, start=1):
        live.table[(environment.id, f"{kind}_id", "shared-id")] = Counts(10 * n, n)
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            created = await client.post(
                "/system/v1/signing-keys", auth=(access.token.id, access.secret)
            )
            key = ApiKey(created.json()["data"])
            jobs = [
                {"id": "shared-id", "type": t, "keyId": key.id, "keySecret": key.private_key_base64}
                for t in types
            ]
            for n, token in enumerate(mux_node_sign(jobs), start=1):
                data = await counts(client, token)
                assert (data["views"], data["viewers"]) == (10 * n, n)
    finally:
        await runtime.stop()


async def test_mux_node_accepts_raw_pem_and_pkcs8_keys(
    client: httpx.AsyncClient, api_key: ApiKey
) -> None:
    pkcs8 = api_key.pkcs8_pem()
    secrets = {
        "base64 PKCS#1 (System API)": api_key.private_key_base64,
        "raw PKCS#1 PEM": api_key.pem.decode(),
        "raw PKCS#8 PEM": pkcs8.decode(),
        "base64 PKCS#8": base64.b64encode(pkcs8).decode(),
    }
    jobs = [
        {"id": "v", "type": "video", "keyId": api_key.id, "keySecret": secret, "expiration": "1h"}
        for secret in secrets.values()
    ]
    for token in mux_node_sign(jobs):
        _, claims = header_and_claims(token)
        assert abs(claims["exp"] - (time.time() + 3600)) < 60
        assert (await counts(client, token))["views"] == 0


@pytest.mark.parametrize("form", ["base64-pkcs1", "base64-pkcs8", "pem-pkcs1", "pem-pkcs8"])
async def test_python_sdk_accepts_base64_and_raw_pem_keys(
    client: httpx.AsyncClient, api_key: ApiKey, form: str
) -> None:
    pkcs8 = api_key.pkcs8_pem()
    private_key = {
        "base64-pkcs1": api_key.private_key_base64,
        "base64-pkcs8": base64.b64encode(pkcs8).decode(),
        "pem-pkcs1": api_key.pem.decode(),
        "pem-pkcs8": pkcs8,
    }[form]
    token = sign_viewer_counts(
        "my-video", type="video", key_id=api_key.id, private_key=private_key, expires_in="1h"
    )
    assert (await counts(client, token))["views"] == 0


async def test_key_deleted_through_the_system_api_refuses_its_cached_tokens_at_once(
    client: httpx.AsyncClient, control: MemoryControlStore, real_time: float
) -> None:
    _, access = initialize(control, "staging", int(real_time))
    auth = (access.token.id, access.secret)
    created = await client.post("/system/v1/signing-keys", auth=auth)
    key = ApiKey(created.json()["data"])
    (token,) = mux_node_sign(
        [{"id": "v", "type": "video", "keyId": key.id, "keySecret": key.private_key_base64}]
    )
    assert (await counts(client, token))["views"] == 0  # verified and cached
    deleted = await client.delete(f"/system/v1/signing-keys/{key.id}", auth=auth)
    assert deleted.status_code == 204
    response = await client.get("/counts", params={"token": token})
    assert response.status_code == 403
    assert response.json()["error"]["type"] == "unknown_key"
