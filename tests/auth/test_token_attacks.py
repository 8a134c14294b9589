"""Security regression tests for GET /counts tokens: one test per attack, named after it.

Every test drives the real app in-process (``client``) with tokens forged byte by byte, and
checks the status, the Mux error envelope and its type.
"""

from __future__ import annotations

import base64
import json
import random
import time
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from hypothesis import given, settings
from hypothesis import strategies as st

from headcount.auth.jwt_verify import MAX_TOKEN_LENGTH, parse_token
from headcount.auth.tokens import TokenVerifier
from headcount.errors import TokenRefused
from headcount.http.app import HeadcountApp
from headcount.runtime import Runtime
from headcount.settings import Settings
from headcount.stores.control import SigningKey
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.sql import open_control_store
from tests.conftest import FakeClock
from tests.token_kit import (
    ABSENT,
    TableLiveStore,
    Tenant,
    asgi_get,
    b64url,
    ec_private_key,
    forge,
    private_key,
    public_pem,
    register_key,
    rs256_signature,
    segment,
)

pytestmark = pytest.mark.anyio

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "beacons"


@pytest.fixture
def tenant(control: MemoryControlStore, clock: FakeClock) -> Tenant:
    return Tenant(control, "acme", clock.now)


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


# -- keys -----------------------------------------------------------------------------------


async def test_unknown_kid_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now, kid="no-such-key")
    message = await refused(client, token, "unknown_key")
    assert "no-such-key" not in message  # the kid is the caller's input; never echoed


@pytest.mark.parametrize("kid", [123, None, ["acme-key-main"], {"id": "acme-key-main"}, ""])
async def test_non_string_kid_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, kid: object
) -> None:
    await refused(client, tenant.token(clock.now, kid=kid), "invalid_claim")


async def test_non_string_payload_kid_does_not_fall_back_to_a_valid_header_kid(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now, header={"alg": "RS256", "kid": tenant.key_id}, kid=7)
    await refused(client, token, "invalid_claim")


async def test_non_string_header_kid_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now, header={"alg": "RS256", "kid": 7}, kid=ABSENT)
    await refused(client, token, "invalid_claim")


async def test_missing_kid_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    await refused(client, tenant.token(clock.now, kid=ABSENT), "missing_claim")


async def test_deleted_key_is_refused_at_once(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock, runtime: Runtime
) -> None:
    assert runtime.control.delete_signing_key(tenant.key_id, int(clock.now))
    runtime.signing_key_deleted(tenant.key_id)
    message = await refused(client, tenant.token(clock.now), "unknown_key")
    assert "deleted" in message


async def test_deleted_key_is_refused_even_when_its_token_was_cached(
    client: httpx.AsyncClient, app: HeadcountApp, tenant: Tenant, clock: FakeClock, runtime: Runtime
) -> None:
    token = tenant.token(clock.now)
    await accepted(client, token)
    assert verifier_of(app).cache.get(token, clock.now) is not None
    # What the System API does on DELETE in this process: store, then the runtime hook.
    assert runtime.control.delete_signing_key(tenant.key_id, int(clock.now))
    runtime.signing_key_deleted(tenant.key_id)
    assert verifier_of(app).cache.get(token, clock.now) is None
    await refused(client, token, "unknown_key")


async def test_key_deleted_on_another_node_is_refused_after_one_revocation_poll(
    client: httpx.AsyncClient, app: HeadcountApp, tenant: Tenant, clock: FakeClock, runtime: Runtime
) -> None:
    token = tenant.token(clock.now)
    await accepted(client, token)
    await verifier_of(app).poll_revocations(clock.now)
    # Another node deletes the key: only the shared store knows; no hook runs here.
    clock.advance(0.5)
    assert runtime.control.delete_signing_key(tenant.key_id, int(clock.now))
    await accepted(client, token)  # still cached: this node has not polled yet
    await verifier_of(app).poll_revocations(clock.now)
    await refused(client, token, "unknown_key")


async def test_revocation_poll_is_registered_at_half_a_second(
    app: HeadcountApp, runtime: Runtime
) -> None:
    jobs = {job.name: job.interval for job in runtime.periodic}
    assert jobs["signing-key-revocations"] <= 0.5
    assert verifier_of(app).forget_key in runtime.on_signing_key_deleted


async def test_key_of_another_environment_reads_its_own_environment(
    client: httpx.AsyncClient, control: MemoryControlStore, clock: FakeClock
) -> None:
    # Two environments watch the same video id, fed by a real mux-embed beacon (capture A)
    # through the collector: acme has one view, rival two views of one viewer. Each key reads
    # only its own environment's numbers, whatever id its token names.
    acme = Tenant(control, "acme", clock.now)
    rival = Tenant(control, "rival", clock.now, key_label="rival")
    first_post = next(iter(sorted((CAPTURES / "A-video-element" / "raw").glob("*.json"))))
    body = first_post.read_bytes()
    assert b'"ake":"testenv123"' in body and b'"vid":"my-video-id-1"' in body
    view_id = b"f68c3f23-2bed-4c92-9bb9-e81820a8a212"
    feeds = [
        body.replace(b"testenv123", acme.environment.env_key.encode()),
        body.replace(b"testenv123", rival.environment.env_key.encode()),
        body.replace(b"testenv123", rival.environment.env_key.encode()).replace(view_id, b"v2"),
    ]
    for feed in feeds:
        answer = await client.post("/", content=feed, headers={"content-type": "text/plain"})
        assert answer.status_code == 200 and answer.json()["rejected"] == []
    for tenant, expected in ((acme, (1, 1)), (rival, (2, 1))):
        token = tenant.token(clock.now, sub="my-video-id-1", aud="video_id")
        data = (await client.get("/counts", params={"token": token})).json()["data"][0]
        assert (data["views"], data["viewers"]) == expected
    # A token naming acme's kid but signed by rival's private key is forged.
    forged = forge({"alg": "RS256"}, acme.claims(clock.now, sub="my-video-id-1"), rival.key)
    await refused(client, forged, "invalid_signature")


async def test_key_below_2048_bits_is_refused(
    client: httpx.AsyncClient, control: MemoryControlStore, clock: FakeClock
) -> None:
    weak = Tenant(control, "weak", clock.now, key_label="weak", bits=1024)
    message = await refused(client, weak.token(clock.now), "weak_key")
    assert "1024" in message and "2048" in message


async def test_non_rsa_stored_key_is_refused(
    client: httpx.AsyncClient, control: MemoryControlStore, clock: FakeClock, tenant: Tenant
) -> None:
    env = control.create_environment("curvy", "curvy", int(clock.now))
    ec_pem = (
        ec_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    control.add_signing_key(SigningKey("ec-key", env.id, ec_pem, int(clock.now)))
    await refused(client, tenant.token(clock.now, kid="ec-key"), "weak_key")


@pytest.mark.parametrize("kid", ["a\u0000b", "k" * 129, "clé", "tab\there", "line\nbreak"])
async def test_kid_that_cannot_exist_is_refused_without_a_store_lookup(
    client: httpx.AsyncClient, app: HeadcountApp, tenant: Tenant, clock: FakeClock, kid: str
) -> None:
    await refused(client, tenant.token(clock.now, kid=kid), "unknown_key")
    assert verifier_of(app).keyring.store_lookups == 0


async def test_nul_byte_kid_against_postgres_is_a_403_not_a_500(
    settings: Settings, clock: FakeClock
) -> None:
    # Postgres refuses NUL bytes in text with an error, not "no such row": the kid must never
    # reach it. This runs the real SQL control store on the real Postgres.
    control = open_control_store(POSTGRES_URL)
    runtime = Runtime(settings=settings, control=control, live=TableLiveStore(), clock=clock)
    app = HeadcountApp(runtime, clock=clock)
    try:
        async with _client(app) as client:
            # A kid with a NUL byte, then an ordinary unknown kid (a plain miss in the store).
            for kid in ("a\u0000b", "no-such-key"):
                claims = {"kid": kid, "sub": "v", "aud": "video_id", "exp": int(clock.now) + 60}
                token = forge({"alg": "RS256"}, claims, private_key("main"))
                response = await client.get("/counts", params={"token": token})
                assert response.status_code == 403
                assert response.json()["error"]["type"] == "unknown_key"
    finally:
        control.close()


async def test_garbage_kids_do_not_hammer_the_store(
    client: httpx.AsyncClient, app: HeadcountApp, tenant: Tenant, clock: FakeClock
) -> None:
    keyring = verifier_of(app).keyring
    token = tenant.token(clock.now, kid="garbage")
    for _ in range(20):
        await refused(client, token, "unknown_key")
    assert keyring.store_lookups == 1
    clock.advance(1.0)  # the negative entry is short-lived: a key created elsewhere soon works
    await refused(client, token, "unknown_key")
    assert keyring.store_lookups == 2


async def test_key_created_after_an_unknown_lookup_works_after_the_negative_ttl(
    client: httpx.AsyncClient, control: MemoryControlStore, tenant: Tenant, clock: FakeClock
) -> None:
    token = tenant.token(clock.now, kid="late-key")
    await refused(client, token, "unknown_key")
    register_key(control, tenant.environment, tenant.key, "late-key")
    clock.advance(1.0)
    await accepted(client, tenant.token(clock.now, kid="late-key"))


# -- signature and shape --------------------------------------------------------------------


async def test_signature_tampered_is_refused(
    client: httpx.AsyncClient, tenant: Tenant, clock: FakeClock
) -> None:
    head, payload, signature = tenant.token(clock.now).split(".")
    raw = bytearray(_b64decode(signature))
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


# -- helpers --------------------------------------------------------------------------------


def _b64decode(segment_text: str) -> bytes:
    return base64.urlsafe_b64decode(segment_text + "=" * (-len(segment_text) % 4))


def _client(app: HeadcountApp) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")
