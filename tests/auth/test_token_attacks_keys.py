"""Security regression tests for GET /counts tokens, keys and their lifecycle:
one test per attack, named after it.

Every test drives the real app in-process (``client``) with tokens forged byte by byte, and
checks the status, the Mux error envelope and its type.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from headcount.http.app import HeadcountApp
from headcount.runtime import Runtime
from headcount.settings import Settings
from headcount.stores.control import SigningKey
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.sql import open_control_store
from tests.auth.attack_kit import accepted, client_of, refused, verifier_of
from tests.conftest import FakeClock
from tests.token_kit import (
    ABSENT,
    TableLiveStore,
    Tenant,
    ec_private_key,
    forge,
    private_key,
    register_key,
)

pytestmark = pytest.mark.anyio

POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
CAPTURES = Path(__file__).resolve().parents[1] / "fixtures" / "beacons"


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
        async with client_of(app) as client:
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
