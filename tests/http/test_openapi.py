"""``/openapi.json`` and ``/docs/api``: a valid OpenAPI 3.1 document that names exactly the
routes the app serves, and real answers over real sockets that match its schemas."""

from __future__ import annotations

import re
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
from headcount.stores.control import DATA_READ, SYSTEM_READ
from tests.http.openapi_kit import check_answer, documented_operations, served_operations
from tests.http.protocol_site import Site

KEYS = "/system/v1/signing-keys"
MONITORING = "/data/v1/monitoring/metrics/{metric}"
CCV = "/data/v1/monitoring/metrics/current-concurrent-viewers"


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


def _token(site: Site, *permissions: str) -> tuple[str, str]:
    issued = create_access_token(
        site.runtime.control, site.environment.id, permissions, int(time.time())
    )
    return issued.token.id, issued.secret


def _watched(site: Site, http: httpx.Client) -> str:
    video = f"openapi-live-{time.time_ns()}"
    assert http.post("/collect", content=site.beacon(video)).json()["accepted"] > 0
    return video


def test_live_api_answers_match_the_schemas(live_site: Site, http: httpx.Client) -> None:
    video = _watched(live_site, http)
    reader = _token(live_site, DATA_READ)  # data:read only: enough for every read here
    top = http.get("/system/v1/live", auth=reader, params={"id_type": "video_id", "limit": 5})
    check_answer(top, "GET", "/system/v1/live")
    assert video in [entry["id"] for entry in top.json()["data"]]
    for params in ({"limit": 0}, {"page": "x"}, {"id_type": "nope"}):
        refused = http.get("/system/v1/live", auth=reader, params=params)
        assert refused.status_code == 400
        check_answer(refused, "GET", "/system/v1/live")
    check_answer(
        http.get("/system/v1/live", params={"page": 10**30}, auth=reader), "GET", "/system/v1/live"
    )
    check_answer(http.get("/system/v1/live"), "GET", "/system/v1/live")
    system_only = http.get("/system/v1/live", auth=_token(live_site, SYSTEM_READ))
    assert system_only.status_code == 403
    check_answer(system_only, "GET", "/system/v1/live")
    environment = http.get("/system/v1/live/environment", auth=reader)
    check_answer(environment, "GET", "/system/v1/live/environment")
    assert environment.json()["data"]["id_type"] == "environment"
    one = "/system/v1/live/{id_type}/{id}"
    detail = http.get(f"/system/v1/live/video_id/{video}", auth=reader)
    check_answer(detail, "GET", one)
    assert detail.json()["data"]["views"] == 1 and detail.json()["data"]["series"]
    check_answer(http.get("/system/v1/live/video_id/never-watched", auth=reader), "GET", one)
    check_answer(http.get("/system/v1/live/nope/x", auth=reader), "GET", one)
    check_answer(http.get(f"/system/v1/live/video_id/{video}"), "GET", one)


def test_monitoring_api_answers_match_the_schemas(live_site: Site, http: httpx.Client) -> None:
    video = _watched(live_site, http)
    reader = _token(live_site, DATA_READ)
    for path in ("/data/v1/monitoring/metrics", "/data/v1/monitoring/dimensions"):
        check_answer(http.get(path, auth=reader), "GET", path)
        check_answer(http.get(path), "GET", path)
    asked = [
        ("/timeseries", {}),
        ("/timeseries", {"filters[]": f"video_id:{video}", "timestamp": int(time.time()) - 60}),
        ("/breakdown", {}),
        ("/breakdown", {"dimension": "video_id", "order_by": "field", "order_direction": "asc"}),
        ("/breakdown", {"filters[]": f"video_id:{video}"}),
        ("/breakdown-timeseries", {"limit": 3}),
        ("/breakdown-timeseries", {"timeframe[]": [int(time.time()) - 600, int(time.time())]}),
    ]
    answers = {}
    for suffix, params in asked:
        answer = http.get(CCV + suffix, auth=reader, params=params)
        check_answer(answer, "GET", MONITORING + suffix)
        assert answer.status_code == 200, (suffix, params, answer.text)
        answers[suffix] = answer.json()
    assert answers["/breakdown"]["data"][0]["value"] == video
    assert answers["/timeseries"]["data"][-1]["concurrent_viewers"] >= 1
    assert answers["/breakdown-timeseries"]["data"][-1]["values"]
    refused = [
        ("/breakdown", {"dimension": "country"}),
        ("/breakdown", {"filters[]": [f"video_id:{video}", "asset_id:a"]}),
        ("/breakdown", {"filters[]": f"!video_id:{video}"}),
        ("/breakdown-timeseries", {"limit": 1000}),
        ("/breakdown-timeseries", {"timeframe[]": [1]}),
        ("/breakdown-timeseries", {"timeframe[]": ["9" * 5000, "1"]}),  # was a 500
        ("/timeseries", {"timestamp": "yesterday"}),
    ]
    for suffix, params in refused:
        answer = http.get(CCV + suffix, auth=reader, params=params)
        assert answer.status_code == 400, (suffix, params)
        check_answer(answer, "GET", MONITORING + suffix)
    other_metric = http.get("/data/v1/monitoring/metrics/rebuffer-count/timeseries", auth=reader)
    assert other_metric.status_code == 400
    check_answer(other_metric, "GET", MONITORING + "/timeseries")
    system_only = http.get(CCV + "/breakdown", auth=_token(live_site, SYSTEM_READ))
    assert system_only.status_code == 403
    check_answer(system_only, "GET", MONITORING + "/breakdown")
    check_answer(
        http.get(CCV + "/breakdown-timeseries"), "GET", MONITORING + "/breakdown-timeseries"
    )


def _field(page: httpx.Response, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page.text)
    assert found is not None, f"no {name} field in {page.url}"
    return found.group(1)


def test_dashboard_answers_match_the_schemas(live_site: Site, http: httpx.Client) -> None:
    sign_in = "/dashboard/sign-in"
    check_answer(http.get("/dashboard"), "GET", "/dashboard")  # no session: 303
    check_answer(http.get("/dashboard/"), "GET", "/dashboard/")
    form = http.get(sign_in)
    check_answer(form, "GET", sign_in)
    fields = {"nonce": _field(form, "nonce"), "token_id": live_site.token_id}
    wrong = http.post(sign_in, data={**fields, "token_secret": "wrong"})
    assert wrong.status_code == 401
    check_answer(wrong, "POST", sign_in)
    check_answer(http.post(sign_in, data={**fields, "nonce": "guessed"}), "POST", sign_in)
    check_answer(http.post(sign_in, content=b"{}"), "POST", sign_in)  # not a form: 400
    fields = {"nonce": _field(http.get(sign_in), "nonce"), "token_id": live_site.token_id}
    signed_in = http.post(sign_in, data={**fields, "token_secret": live_site.token_secret})
    assert signed_in.status_code == 303
    check_answer(signed_in, "POST", sign_in)

    video = _watched(live_site, http)
    pages = [
        ("/dashboard", "/dashboard", 200),
        ("/dashboard/live.json", "/dashboard/live.json", 200),
        (f"/dashboard/ids/video_id/{video}", "/dashboard/ids/{id_type}/{id}", 200),
        ("/dashboard/ids/nope/x", "/dashboard/ids/{id_type}/{id}", 404),
        (f"/dashboard/data/video_id/{video}", "/dashboard/data/{id_type}/{id}", 200),
        ("/dashboard/data/nope/x", "/dashboard/data/{id_type}/{id}", 404),
        ("/dashboard/signing-keys", "/dashboard/signing-keys", 200),
        (f"/dashboard/signing-keys?page={'9' * 5000}", "/dashboard/signing-keys", 200),  # was 500
        ("/dashboard/signing-keys/nope/delete", "/dashboard/signing-keys/{key_id}/delete", 404),
        ("/dashboard/static/dashboard.js", "/dashboard/static/{name}", 200),
        ("/dashboard/static/dashboard.css", "/dashboard/static/{name}", 200),
        ("/dashboard/static/LICENSE.uplot", "/dashboard/static/{name}", 200),
        ("/dashboard/static/nope.js", "/dashboard/static/{name}", 404),
    ]
    for url, path, status in pages:
        answer = http.get(url)
        assert answer.status_code == status, url
        check_answer(answer, "GET", path)
    live = http.get("/dashboard/live.json").json()
    assert video in [row["id"] for row in live["data"]]

    keys = "/dashboard/signing-keys"
    csrf = _field(http.get(keys), "csrf")
    check_answer(http.post(keys, data={"csrf": "wrong"}), "POST", keys)  # 403
    created = http.post(keys, data={"csrf": csrf})
    assert created.status_code == 201
    check_answer(created, "POST", keys)
    key_id = re.findall(r"/dashboard/signing-keys/([^/\"]+)/delete", created.text)[-1]
    delete = "/dashboard/signing-keys/{key_id}/delete"
    check_answer(http.get(f"{keys}/{key_id}/delete"), "GET", delete)
    deleted = http.post(f"{keys}/{key_id}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303
    check_answer(deleted, "POST", delete)
    check_answer(http.post(f"{keys}/{key_id}/delete", data={"csrf": csrf}), "POST", delete)  # 404
    switch = "/dashboard/environment"
    check_answer(
        http.post(switch, data={"csrf": csrf, "token": live_site.token_id}), "POST", switch
    )
    check_answer(http.post(switch, data={"csrf": csrf, "token": "other"}), "POST", switch)  # 403
    check_answer(
        http.post(switch, content=b"x", headers={"content-type": "text/plain"}), "POST", switch
    )  # 400
    signed_out = http.post("/dashboard/sign-out", data={"csrf": csrf})
    assert signed_out.status_code == 303
    check_answer(signed_out, "POST", "/dashboard/sign-out")
    http.cookies.clear()
    check_answer(http.post(keys, data={"csrf": csrf}), "POST", keys)  # no session: 303

    # A token without data:read: the live pages refuse it with 403, as a page and as JSON.
    reader_id, reader_secret = _token(live_site, SYSTEM_READ)
    fields = {"nonce": _field(http.get(sign_in), "nonce"), "token_id": reader_id}
    assert http.post(sign_in, data={**fields, "token_secret": reader_secret}).status_code == 303
    for url, path, _ in pages[:2] + pages[4:5]:
        refused = http.get(url)
        assert refused.status_code == 403, url
        check_answer(refused, "GET", path)
    assert http.post(keys, data={"csrf": _field(http.get(keys), "csrf")}).status_code == 403
    http.cookies.clear()


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
