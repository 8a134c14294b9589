"""``/healthz`` (the process answers) and ``/readyz`` (it should get traffic: its live store
answers and it is not shutting down), in-process. Readiness over a Redis outage is in
``tests/stores/test_redis_faults.py``."""

from __future__ import annotations

import httpx
import pytest

from headcount.runtime import Runtime

pytestmark = pytest.mark.anyio


async def test_healthz_and_readyz_answer_when_all_is_well(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_a_node_shutting_down_is_not_ready_but_alive(
    client: httpx.AsyncClient, runtime: Runtime
) -> None:
    runtime.shutting_down = True  # what uvicorn's first shutdown call sets (HotPathProtocol)
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["error"]["type"] == "service_unavailable"
    assert "shutting down" in ready.json()["error"]["messages"][0]
    assert (await client.get("/healthz")).status_code == 200
