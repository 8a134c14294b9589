"""Security regression tests for GET /counts tokens, the claims:
one test per attack, named after it.

Every test drives the real app in-process (``client``) with tokens forged byte by byte, and
checks the status, the Mux error envelope and its type.
"""

from __future__ import annotations

import httpx
import pytest

from headcount.settings import Settings
from tests.auth.attack_kit import accepted, refused
from tests.conftest import FakeClock
from tests.token_kit import (
    ABSENT,
    Tenant,
    b64url,
    rs256_signature,
    segment,
)

pytestmark = pytest.mark.anyio


# -- claims -----------------------------------------------------------------------------


async def test_expired_token_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now, exp=int(clock.now) - 3600)
    message = await refused(client, token, "expired_token")
    assert "expired" in message


async def test_missing_exp_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    # A token without exp would be valid forever.
    message = await refused(client, tenant.token(clock.now, exp=ABSENT), "missing_claim")
    assert "exp" in message


async def test_missing_sub_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    message = await refused(client, tenant.token(clock.now, sub=ABSENT), "missing_claim")
    assert "sub" in message


async def test_missing_aud_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    # Without aud, an id could be read as any of the four id types.
    message = await refused(client, tenant.token(clock.now, aud=ABSENT), "missing_claim")
    assert "aud" in message


@pytest.mark.parametrize(
    "aud", ["livestream_id", "v", "playback", "VIDEO_ID", "", ["video_id"], None, 1]
)
async def test_aud_not_one_of_the_four_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, aud: object
) -> None:
    message = await refused(client, tenant.token(clock.now, aud=aud), "invalid_audience")
    assert "video_id" in message and "live_stream_id" in message


@pytest.mark.parametrize("exp", ["1900000000", True, None, [1], {"at": 1}])
async def test_non_numeric_exp_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, exp: object
) -> None:
    await refused(client, tenant.token(clock.now, exp=exp), "invalid_claim")


async def test_infinite_exp_is_refused(client: httpx.AsyncClient, tenant: Tenant) -> None:
    # 1e400 overflows a double: a token that would never expire.
    payload = b'{"kid":"%s","sub":"v","aud":"video_id","exp":1e400}' % tenant.key_id.encode()
    signing_input = f"{segment({'alg': 'RS256'})}.{b64url(payload)}".encode()
    token = f"{signing_input.decode()}.{b64url(rs256_signature(tenant.key, signing_input))}"
    await refused(client, token, "invalid_token")


@pytest.mark.parametrize("sub", ["", 42, None, ["video-1"]])
async def test_non_string_or_empty_sub_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, sub: object
) -> None:
    await refused(client, tenant.token(clock.now, sub=sub), "invalid_claim")


async def test_nbf_in_the_future_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now, nbf=int(clock.now) + 600)
    await refused(client, token, "token_not_yet_valid")


async def test_iat_in_the_future_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now, iat=int(clock.now) + 600)
    await refused(client, token, "token_not_yet_valid")


async def test_leeway_edges(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, settings: Settings
) -> None:
    now, leeway = int(clock.now), settings.token_leeway
    # exp within the leeway behind us: still accepted; exactly the leeway behind: refused.
    await accepted(client, tenant.token(now, exp=now - leeway + 1))
    await refused(client, tenant.token(now, exp=now - leeway), "expired_token")
    # nbf/iat ahead by exactly the leeway: accepted; one second more: refused.
    await accepted(client, tenant.token(now, nbf=now + leeway))
    await refused(client, tenant.token(now, nbf=now + leeway + 1), "token_not_yet_valid")
    await accepted(client, tenant.token(now, iat=now + leeway))
    await refused(client, tenant.token(now, iat=now + leeway + 1), "token_not_yet_valid")


async def test_cached_token_is_refused_once_it_expires(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, settings: Settings
) -> None:
    token = tenant.token(clock.now, exp=int(clock.now) + 60)
    await accepted(client, token)
    clock.advance(60 + settings.token_leeway - 1)
    await accepted(client, token)
    clock.advance(1)
    await refused(client, token, "expired_token")
