"""``GET /metrics`` over the in-process app: what each surface counts, the sweep and store
timings, and the ``metrics_token`` setting (a real socket is in tests/e2e/test_observe.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from headcount.bootstrap import build_runtime
from headcount.http.app import HeadcountApp
from headcount.runtime import Runtime
from headcount.settings import Settings, load_settings
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.memory import MemoryLiveStore
from tests.conftest import FakeClock
from tests.redis_servers import RedisServer
from tests.token_kit import Tenant

pytestmark = pytest.mark.anyio

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def samples(client: httpx.AsyncClient, **headers: str) -> Samples:
    response = await client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def outcome(name: str, value: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, (("outcome", value),)


async def test_counts_requests_by_outcome_and_the_token_cache(
    client: httpx.AsyncClient, control: MemoryControlStore, clock: FakeClock
) -> None:
    tenant = Tenant(control, "metrics-env", clock())
    token = tenant.token(clock())
    for _ in range(3):
        assert (await client.get("/counts", params={"token": token})).status_code == 200
    assert (await client.get("/counts")).status_code == 400
    expired = tenant.token(clock(), exp=int(clock()) - 3600)
    assert (await client.get("/counts", params={"token": expired})).status_code == 403
    got = await samples(client)
    name = "headcount_counts_requests_total"
    assert got[outcome(name, "ok")] == 3
    assert got[outcome(name, "invalid_parameters")] == 1
    assert got[outcome(name, "expired_token")] == 1
    # The first good token and the expired one missed; the two repeats hit.
    assert got[outcome("headcount_token_cache_lookups_total", "hit")] == 2
    assert got[outcome("headcount_token_cache_lookups_total", "miss")] == 2
    assert got[("headcount_token_verifications_total", ())] == 2


async def test_collector_bodies_by_outcome(
    client: httpx.AsyncClient, runtime: Runtime, control: MemoryControlStore, clock: FakeClock
) -> None:
    control.create_environment("c", "envkeyc", int(clock()))
    good = orjson.dumps({"events": [{"e": "hb", "ake": "envkeyc", "xid": "v1", "xsqno": 1}]})
    assert (await client.post("/", content=good)).status_code == 200
    assert (await client.post("/", content=b"not json")).status_code == 400
    too_many = orjson.dumps({"events": [0] * 2001})
    assert (await client.post("/", content=too_many)).status_code == 413
    too_big = b"x" * (runtime.settings.max_body_bytes + 1)
    assert (await client.post("/collect", content=too_big)).status_code == 413
    got = await samples(client)
    name = "headcount_collector_bodies_total"
    assert got[outcome(name, "ok")] == 1
    assert got[outcome(name, "invalid_parameters")] == 1
    assert got[outcome(name, "payload_too_large")] == 2
    assert got[("headcount_collector_events_accepted_total", ())] == 1


@pytest.fixture
async def built(tmp_path: Path) -> AsyncIterator[tuple[Runtime, httpx.AsyncClient]]:
    """The runtime ``headcount serve`` builds (SQLite control store, the sweeper job)."""
    settings = load_settings(
        {"database_url": f"sqlite:///{tmp_path / 'h.db'}", "state_file": ""}, environ={}
    )
    runtime = build_runtime(settings)
    app = HeadcountApp(runtime)
    await runtime.start()
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            yield runtime, client
    finally:
        await runtime.stop()


async def test_sweeps_and_control_store_round_trips_are_timed(
    built: tuple[Runtime, httpx.AsyncClient],
) -> None:
    runtime, client = built
    (sweep,) = [job for job in runtime.periodic if job.name == "live-sweep"]
    await sweep.run(runtime.clock())
    await sweep.run(runtime.clock())
    runtime.control.list_environments()
    got = await samples(client)
    assert got[("headcount_sweep_duration_seconds_count", ())] == 2
    assert got[("headcount_sweep_duration_seconds_bucket", (("le", "+Inf"),))] == 2
    assert got[("headcount_sweep_expired_views_total", ())] == 0
    control = (("backend", "sqlite"), ("store", "control"))
    assert got[("headcount_store_duration_seconds_count", control)] >= 1
    assert got[("headcount_store_duration_seconds_sum", control)] > 0
    assert got[("python_gc_collections_total", (("generation", "0"),))] >= 0  # process metrics


async def test_redis_pipelines_are_timed(tmp_path: Path, redis_standalone: RedisServer) -> None:
    url = f"{redis_standalone.url}?prefix=metrics-latency"
    settings = load_settings(
        {"database_url": f"sqlite:///{tmp_path / 'h.db'}", "live_url": url}, environ={}
    )
    runtime = build_runtime(settings)
    transport = httpx.ASGITransport(app=HeadcountApp(runtime))
    await runtime.start()
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            got = await samples(client)  # the page itself reads the store's stats
    finally:
        await runtime.stop()
    live = (("backend", "redis"), ("store", "live"))
    assert got[("headcount_store_duration_seconds_count", live)] >= 1


async def test_a_metrics_token_is_required_when_set(
    settings: Settings, control: MemoryControlStore, clock: FakeClock
) -> None:
    secret = "s3cret-metrics-token"
    runtime = Runtime(
        settings=settings.replace(metrics_token=secret),
        control=control,
        live=MemoryLiveStore(),
        clock=clock,
    )
    transport = httpx.ASGITransport(app=HeadcountApp(runtime, clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": secret}):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["type"] == "unauthorized"
            assert refused.headers["www-authenticate"].startswith("Bearer")
            assert secret not in refused.text
        assert await samples(client, authorization=f"Bearer {secret}")
        assert await samples(client, authorization=f"bearer {secret}")
