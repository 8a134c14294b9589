"""A node serves only the surfaces its --role names; the others answer 404 in Mux's envelope."""

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

EMPTY_BATCH = b'{"metadata":{},"events":[]}'


def _app(role: str, settings: Settings, clock: FakeClock) -> HeadcountApp:
    node = settings.replace(role=role)
    runtime = Runtime(
        settings=node,
        control=MemoryControlStore(),
        live=MemoryLiveStore.from_settings(node),
        clock=clock,
    )
    return HeadcountApp(runtime, clock=clock)


async def _answers(app: HeadcountApp) -> dict[str, int]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        collect = await client.post("/collect", content=EMPTY_BATCH)
        collect_root = await client.post("/", content=EMPTY_BATCH)
        counts = await client.get("/counts")
        system = await client.get("/system/v1/signing-keys")
        for response in (collect, counts, system):
            if response.status_code == 404:
                assert response.json()["error"]["type"] == "not_found"
        return {
            "collect": collect.status_code,
            "collect_root": collect_root.status_code,
            "counts": counts.status_code,
            "system": system.status_code,
        }


async def test_collector_node_serves_only_the_collector(
    settings: Settings, clock: FakeClock
) -> None:
    got = await _answers(_app("collector", settings, clock))
    assert got == {"collect": 200, "collect_root": 200, "counts": 404, "system": 404}


async def test_counts_node_serves_only_counts(settings: Settings, clock: FakeClock) -> None:
    got = await _answers(_app("counts", settings, clock))
    # /counts without a token is a 400: the endpoint is there and answering.
    assert got == {"collect": 404, "collect_root": 404, "counts": 400, "system": 404}


async def test_system_node_serves_only_the_system_api(settings: Settings, clock: FakeClock) -> None:
    got = await _answers(_app("system", settings, clock))
    # The System API without credentials is a 401: the endpoint is there and answering.
    assert got == {"collect": 404, "collect_root": 404, "counts": 404, "system": 401}


async def test_all_serves_everything(settings: Settings, clock: FakeClock) -> None:
    got = await _answers(_app("all", settings, clock))
    assert got == {"collect": 200, "collect_root": 200, "counts": 400, "system": 401}
