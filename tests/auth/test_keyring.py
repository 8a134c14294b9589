"""The key ring under concurrency: one store lookup per kid however many requests wait, a key
deleted while its lookup was in flight stays refused, and a flood of made-up kids is bounded."""

from __future__ import annotations

import asyncio
import threading

import pytest

from headcount.auth.keyring import LOOKUP_CONCURRENCY, LOOKUPS_QUEUED
from headcount.auth.tokens import TokenVerifier
from headcount.errors import StoreUnavailable, TokenRefused
from headcount.stores.control import SigningKey
from headcount.stores.control_memory import MemoryControlStore
from tests.token_kit import Tenant

pytestmark = pytest.mark.anyio

NOW = 1_800_000_000.0
WAIT = 5.0  # bound on every wait below; the gate is normally opened within milliseconds


class GatedControlStore(MemoryControlStore):
    """The memory store, whose key lookups wait (in their worker thread) for the test."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def get_signing_key(self, key_id: str) -> SigningKey | None:
        self.entered.set()
        assert self.gate.wait(WAIT)
        return super().get_signing_key(key_id)


async def wait_until_entered(store: GatedControlStore) -> None:
    assert await asyncio.to_thread(store.entered.wait, WAIT)


async def test_concurrent_misses_share_one_store_lookup() -> None:
    store = GatedControlStore()
    tenant = Tenant(store, "acme", NOW)
    verifier = TokenVerifier(store, leeway=10, cache_size=100)
    tokens = [tenant.token(NOW, sub=f"video-{i}") for i in range(8)]
    tasks = [asyncio.create_task(verifier.verify(t, NOW)) for t in tokens]
    await wait_until_entered(store)
    store.gate.set()
    results = await asyncio.wait_for(asyncio.gather(*tasks), WAIT)
    assert {r.id for r in results} == {f"video-{i}" for i in range(8)}
    assert verifier.keyring.store_lookups == 1


async def test_key_deleted_while_its_lookup_was_in_flight_stays_refused() -> None:
    store = GatedControlStore()
    tenant = Tenant(store, "acme", NOW)
    verifier = TokenVerifier(store, leeway=10, cache_size=100)
    token = tenant.token(NOW)
    pending = asyncio.create_task(verifier.verify(token, NOW))
    await wait_until_entered(store)
    # The delete lands on this node while the store still answers with the live key.
    verifier.forget_key(tenant.key_id)
    store.gate.set()
    with pytest.raises(TokenRefused) as refusal:
        await asyncio.wait_for(pending, WAIT)
    assert refusal.value.error_type == "unknown_key"
    assert len(verifier.cache) == 0
    with pytest.raises(TokenRefused):
        await verifier.verify(token, NOW)
    assert verifier.keyring.store_lookups == 1  # the deletion is remembered, not re-read


async def test_a_flood_of_made_up_kids_queues_boundedly_and_is_refused_at_once() -> None:
    # Tokens with random kids, arriving faster than the store answers: past the queue each
    # is a 503 at once, not one more waiter; the store is asked at most once per admitted kid.
    store = GatedControlStore()
    tenant = Tenant(store, "acme", NOW)
    verifier = TokenVerifier(store, leeway=10, cache_size=100)
    admitted = LOOKUP_CONCURRENCY + LOOKUPS_QUEUED
    flood = [tenant.token(NOW, kid=f"made-up-{i}") for i in range(admitted + 200)]
    tasks = [asyncio.create_task(verifier.verify(token, NOW)) for token in flood]
    await wait_until_entered(store)
    # The gate is still closed: every token past the queue has its answer already.
    busy = [t for t in tasks if t.done()]
    assert len(busy) == 200
    for task in busy:
        error = task.exception()
        assert isinstance(error, StoreUnavailable) and "try again" in error.message
    assert verifier.keyring.lookups.admitted == admitted
    store.gate.set()
    for task in tasks:
        if task not in busy:
            with pytest.raises(TokenRefused) as refusal:
                await asyncio.wait_for(task, WAIT)
            assert refusal.value.error_type == "unknown_key"
    assert verifier.keyring.store_lookups == admitted
    # The flood does not stop a real token, and the kids it tried now cost no query.
    assert (await verifier.verify(tenant.token(NOW), NOW)).id
    for token in flood[:admitted]:
        with pytest.raises(TokenRefused):
            await verifier.verify(token, NOW + 0.5)
    assert verifier.keyring.store_lookups == admitted + 1
