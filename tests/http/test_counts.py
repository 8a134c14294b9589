"""GET /counts over the real app in-process: the answer's shape, CORS, caching headers, the
parameter spellings, and the verified-token cache (proved by counting RSA verifications)."""

from __future__ import annotations

import re
import time

import httpx
import orjson
import pytest

from headcount.auth.tokens import TokenVerifier
from headcount.errors import BadRequest
from headcount.http.app import HeadcountApp
from headcount.http.counts import token_from_query
from headcount.runtime import Runtime
from headcount.settings import Settings
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.live import Counts
from tests.conftest import FakeClock
from tests.token_kit import TableLiveStore, Tenant

pytestmark = pytest.mark.anyio

UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.fixture
def tenant(control: MemoryControlStore, clock: FakeClock) -> Tenant:
    return Tenant(control, "acme", clock.now)


def verifier_of(app: HeadcountApp) -> TokenVerifier:
    assert app.counts is not None
    return app.counts.verifier


async def test_an_id_nobody_watches_reads_zero(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    response = await client.get("/counts", params={"token": tenant.token(clock.now)})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert list(body) == ["data"]
    assert len(body["data"]) == 1
    assert body["data"][0]["views"] == 0
    assert body["data"][0]["viewers"] == 0


async def test_updated_at_is_the_snapshot_time_in_utc_seconds(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, runtime: Runtime
) -> None:
    response = await client.get("/counts", params={"token": tenant.token(clock.now)})
    updated_at = response.json()["data"][0]["updated_at"]
    assert UTC_SECONDS.fullmatch(updated_at)
    expected = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(runtime.live.updated_at))
    assert updated_at == expected
    assert runtime.live.updated_at == clock.now == 1_800_000_000.0
    assert updated_at == "2027-01-15T08:00:00Z"


async def test_counts_read_the_counter_key_environment_aud_sub(
    settings: Settings, control: MemoryControlStore, clock: FakeClock
) -> None:
    live = TableLiveStore()
    runtime = Runtime(settings=settings, control=control, live=live, clock=clock)
    app = HeadcountApp(runtime, clock=clock)
    tenant = Tenant(control, "acme", clock.now)
    env = tenant.environment.id
    live.table[(env, "video_id", "abc")] = Counts(95, 94)
    live.table[(env, "asset_id", "abc")] = Counts(3, 2)  # same id, another id type
    await runtime.start()
    try:
        async with _client(app) as client:
            seen = {}
            for aud in ("video_id", "asset_id", "playback_id", "live_stream_id"):
                token = tenant.token(clock.now, aud=aud, sub="abc")
                data = (await client.get("/counts", params={"token": token})).json()["data"][0]
                seen[aud] = (data["views"], data["viewers"])
    finally:
        await runtime.stop()
    assert seen == {
        "video_id": (95, 94),
        "asset_id": (3, 2),
        "playback_id": (0, 0),
        "live_stream_id": (0, 0),
    }


async def test_uppercase_token_parameter_is_accepted(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    response = await client.get("/counts", params={"TOKEN": tenant.token(clock.now)})
    assert response.status_code == 200


async def test_percent_encoded_token_and_other_parameters_are_accepted(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now)
    encoded = token.replace(".", "%2E").replace("-", "%2D")
    response = await client.get(f"/counts?cachebust=1&token={encoded}&x=y")
    assert response.status_code == 200


@pytest.mark.parametrize("query", ["", "?", "?token=", "?tok=abc", "?video_id=1", "?TOKEN"])
async def test_missing_token_is_400(client: httpx.AsyncClient, query: str) -> None:
    response = await client.get("/counts" + query)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_parameters"
    assert "token" in error["messages"][0]
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"


async def test_cors_on_every_answer(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    ok = await client.get("/counts", params={"token": tenant.token(clock.now)})
    missing = await client.get("/counts")
    refused = await client.get("/counts", params={"token": "not-a-jwt"})
    expired = await client.get(
        "/counts", params={"token": tenant.token(clock.now, exp=int(clock.now) - 600)}
    )
    assert [r.status_code for r in (ok, missing, refused, expired)] == [200, 400, 403, 403]
    for response in (ok, missing, refused, expired):
        assert response.headers["access-control-allow-origin"] == "*"


async def test_preflight_allows_a_cross_origin_get(client: httpx.AsyncClient) -> None:
    response = await client.options(
        "/counts",
        headers={
            "Origin": "https://player.example",
            "Access-Control-Request-Method": "GET",
        },
    )
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == "*"
    assert "GET" in response.headers["access-control-allow-methods"]


async def test_cache_control_allows_at_most_the_snapshot_interval(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, settings: Settings
) -> None:
    response = await client.get("/counts", params={"token": tenant.token(clock.now)})
    assert response.headers["cache-control"] == (
        f"public, max-age={int(settings.snapshot_interval)}"
    )


async def test_cache_control_follows_the_snapshot_interval_setting(
    settings: Settings, control: MemoryControlStore, clock: FakeClock
) -> None:
    for interval, max_age in ((5.0, 5), (2.5, 2), (0.5, 0)):
        runtime = Runtime(
            settings=settings.replace(snapshot_interval=interval),
            control=control,
            live=TableLiveStore(),
            clock=clock,
        )
        tenant = Tenant(control, f"env{max_age}x{int(interval * 10)}", clock.now)
        app = HeadcountApp(runtime, clock=clock)
        async with _client(app) as client:
            response = await client.get("/counts", params={"token": tenant.token(clock.now)})
        assert response.headers["cache-control"] == f"public, max-age={max_age}"


async def test_head_answers_headers_without_a_body(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    response = await client.head("/counts", params={"token": tenant.token(clock.now)})
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"


async def test_a_repeated_token_costs_no_rsa_verify(
    client: httpx.AsyncClient, app: HeadcountApp, tenant: Tenant, clock: FakeClock
) -> None:
    verifier = verifier_of(app)
    token = tenant.token(clock.now)
    for _ in range(25):
        response = await client.get("/counts", params={"token": token})
        assert response.status_code == 200
        clock.advance(2.0)  # a browser polling
    assert verifier.rsa_verifications == 1
    assert verifier.keyring.store_lookups == 1
    # Another token of the same key is verified once, without a new key lookup.
    other = tenant.token(clock.now, sub="video-2")
    for _ in range(3):
        await client.get("/counts", params={"token": other})
    assert verifier.rsa_verifications == 2
    assert verifier.keyring.store_lookups == 1


async def test_a_refused_token_is_not_cached(
    client: httpx.AsyncClient, app: HeadcountApp, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now, nbf=int(clock.now) + 60)
    assert (await client.get("/counts", params={"token": token})).status_code == 403
    assert len(verifier_of(app).cache) == 0
    clock.advance(60)  # now the same token is valid
    assert (await client.get("/counts", params={"token": token})).status_code == 200


def _client(app: HeadcountApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


@pytest.mark.parametrize(
    ("query", "token"),
    [
        (b"token=abc.def.ghi", "abc.def.ghi"),
        (b"TOKEN=abc", "abc"),
        (b"token=a%2Eb", "a.b"),
        (b"token=a+b", "a b"),
        (b"x=1&token=abc", "abc"),
        (b"token=abc&x=1", "abc"),
        (b"token==abc", "=abc"),
        (b"token=\xff", "\xff"),
    ],
)
def test_token_from_query_reads_the_token_parameter(query: bytes, token: str) -> None:
    assert token_from_query(query) == token


@pytest.mark.parametrize("query", [b"token=", b"tokens=abc", b"Token=abc", b"x=1"])
def test_token_from_query_without_a_token_is_a_bad_request(query: bytes) -> None:
    with pytest.raises(BadRequest, match="Missing the token"):
        token_from_query(query)


@pytest.mark.parametrize(
    "query",
    [b"token=&token=abc", b"token=a&token=b", b"TOKEN=upper&token=lower", b"token=a&x=1&token="],
)
def test_token_from_query_given_twice_is_a_bad_request(query: bytes) -> None:
    # Parameter pollution: whichever one we took, a proxy or a log could read the other.
    with pytest.raises(BadRequest, match="Give the token parameter once"):
        token_from_query(query)


async def test_the_body_is_what_orjson_would_write(
    settings: Settings, control: MemoryControlStore, clock: FakeClock
) -> None:
    live = TableLiveStore()
    runtime = Runtime(settings=settings, control=control, live=live, clock=clock)
    app = HeadcountApp(runtime, clock=clock)
    tenant = Tenant(control, "acme", clock.now)
    live.table[(tenant.environment.id, "video_id", "big")] = Counts(1_234_567_890_123, 0)
    await runtime.start()
    try:
        async with _client(app) as client:
            response = await client.get(
                "/counts", params={"token": tenant.token(clock.now, sub="big")}
            )
    finally:
        await runtime.stop()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(clock.now))
    expected = {"data": [{"views": 1_234_567_890_123, "viewers": 0, "updated_at": stamp}]}
    assert response.content == orjson.dumps(expected)
