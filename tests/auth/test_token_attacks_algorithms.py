"""Security regression tests for GET /counts tokens, algorithm confusion:
one test per attack, named after it.

Every test drives the real app in-process (``client``) with tokens forged byte by byte, and
checks the status, the Mux error envelope and its type.
"""

from __future__ import annotations

import httpx
import pytest

from tests.auth.attack_kit import refused
from tests.conftest import FakeClock
from tests.token_kit import (
    Tenant,
    b64url,
    forge,
    public_pem,
    rs256_signature,
    segment,
)

pytestmark = pytest.mark.anyio


# -- algorithms ---------------------------------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
async def test_alg_none_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, alg: str
) -> None:
    token = forge({"alg": alg, "typ": "JWT"}, tenant.claims(clock.now), alg="none")
    message = await refused(client, token, "unsupported_algorithm")
    assert "RS256" in message


async def test_alg_none_with_a_real_signature_attached_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    # A valid RS256 signature over a header that says "none" must not sneak through.
    claims = tenant.claims(clock.now)
    signing_input = f"{segment({'alg': 'none'})}.{segment(claims)}".encode()
    signature = rs256_signature(tenant.key, signing_input)
    await refused(client, f"{signing_input.decode()}.{b64url(signature)}", "unsupported_algorithm")


async def test_missing_alg_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now, header={"typ": "JWT"})
    await refused(client, token, "unsupported_algorithm")


async def test_hs256_signed_with_public_key_pem_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    # The classic key-confusion attack: HMAC keyed with the (public) RSA key PEM.
    secret = public_pem(tenant.key)
    token = forge(
        {"alg": "HS256", "typ": "JWT"}, tenant.claims(clock.now), alg="HS256", secret=secret
    )
    await refused(client, token, "unsupported_algorithm")


async def test_rs512_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = forge({"alg": "RS512"}, tenant.claims(clock.now), tenant.key, alg="RS512")
    await refused(client, token, "unsupported_algorithm")


async def test_ps256_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = forge({"alg": "PS256"}, tenant.claims(clock.now), tenant.key, alg="PS256")
    await refused(client, token, "unsupported_algorithm")


async def test_es256_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = forge({"alg": "ES256"}, tenant.claims(clock.now), alg="ES256")
    await refused(client, token, "unsupported_algorithm")


async def test_rs256_signature_over_an_rs512_header_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    # The header is what was signed; a signature that is valid RS256 does not make RS512 ok.
    claims = tenant.claims(clock.now)
    signing_input = f"{segment({'alg': 'RS512'})}.{segment(claims)}".encode()
    signature = rs256_signature(tenant.key, signing_input)
    await refused(client, f"{signing_input.decode()}.{b64url(signature)}", "unsupported_algorithm")


async def test_crit_header_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now, header={"alg": "RS256", "crit": ["exp"]})
    await refused(client, token, "invalid_token")
