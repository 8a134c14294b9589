"""The collector's answer stays small whatever the body: at most ``MAX_EVENTS`` events per body
(413 past it) and at most ``MAX_LISTED`` rejected events named in an answer, every one still
counted. The attack this closes: a 698 KB body of ``{"events":[0,0,...]}`` once got a 14.5 MB
answer. In-process, and over a real socket on the hot path."""

from __future__ import annotations

import httpx
import orjson
import pytest

from headcount.http.collector import MAX_EVENTS, MAX_LISTED
from headcount.stores.control import Environment
from headcount.stores.control_memory import MemoryControlStore
from tests.conftest import FakeClock
from tests.http.protocol_kit import request
from tests.http.protocol_site import start_site

pytestmark = pytest.mark.anyio


@pytest.fixture
def env(control: MemoryControlStore, clock: FakeClock) -> Environment:
    return control.create_environment("test", "testenv123", int(clock()))


def good(i: int) -> dict[str, object]:
    return {"e": "hb", "ake": "testenv123", "xid": f"v{i}", "xsqno": 1}


async def test_a_body_of_many_bad_events_gets_a_small_answer_and_every_one_counted(
    client: httpx.AsyncClient, env: Environment
) -> None:
    events: list[object] = [0] * (MAX_EVENTS - 10) + [good(i) for i in range(10)]
    answer = await client.post("/", content=orjson.dumps({"events": events}))
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 10  # the good neighbours are not dropped
    assert body["rejected"] == [{"index": i, "reason": "not_an_object"} for i in range(MAX_LISTED)]
    assert body["rejected_total"] == MAX_EVENTS - 10
    assert len(answer.content) < 2048
    metrics = (await client.get("/metrics")).text
    assert f'rejected_total{{reason="not_an_object"}} {MAX_EVENTS - 10}' in metrics


async def test_a_few_rejections_are_all_listed_without_a_total(
    client: httpx.AsyncClient, env: Environment
) -> None:
    answer = await client.post("/", content=orjson.dumps({"events": [0, good(1), 0]}))
    assert answer.json() == {
        "accepted": 1,
        "rejected": [
            {"index": 0, "reason": "not_an_object"},
            {"index": 2, "reason": "not_an_object"},
        ],
    }


async def test_more_events_than_the_limit_is_413_with_the_envelope(
    client: httpx.AsyncClient, env: Environment
) -> None:
    answer = await client.post("/", content=orjson.dumps({"events": [0] * (MAX_EVENTS + 1)}))
    assert answer.status_code == 413
    error = answer.json()["error"]
    assert error["type"] == "payload_too_large"
    assert f"At most {MAX_EVENTS} events per body" in error["messages"][0]
    assert len(answer.content) < 512


def test_the_attack_body_over_a_real_socket_gets_a_small_answer(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    site = start_site(tmp_path_factory.mktemp("limits"), settings={"max_body_bytes": 1 << 20})
    try:
        attack = b'{"events":[' + b",".join([b"0"] * 349_000) + b"]}"  # ~698 KB
        with site.connect() as conn:
            answer = conn.exchange(request("POST", "/collect", [], attack))
            assert answer.status == 413 and len(answer.body) < 512
            # The connection serves the next request as usual.
            ok = conn.exchange(request("POST", "/collect", [], site.beacon("after-attack")))
            assert ok.status == 200 and ok.json()["accepted"] == 6
    finally:
        site.server.stop()
