"""``/healthz`` (the process answers) and ``/readyz`` (it should get traffic: its live store
answers and it is not shutting down), in-process. Readiness over a Redis outage is in
``tests/stores/test_redis_faults.py``."""

from __future__ import annotations

import httpx
import pytest

from headcount.http.app import HeadcountApp
from headcount.runtime import Runtime
from headcount.settings import Settings
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.memory import MemoryLiveStore
from tests.conftest import FakeClock

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


class _BrokenLiveStore(MemoryLiveStore):
    @property
    def ready(self) -> bool:
        raise RuntimeError("a bug behind /readyz")


async def test_a_bug_on_a_cold_path_is_a_500_envelope(
    settings: Settings, control: MemoryControlStore, clock: FakeClock
) -> None:
    runtime = Runtime(settings=settings, control=control, live=_BrokenLiveStore(), clock=clock)
    app = HeadcountApp(runtime, clock=clock)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        answer = await client.get("/readyz")
    assert answer.status_code == 500
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["type"] == "internal_error"
