"""``/openapi.json`` and ``/docs/api``: a valid OpenAPI 3.1 document that names exactly the
routes the app serves, and real answers over real sockets that match its schemas."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from openapi_spec_validator import validate

from headcount.auth.access_tokens import create_access_token
from headcount.http.app import HeadcountApp
from headcount.http.openapi import GET_WITHOUT_HEAD, openapi_document
from headcount.runtime import Runtime
from headcount.stores.control import SYSTEM_READ
from tests.http.openapi_kit import check_answer, documented_operations, served_operations
from tests.http.protocol_site import Site

KEYS = "/system/v1/signing-keys"


def test_the_document_is_valid_openapi_3_1() -> None:
    document = openapi_document()
    assert document["openapi"] == "3.1.0"
    validate(document)  # raises on the first problem


@pytest.fixture
def every_route(runtime: Runtime) -> HeadcountApp:
    """An app with every surface and the demo (the defaults); its routes, never started."""
    assert runtime.settings.role == "all" and runtime.settings.demo
    return HeadcountApp(runtime)


def test_every_route_served_is_documented_and_every_documented_one_is_served(
    every_route: HeadcountApp,
) -> None:
    served = {(m, p) for m, p in served_operations(every_route) if m != "HEAD"}
    documented = documented_operations()
    undocumented = sorted(served - documented)
    unserved = sorted(documented - served)
    assert not undocumented, (
        f"served but missing from headcount/http/openapi_paths.py PATHS: {undocumented}"
    )
    assert not unserved, f"documented in openapi_paths.py but not served: {unserved}"


def test_head_is_served_wherever_get_is_but_where_the_document_says(
    every_route: HeadcountApp,
) -> None:
    heads = {p for m, p in served_operations(every_route) if m == "HEAD"}
    gets = {p for m, p in documented_operations() if m == "GET"}
    assert heads == gets - set(GET_WITHOUT_HEAD)
    assert "except `/counts/stream`" in openapi_document()["info"]["description"]


@pytest.fixture
def http(live_site: Site) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"http://127.0.0.1:{live_site.server.port}", timeout=5) as client:
        yield client


def test_the_document_and_its_page_are_served(http: httpx.Client) -> None:
    answer = http.get("/openapi.json")
    check_answer(answer, "GET", "/openapi.json")
    assert answer.json() == orjson.loads(orjson.dumps(openapi_document()))
    page = http.get("/docs/api")
    check_answer(page, "GET", "/docs/api")
    for path, item in openapi_document()["paths"].items():
        for operation in item.values():
            assert f'id="{operation["operationId"]}"' in page.text, path
    # Self-contained: nothing loaded from another host, no script at all.
    assert "<script" not in page.text and 'src="http' not in page.text


def test_counts_and_collector_answers_match_the_schemas(
    live_site: Site, http: httpx.Client
) -> None:
    video = f"openapi-{time.time_ns()}"
    posted = http.post("/collect", content=live_site.beacon(video))
    check_answer(posted, "POST", "/collect")
    check_answer(http.post("/", content=b'{"events":[0,{"e":"hb"}]}'), "POST", "/")
    check_answer(http.post("/", content=b"not json"), "POST", "/")
    check_answer(http.post("/", content=b'{"events":[' + b"0," * 2000 + b"0]}"), "POST", "/")
    check_answer(http.post("/", content=b" " * 10_000), "POST", "/")  # over max_body_bytes
    counted = http.get("/counts", params={"token": live_site.token(video)})
    check_answer(counted, "GET", "/counts")
    assert counted.json()["data"][0]["views"] == 1
    check_answer(http.get("/counts"), "GET", "/counts")
    check_answer(http.get("/counts", params={"token": "a.b.c"}), "GET", "/counts")
    for path in ("/", "/collect", "/counts", "/counts/stream"):
        check_answer(http.options(path), "OPTIONS", path)
    with http.stream("GET", "/counts/stream", params={"token": live_site.token(video)}) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"] == "text/event-stream"
        assert stream.headers["access-control-allow-origin"] == "*"
        first = next(stream.iter_lines())
        assert first.startswith("retry:")
    check_answer(http.get("/counts/stream", params={"token": "x"}), "GET", "/counts/stream")


def test_system_api_answers_match_the_schemas(live_site: Site, http: httpx.Client) -> None:
    auth = (live_site.token_id, live_site.token_secret)
    created = http.post(KEYS, auth=auth)
    check_answer(created, "POST", KEYS)
    key_id = created.json()["data"]["id"]
    check_answer(http.get(KEYS, auth=auth, params={"limit": 2}), "GET", KEYS)
    check_answer(http.get(KEYS, auth=auth, params={"limit": 0}), "GET", KEYS)
    check_answer(http.get(KEYS), "GET", KEYS)
    check_answer(http.get("/video/v1/signing-keys", auth=auth), "GET", "/video/v1/signing-keys")
    item = KEYS + "/{key_id}"
    check_answer(http.get(f"{KEYS}/{key_id}", auth=auth), "GET", item)
    check_answer(http.get(f"{KEYS}/nope", auth=auth), "GET", item)
    check_answer(http.delete(f"{KEYS}/{key_id}", auth=auth), "DELETE", item)
    check_answer(http.delete(f"{KEYS}/{key_id}", auth=auth), "DELETE", item)
    reader = create_access_token(
        live_site.runtime.control, live_site.environment.id, [SYSTEM_READ], int(time.time())
    )
    forbidden = http.post(KEYS, auth=(reader.token.id, reader.secret))
    assert forbidden.status_code == 403
    check_answer(forbidden, "POST", KEYS)
    check_answer(http.get("/system/v1/whoami", auth=auth), "GET", "/system/v1/whoami")
    check_answer(http.get("/system/v1/whoami"), "GET", "/system/v1/whoami")


def test_operations_and_pages_answers_match_the_schemas(http: httpx.Client) -> None:
    for path in ("/healthz", "/readyz", "/metrics", "/demo/token", "/demo"):
        check_answer(http.get(path), "GET", path)
    check_answer(http.get("/widget/headcount-viewers.js"), "GET", "/widget/headcount-viewers.js")
    manifest = http.get("/widget/headcount-viewers.json")
    check_answer(manifest, "GET", "/widget/headcount-viewers.json")
    pinned = "/widget/{version}/headcount-viewers.js"
    check_answer(http.get(manifest.json()["url"]), "GET", pinned)
    check_answer(http.get("/widget/0000000000000000/headcount-viewers.js"), "GET", pinned)
    for name in ("video.webm", "vendor/mux-embed.js", "vendor/LICENSE.mux-embed", "nope"):
        check_answer(http.get(f"/demo/{name}"), "GET", "/demo/{name}")


def test_adding_a_route_without_documenting_it_names_it(every_route: HeadcountApp) -> None:
    # The check the lead relies on when merging new endpoints: it says what is missing.
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: object) -> Response:
        return Response()

    assert isinstance(every_route.cold, Starlette)
    new = Route("/data/v1/new-thing/{id:str}", endpoint, methods=["GET"])
    every_route.cold.router.routes.append(new)
    with pytest.raises(AssertionError, match=r"\('GET', '/data/v1/new-thing/\{id\}'\)"):
        test_every_route_served_is_documented_and_every_documented_one_is_served(every_route)
