"""``cors_origins``: with origins named, every answer a browser reads cross-origin echoes the
request's allowed ``Origin`` (and says ``Vary: Origin``), and names no origin for any other
page; on the hot path (memory: in the parser callback; Redis: the awaited chain, pipelined),
on the stream's head and on the ASGI way. The default ``*`` is tested by every other module
(``assert_accepted``, ``assert_envelope``)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from headcount.http.app import HeadcountApp
from headcount.runtime import Runtime
from headcount.settings import Settings, load_settings
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.memory import MemoryLiveStore
from tests.conftest import FakeClock
from tests.http.protocol_kit import Response, request
from tests.http.protocol_site import Site, new_video, start_site
from tests.redis_servers import new_key_prefix

PAGE = "https://www.example.com"
OTHER_PAGE = "https://app.example.com:8443"
STRANGER = "https://evil.example"


@pytest.fixture(scope="module", params=["memory", "redis"])
def cors_site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    live_url = "memory://"
    if request.param == "redis":
        live_url = f"{request.getfixturevalue('redis_standalone').url}?prefix={new_key_prefix()}"
    settings = {"cors_origins": f"{PAGE}, {OTHER_PAGE.upper()}"}
    running = start_site(tmp_path_factory.mktemp("cors"), live_url, settings)
    try:
        yield running
    finally:
        running.server.stop()


def from_page(method: str, target: str, origin: str | None, body: bytes = b"") -> bytes:
    headers = [("Origin", origin)] if origin else []
    if body:
        headers.append(("Content-Type", "text/plain"))
    return request(method, target, headers, body)


def assert_for(response: Response, origin: str | None) -> None:
    assert response.header("access-control-allow-origin") == origin, response.headers
    assert response.header("vary") == "Origin"


def test_counts_echo_an_allowed_origin_and_name_none_for_others(cors_site: Site) -> None:
    target = f"/counts?token={cors_site.token(new_video())}"
    with cors_site.connect() as connection:
        for origin, allowed in ((PAGE, PAGE), (OTHER_PAGE, OTHER_PAGE), (STRANGER, None)):
            answer = connection.exchange(from_page("GET", target, origin))
            assert answer.status == 200
            assert_for(answer, allowed)
        assert_for(connection.exchange(from_page("GET", target, None)), None)
        refused = connection.exchange(from_page("GET", "/counts", PAGE))  # no token: 400
        assert refused.status == 400
        assert_for(refused, PAGE)


def test_the_collector_and_preflights(cors_site: Site) -> None:
    with cors_site.connect() as connection:
        posted = connection.exchange(from_page("POST", "/collect", PAGE, cors_site.beacon("v")))
        assert posted.status == 200 and posted.json()["rejected"] == []
        assert_for(posted, PAGE)
        for path in ("/collect", "/counts"):
            preflight = connection.exchange(from_page("OPTIONS", path, OTHER_PAGE))
            assert preflight.status == 204
            assert_for(preflight, OTHER_PAGE)
            assert preflight.header("access-control-allow-methods")
            assert_for(connection.exchange(from_page("OPTIONS", path, STRANGER)), None)


def test_pipelined_requests_each_get_their_own_origin(cors_site: Site) -> None:
    target = f"/counts?token={cors_site.token(new_video())}"
    origins = [PAGE, STRANGER, OTHER_PAGE, None, PAGE]
    with cors_site.connect() as connection:
        connection.send(b"".join(from_page("GET", target, o) for o in origins))
        for origin in origins:
            assert_for(connection.read_response(), origin if origin != STRANGER else None)


def test_the_stream_head_echoes_the_origin(cors_site: Site) -> None:
    target = f"/counts/stream?token={cors_site.token(new_video())}"
    with cors_site.connect() as connection:
        connection.send(from_page("GET", target, OTHER_PAGE))
        head = connection.read_head()
        assert head.status == 200 and head.header("content-type") == "text/event-stream"
        assert_for(head, OTHER_PAGE)


@pytest.mark.anyio
async def test_the_asgi_way_rewrites_the_same_header(
    settings: Settings, control: MemoryControlStore, clock: FakeClock
) -> None:
    runtime = Runtime(
        settings=settings.replace(cors_origins=f"{PAGE},{OTHER_PAGE}"),
        control=control,
        live=MemoryLiveStore(),
        clock=clock,
    )
    transport = httpx.ASGITransport(app=HeadcountApp(runtime, clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        preflight = await client.options("/counts", headers={"Origin": PAGE})
        refused = await client.get("/counts", headers={"Origin": OTHER_PAGE})
        widget = await client.get("/widget/headcount-viewers.js", headers={"Origin": STRANGER})
        health = await client.get("/healthz", headers={"Origin": PAGE})
    assert preflight.status_code == 204 and preflight.headers["vary"] == "Origin"
    assert preflight.headers["access-control-allow-origin"] == PAGE
    assert refused.status_code == 400
    assert refused.headers["access-control-allow-origin"] == OTHER_PAGE
    assert widget.status_code == 200 and "access-control-allow-origin" not in widget.headers
    assert widget.headers["vary"] == "Origin"
    # An answer without CORS (not for browsers of other sites) is left as it was.
    assert "access-control-allow-origin" not in health.headers and "vary" not in health.headers


@pytest.mark.parametrize(
    "value", ["https://www.example.com/", "www.example.com", "*,https://a.example", "ftp://a"]
)
def test_an_origin_that_is_not_one_is_refused_with_what_to_write(value: str) -> None:
    with pytest.raises(ValueError, match=r"is not `\*` or a comma list of origins: write e.g."):
        load_settings({"cors_origins": value}, environ={})


def test_origins_are_lower_cased_and_trimmed_as_browsers_send_them() -> None:
    settings = load_settings({"cors_origins": f" {PAGE} ,{OTHER_PAGE.upper()} "}, environ={})
    assert settings.cors_origins == f"{PAGE},{OTHER_PAGE}"
    assert load_settings({"cors_origins": " * "}, environ={}).cors_origins == "*"
