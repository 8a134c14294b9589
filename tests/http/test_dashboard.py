"""The dashboard over HTTP, in-process: sign-in, the session cookie, CSRF, revocation, the
signing-key forms and the live JSON (in Chromium: tests/e2e/test_dashboard_browser.py)."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from http.cookies import SimpleCookie
from importlib import resources

import httpx
import orjson
import pytest

from headcount.auth.access_tokens import create_access_token
from headcount.cli.serve import dashboard_url
from headcount.core.keys import abbreviate_key
from headcount.http.app import HeadcountApp
from headcount.http.cold import cold_app
from headcount.http.dashboard.session import COOKIE, LIFETIME, SIGN_IN_COOKIE
from headcount.http.dashboard.signin import BAD_CREDENTIALS
from headcount.runtime import Runtime
from headcount.settings import Settings, load_settings
from headcount.stores.control import PERMISSIONS, SYSTEM_READ, ControlStore, Environment
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.memory import MemoryLiveStore
from headcount.stores.sql import open_control_store
from tests.conftest import FakeClock
from tests.live_adapters import LiveStoreFactory

pytestmark = pytest.mark.anyio

SIGN_IN = "/dashboard/sign-in"
KEYS = "/dashboard/signing-keys"


@dataclass
class Person:
    environment: Environment
    token_id: str
    secret: str


def _person(
    control: ControlStore, name: str = "default", permissions: tuple[str, ...] = PERMISSIONS
) -> Person:
    environment = control.create_environment(name, f"envkey{name}", 1)
    issued = create_access_token(control, environment.id, permissions, 1)
    return Person(environment, issued.token.id, issued.secret)


@pytest.fixture
def person(control: MemoryControlStore) -> Person:
    return _person(control)


def _field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, f"no {name} field in the page"
    return found.group(1)


async def _sign_in(client: httpx.AsyncClient, token_id: str, secret: str) -> httpx.Response:
    form = await client.get(SIGN_IN)
    fields = {"nonce": _field(form.text, "nonce"), "token_id": token_id, "token_secret": secret}
    return await client.post(SIGN_IN, data=fields)


def _set_cookie(answer: httpx.Response, name: str) -> str:
    for header in answer.headers.get_list("set-cookie"):
        if header.startswith(name + "="):
            return header
    raise AssertionError(f"{name} not set: {answer.headers.get_list('set-cookie')}")


async def _csrf(client: httpx.AsyncClient, path: str = KEYS) -> str:
    return _field((await client.get(path)).text, "csrf")


async def test_a_page_without_a_session_sends_to_sign_in(client: httpx.AsyncClient) -> None:
    for path in ("/dashboard", KEYS, "/dashboard/live.json", "/dashboard/ids/video_id/x"):
        answer = await client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == SIGN_IN


async def test_a_bad_secret_is_refused_with_a_clear_message(
    client: httpx.AsyncClient, person: Person
) -> None:
    answer = await _sign_in(client, person.token_id, "not-the-secret")
    assert answer.status_code == 401
    assert BAD_CREDENTIALS.split(":")[0] in answer.text  # "Sign-in refused"
    assert 'role="alert"' in answer.text
    assert person.token_id in answer.text  # the id stays filled in; the secret does not
    assert "not-the-secret" not in answer.text
    assert COOKIE not in client.cookies
    unknown = await _sign_in(client, "no-such-token", person.secret)
    assert unknown.status_code == 401


async def test_the_session_cookie_is_http_only_same_site_with_an_expiry(
    client: httpx.AsyncClient, person: Person
) -> None:
    answer = await _sign_in(client, person.token_id, person.secret)
    assert answer.status_code == 303 and answer.headers["location"] == "/dashboard"
    header = _set_cookie(answer, COOKIE)
    morsel = SimpleCookie(header)[COOKIE]
    assert morsel["httponly"] and morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/dashboard" and morsel["max-age"] == str(LIFETIME)
    assert not morsel["secure"]  # plain http (the https case below)
    assert person.secret not in header
    page = await client.get("/dashboard")
    assert page.status_code == 200 and person.environment.name in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"


async def test_over_https_the_cookie_is_secure(app: object, person: Person) -> None:
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        answer = await _sign_in(client, person.token_id, person.secret)
        assert SimpleCookie(_set_cookie(answer, COOKIE))[COOKIE]["secure"]


async def test_behind_a_tls_proxy_the_cookie_is_secure(
    client: httpx.AsyncClient, person: Person
) -> None:
    form = await client.get(SIGN_IN, headers={"x-forwarded-proto": "https"})
    assert SimpleCookie(_set_cookie(form, SIGN_IN_COOKIE))[SIGN_IN_COOKIE]["secure"]
    # (httpx keeps a Secure cookie from this plain-http test client: sent back by hand.)
    fields = {"nonce": _field(form.text, "nonce"), "token_id": person.token_id}
    answer = await client.post(
        SIGN_IN,
        data={**fields, "token_secret": person.secret},
        headers={"x-forwarded-proto": "https", "cookie": f"{SIGN_IN_COOKIE}={fields['nonce']}"},
    )
    assert SimpleCookie(_set_cookie(answer, COOKIE))[COOKIE]["secure"]


async def test_sign_in_without_the_form_nonce_is_refused(
    client: httpx.AsyncClient, person: Person
) -> None:
    await client.get(SIGN_IN)  # the nonce cookie, but the form field is missing
    fields = {"token_id": person.token_id, "token_secret": person.secret}
    answer = await client.post(SIGN_IN, data=fields)
    assert answer.status_code == 403 and COOKIE not in client.cookies
    client.cookies.delete(SIGN_IN_COOKIE)  # a form from another site: no nonce cookie
    answer = await client.post(SIGN_IN, data={**fields, "nonce": "guessed"})
    assert answer.status_code == 403


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, person: Person, control: MemoryControlStore
) -> None:
    await _sign_in(client, person.token_id, person.secret)
    for fields in ({"other": "1"}, {"csrf": "forged"}):
        answer = await client.post(KEYS, data=fields)
        assert answer.status_code == 403 and "security token" in answer.text
    assert control.list_signing_keys(person.environment.id, 10, 0) == []
    created = await client.post(KEYS, data={"csrf": await _csrf(client)})
    assert created.status_code == 201
    assert len(control.list_signing_keys(person.environment.id, 10, 0)) == 1


async def test_a_key_is_created_shown_once_and_deleted_after_confirmation(
    client: httpx.AsyncClient,
    person: Person,
    control: MemoryControlStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="headcount.audit")
    await _sign_in(client, person.token_id, person.secret)
    csrf = await _csrf(client)
    created = await client.post(KEYS, data={"csrf": csrf})
    key = control.list_signing_keys(person.environment.id, 10, 0)[0]
    private_key = re.search(r'id="private-key"[^>]*>([^<]+)</textarea>', created.text)
    assert private_key is not None and len(private_key.group(1)) > 1000
    listing = await client.get(KEYS)
    assert key.id in listing.text and private_key.group(1) not in listing.text
    confirm = await client.get(f"{KEYS}/{key.id}/delete")
    assert confirm.status_code == 200 and "cannot be undone" in confirm.text
    assert control.get_signing_key(key.id).deleted_at is None  # type: ignore[union-attr]
    deleted = await client.post(f"{KEYS}/{key.id}/delete", data={"csrf": csrf})
    assert deleted.status_code == 303
    assert control.get_signing_key(key.id).deleted_at is not None  # type: ignore[union-attr]
    again = await client.post(f"{KEYS}/{key.id}/delete", data={"csrf": csrf})
    assert again.status_code == 404  # as the System API answers a deleted key
    # Both changes have their audit line, naming the access token signed in.
    audited = [
        (r.action, r.subject, r.actor)  # type: ignore[attr-defined]
        for r in caplog.records
        if r.name == "headcount.audit"
    ]
    actor = f"access_token:{person.token_id}"
    assert audited == [("signing_key.create", key.id, actor), ("signing_key.delete", key.id, actor)]
    assert private_key.group(1) not in caplog.text


async def test_a_system_read_token_lists_keys_but_cannot_create_nor_read_counts(
    client: httpx.AsyncClient, control: MemoryControlStore
) -> None:
    reader = _person(control, "reader", (SYSTEM_READ,))
    signed_in = await _sign_in(client, reader.token_id, reader.secret)
    assert signed_in.headers["location"] == KEYS
    page = await client.get(KEYS)
    assert page.status_code == 200 and "Create a signing key" not in page.text
    answer = await client.post(KEYS, data={"csrf": _field(page.text, "csrf")})
    assert answer.status_code == 403
    assert control.list_signing_keys(reader.environment.id, 10, 0) == []
    # Live counts need data:read, as /system/v1/live does.
    for path in ("/dashboard", "/dashboard/live.json", "/dashboard/data/video_id/x"):
        refused = await client.get(path)
        assert refused.status_code == 403 and "data:read" in refused.text


async def test_a_revoked_token_ends_its_session_on_the_next_request(
    client: httpx.AsyncClient, person: Person, control: MemoryControlStore
) -> None:
    await _sign_in(client, person.token_id, person.secret)
    assert (await client.get(KEYS)).status_code == 200
    control.revoke_access_token(person.token_id)
    answer = await client.get(KEYS)
    assert answer.status_code == 303 and answer.headers["location"] == SIGN_IN + "?ended=1"
    assert "Max-Age=0" in _set_cookie(answer, COOKIE)
    assert "session ended" in (await client.get(answer.headers["location"])).text


async def test_an_expired_or_tampered_cookie_is_refused(
    client: httpx.AsyncClient, person: Person, clock: FakeClock
) -> None:
    await _sign_in(client, person.token_id, person.secret)
    genuine = client.cookies[COOKIE]
    names, _, signed = genuine.partition("~")
    client.cookies.set(COOKIE, names + "~" + signed[:-2] + "xx", path="/dashboard")
    assert (await client.get(KEYS)).status_code == 303
    client.cookies.set(COOKIE, genuine, path="/dashboard")
    clock.advance(LIFETIME - 5)
    assert (await client.get(KEYS)).status_code == 200
    clock.advance(10)
    assert (await client.get(KEYS)).status_code == 303


async def test_sign_out_ends_the_session(client: httpx.AsyncClient, person: Person) -> None:
    await _sign_in(client, person.token_id, person.secret)
    answer = await client.post("/dashboard/sign-out", data={"csrf": await _csrf(client)})
    assert answer.status_code == 303 and "Max-Age=0" in _set_cookie(answer, COOKIE)
    assert answer.headers["location"] == SIGN_IN + "?signed_out=1"
    assert COOKIE not in client.cookies
    assert (await client.get(KEYS)).status_code == 303


async def test_a_second_environment_joins_the_session_and_the_picker_switches(
    client: httpx.AsyncClient, person: Person, control: MemoryControlStore
) -> None:
    other = _person(control, "staging")
    await _sign_in(client, person.token_id, person.secret)
    assert 'id="environment-picker"' not in (await client.get(KEYS)).text
    await _sign_in(client, other.token_id, other.secret)
    page = await client.get(KEYS)
    assert 'id="environment-picker"' in page.text and "Keys of <strong>staging" in page.text
    switched = await client.post(
        "/dashboard/environment", data={"csrf": _field(page.text, "csrf"), "token": person.token_id}
    )
    assert switched.status_code == 303
    assert "Keys of <strong>default" in (await client.get(KEYS)).text


async def test_live_json_lists_a_watched_id_with_its_series_over_every_live_store(
    live_store_factory: LiveStoreFactory,
    settings: Settings,
    control: MemoryControlStore,
    clock: FakeClock,
    person: Person,
) -> None:
    runtime = Runtime(settings=settings, control=control, live=live_store_factory(), clock=clock)
    app = HeadcountApp(runtime, clock=clock)
    await runtime.start()
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            await _watch_and_read(client, person, runtime, clock)
    finally:
        await runtime.stop()


async def _watch_and_read(
    client: httpx.AsyncClient, person: Person, runtime: Runtime, clock: FakeClock
) -> None:
    event = {
        "e": "viewstart",
        "ake": person.environment.env_key,
        "xid": "view-1",
        "xsqno": 1,
        abbreviate_key("video_id"): "video-1",
        abbreviate_key("mux_viewer_id"): "viewer-1",
    }
    assert (await client.post("/", content=orjson.dumps({"events": [event]}))).status_code == 200
    await runtime.live.sweep(clock.now)  # counts are read as of the last sweep
    await _sign_in(client, person.token_id, person.secret)
    answer = await client.get("/dashboard/live.json")
    assert answer.status_code == 200
    assert answer.json()["environment"]["views"] == 1
    row = answer.json()["data"][0]
    assert (row["id_type"], row["id"]) == ("video_id", "video-1")
    assert (row["views"], row["viewers"], row["peak_views"]) == (1, 1, 1)
    # The sparkline's hour: 60 minutes, 0 before the id was first watched, 1 now.
    assert len(row["series"]) == 60 and row["series"][0][1] == 0 and row["series"][-1][1] == 1
    assert row["series"][-1][0] == clock.now // 60 * 60
    page = await client.get("/dashboard")
    assert "/dashboard/ids/video_id/video-1" in page.text
    detail = await client.get("/dashboard/data/video_id/video-1")
    assert detail.json()["views"] == 1
    assert (await client.get("/dashboard/ids/nonsense/video-1")).status_code == 404


async def test_a_session_from_one_node_holds_on_another_sharing_the_control_store(
    settings: Settings, clock: FakeClock
) -> None:
    """The control store and the dashboard_session_secret setting are shared: the cookie's
    key derives from both. A node with another secret (or none given) refuses the cookie."""
    shared = settings.replace(dashboard_session_secret="the deployment's own")
    nodes = [open_control_store(settings.database_url) for _ in range(3)]
    node_settings = [shared, shared, settings.replace(dashboard_session_secret="another")]
    runtimes = [
        Runtime(s, store, MemoryLiveStore(), clock=clock)
        for s, store in zip(node_settings, nodes, strict=True)
    ]
    person = _person(nodes[0])
    try:
        clients = [
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=HeadcountApp(r, clock=clock)),
                base_url="http://testserver",
            )
            for r in runtimes
        ]
        async with clients[0] as first, clients[1] as second, clients[2] as third:
            await _sign_in(first, person.token_id, person.secret)
            second.cookies.set(COOKIE, first.cookies[COOKIE], path="/dashboard")
            page = await second.get(KEYS)
            assert page.status_code == 200 and "Keys of <strong>default" in page.text
            # The stored hashes alone (what a copy of the control store gives) are not enough.
            third.cookies.set(COOKIE, first.cookies[COOKIE], path="/dashboard")
            assert (await third.get(KEYS)).status_code == 303
            nodes[0].revoke_access_token(person.token_id)  # on the first node
            assert (await second.get(KEYS)).status_code == 303  # ends it on the second
    finally:
        for store in nodes:
            store.close()


@pytest.mark.parametrize(
    ("role", "url"),
    [
        ("all", "http://127.0.0.1:8000/dashboard"),
        ("system", "http://127.0.0.1:8000/dashboard"),
        ("collector,counts", None),
    ],
)
def test_the_dashboard_is_served_and_announced_with_the_system_api(
    role: str, url: str | None
) -> None:
    settings = load_settings({"role": role, "host": "0.0.0.0", "port": 8000}, environ={})
    assert dashboard_url(settings) == url
    routes = {
        getattr(r, "path", "")
        for r in cold_app(Runtime(settings, MemoryControlStore(), MemoryLiveStore())).routes
    }
    assert ("/dashboard" in routes) == (url is not None)


def test_the_vendored_uplot_is_present_with_its_mit_licence() -> None:
    vendor = resources.files("headcount.http") / "static" / "vendor"
    licence = (vendor / "LICENSE.uplot").read_text()
    assert licence.startswith("The MIT License") and "Leon Sorokin" in licence
    banner = "/*! https://github.com/leeoniya/uPlot (v1.6.32) */"
    assert (vendor / "uPlot.iife.min.js").read_text().startswith(banner)
    assert (vendor / "uPlot.min.css").is_file()


async def test_the_static_files_are_served_and_no_template_has_an_inline_script(
    client: httpx.AsyncClient,
) -> None:
    for name in ("dashboard.js", "dashboard.css", "uPlot.iife.min.js", "LICENSE.uplot"):
        assert (await client.get(f"/dashboard/static/{name}")).status_code == 200
    assert (await client.get("/dashboard/static/nothing.js")).status_code == 404
    templates = resources.files("headcount.http.dashboard") / "templates"
    for template in templates.iterdir():
        text = template.read_text()
        # The CSP allows same-origin script files only: an inline script would not run.
        assert re.search(r"<script(?![^>]*\bsrc=)", text) is None, template.name
        assert re.search(r"\son[a-z]+=", text) is None, template.name  # no inline handlers
