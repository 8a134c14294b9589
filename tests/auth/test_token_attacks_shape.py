"""Security regression tests for GET /counts tokens, the shape of the token:
one test per attack, named after it.

Every test drives the real app in-process (``client``) with tokens forged byte by byte, and
checks the status, the Mux error envelope and its type.
"""

from __future__ import annotations

import json
import random
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headcount.auth import jwt_verify
from headcount.auth.jwt_verify import MAX_TOKEN_LENGTH, parse_token
from headcount.errors import TokenRefused
from headcount.http.app import HeadcountApp
from tests.auth.attack_kit import b64decode, refused, verifier_of
from tests.conftest import FakeClock
from tests.token_kit import (
    Tenant,
    asgi_get,
    b64url,
    forge,
    private_key,
    segment,
)

pytestmark = pytest.mark.anyio


# -- signature and shape --------------------------------------------------------------------


async def test_signature_tampered_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    head, payload, signature = tenant.token(clock.now).split(".")
    raw = bytearray(b64decode(signature))
    raw[len(raw) // 2] ^= 0x01
    await refused(client, f"{head}.{payload}.{b64url(bytes(raw))}", "invalid_signature")


async def test_payload_tampered_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    head, _, signature = tenant.token(clock.now).split(".")
    other = segment(tenant.claims(clock.now, sub="someone-elses-video"))
    await refused(client, f"{head}.{other}.{signature}", "invalid_signature")


async def test_signature_of_another_key_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = forge({"alg": "RS256"}, tenant.claims(clock.now), private_key("stranger"))
    await refused(client, token, "invalid_signature")


async def test_truncated_token_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now)
    await refused(client, token[:-10], "invalid_signature")
    await refused(client, token[: token.rindex(".")], "invalid_token")
    await refused(client, token[: token.index(".") + 20], "invalid_token")  # inside the payload


@pytest.mark.parametrize(
    "token",
    [
        "abc",
        "a.b",
        "a.b.c.d",
        "..",
        "eyJhbGciOiJSUzI1NiJ9..c2ln",
        "eyJhbGciOiJSUzI1NiJ9=.e30.c2ln",  # padding
        "eyJhbGciOiJSUzI1NiJ9.e30.c2l+",  # standard, not url-safe, alphabet
        "eyJhbGciOiJSUzI1NiJ9 .e30.c2ln",
        "eyJhbGciOiJSUzI1NiJ9.e30.c2lnü",
        "eyJhbGciOiJSUzI1NiJ9.e30.c2lnB",  # impossible length (4n+1)
        "eyJhbGciOiJSUzI1NiJ9.e30.c2l",  # non-canonical: unused bits set
        "W10.e30.c2ln",  # header is a JSON array
        "bm90IGpzb24.e30.c2ln",  # header is not JSON
        "eyJhbGciOiJSUzI1NiJ9.W10.c2ln",  # payload is a JSON array
        "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln",  # payload is not JSON
    ],
)
async def test_malformed_token_is_refused(client: httpx.AsyncClient, token: str) -> None:
    await refused(client, token, "invalid_token")


async def test_oversized_token_is_refused_before_any_decoding(
    client: httpx.AsyncClient, app: HeadcountApp, tenant: Tenant, clock: FakeClock
) -> None:
    # A well-formed, correctly signed token, padded with a claim past the limit.
    token = tenant.token(clock.now, padding="x" * MAX_TOKEN_LENGTH)
    message = await refused(client, token, "invalid_token")
    assert str(MAX_TOKEN_LENGTH) in message
    verifier = verifier_of(app)
    assert verifier.rsa_verifications == 0 and verifier.keyring.store_lookups == 0


async def test_one_megabyte_token_gets_a_4xx_in_bounded_time(
    client: httpx.AsyncClient, app: HeadcountApp
) -> None:
    huge = "eyJhbGciOiJSUzI1NiJ9." + "A" * (1024 * 1024) + ".c2ln"
    started = time.perf_counter()
    status, headers, body = await asgi_get(app, "/counts", b"token=" + huge.encode())
    assert status == 400
    assert headers["access-control-allow-origin"] == "*"
    assert json.loads(body)["error"]["type"] == "invalid_parameters"
    started_direct = time.perf_counter()
    with pytest.raises(TokenRefused) as refusal:
        parse_token(huge)
    assert refusal.value.error_type == "invalid_token"
    # Generous bounds: the work is a length check, not a decode of a megabyte.
    assert time.perf_counter() - started_direct < 0.01
    assert time.perf_counter() - started < 2.0
    assert verifier_of(app).rsa_verifications == 0


async def test_random_bytes_never_answer_5xx(app: HeadcountApp, tenant: Tenant) -> None:
    rng = random.Random(20261128)
    alphabet = b"ABCxyz019-_.=%+&\x00\xff "
    prefix = tenant.token(1_800_000_000.0)[:40].encode()  # a real header start, then junk
    for size in (1, 7, 64, 300, 600, 5000, 9000, 40_000):
        for _ in range(12):
            junk = bytes(rng.choice(alphabet) for _ in range(size))
            for query in (b"token=" + junk, b"TOKEN=" + prefix + junk, junk):
                status, headers, body = await asgi_get(app, "/counts", query)
                assert status in (400, 403), (query[:80], body)
                assert json.loads(body)["error"]["messages"]
                assert headers["access-control-allow-origin"] == "*"


@settings(max_examples=300, deadline=None)
@given(
    st.text(max_size=600)
    | st.from_regex(
        r"[A-Za-z0-9_-]{2,80}\.[A-Za-z0-9_-]{2,80}\.[A-Za-z0-9_-]{0,80}", fullmatch=True
    )
)
def test_parse_token_refuses_arbitrary_text_cleanly(token: str) -> None:
    # Whatever the text, parsing ends in a TokenRefused (or, for a well-formed header and
    # payload, a parsed token awaiting its signature check), never another exception.
    try:
        parse_token(token)
    except TokenRefused as exc:
        assert exc.error_type


def test_a_header_seen_before_skips_none_of_the_other_checks(
    tenant: Tenant, clock: FakeClock
) -> None:
    # The header's checks are remembered by its exact segment; the payload and signature of
    # every token are still decoded and checked, with the same refusals in the same order.
    head, payload, signature = tenant.token(clock.now).split(".")
    parse_token(f"{head}.{payload}.{signature}")
    parse_token(f"{head}.{payload}.{signature}")  # the header is now a remembered one
    cases = {
        f"{head}.{payload}.{signature}B": "base64url",  # impossible length
        f"{head}.{payload[:-1]}B.{signature}": "base64url",  # non-canonical payload
        f"{head}.bm90IGpzb24.{signature}": "JSON",
        f"{head}.bm90IGpzb24.c2lnB": "base64url",  # base64 is checked before JSON
        f"{head}.W10.{signature}": "payload is not a JSON object",
        f"{head}.{segment({'sub': 'x'})}.{signature}": "kid",
    }
    for token, words in cases.items():
        with pytest.raises(TokenRefused) as refusal:
            parse_token(token)
        assert refusal.value.error_type in ("invalid_token", "missing_claim"), token
        assert words in refusal.value.message, (token, refusal.value.message)


def test_remembered_headers_stay_bounded(tenant: Tenant, clock: FakeClock) -> None:
    payload = segment(tenant.claims(clock.now))
    for i in range(2000):
        parse_token(f"{segment({'alg': 'RS256', 'n': i})}.{payload}.c2ln")
    parse_token(f"{segment({'alg': 'RS256', 'long': 'x' * 600})}.{payload}.c2ln")
    assert len(jwt_verify._CHECKED_HEADERS) <= jwt_verify._CHECKED_HEADERS_MAX
    assert all(len(h) <= jwt_verify._CHECKED_HEADER_MAX_LENGTH for h in jwt_verify._CHECKED_HEADERS)
