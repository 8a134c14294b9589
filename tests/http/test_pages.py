"""The element's URLs (``/widget/...``) and the demo (``/demo``, ``/demo/token``, its assets),
in-process. The browser side of both is tests/e2e/test_widget_browser.py."""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from importlib import resources

import httpx
import jwt
import pytest

from headcount.auth.access_tokens import create_access_token
from headcount.auth.environments import create_environment
from headcount.cli.serve import demo_url
from headcount.http.app import HeadcountApp
from headcount.http.demo_key import DEMO_VIDEO_ID, TOKEN_LIFETIME
from headcount.http.pages import SHORT_CACHE, WIDGET_NAME
from headcount.runtime import Runtime
from headcount.settings import Settings, load_settings
from headcount.stores.control import PERMISSIONS
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.memory import MemoryLiveStore
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

SCRIPT = (resources.files("headcount.http") / "static" / WIDGET_NAME).read_bytes()


@pytest.fixture
def clock() -> FakeClock:
    # Demo tokens are signed with the wall clock (as sign_viewer_counts does): the app that
    # verifies them must read the same time.
    return FakeClock(time.time())


@pytest.fixture
def default_env_key(control: MemoryControlStore) -> str:
    create_environment(control, "other", 1)  # older than "default": the name wins
    return create_environment(control, "default", 2).env_key


async def test_the_element_is_served_with_cors_and_a_short_cache(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get(f"/widget/{WIDGET_NAME}")
    assert answer.status_code == 200
    assert answer.content == SCRIPT
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["cache-control"] == f"public, max-age={SHORT_CACHE}"


async def test_the_versioned_url_is_immutable_and_named_by_the_manifest(
    client: httpx.AsyncClient,
) -> None:
    manifest = (await client.get("/widget/headcount-viewers.json")).json()
    version = hashlib.sha256(SCRIPT).hexdigest()[:16]
    assert manifest["url"] == f"/widget/{version}/{WIDGET_NAME}"
    sha384 = base64.b64encode(hashlib.sha384(SCRIPT).digest()).decode()
    assert manifest["integrity"] == f"sha384-{sha384}"

    answer = await client.get(manifest["url"])
    assert answer.status_code == 200
    assert answer.content == SCRIPT
    assert answer.headers["content-type"].startswith("text/javascript")
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"


async def test_an_old_version_is_not_found_rather_than_the_new_script(
    client: httpx.AsyncClient,
) -> None:
    answer = await client.get(f"/widget/0123456789abcdef/{WIDGET_NAME}")
    assert answer.status_code == 404
    assert answer.json()["error"]["type"] == "not_found"


async def test_the_demo_page_names_the_default_environment_and_the_pinned_element(
    client: httpx.AsyncClient, default_env_key: str
) -> None:
    answer = await client.get("/demo")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    manifest = (await client.get("/widget/headcount-viewers.json")).json()
    assert f'src="{manifest["url"]}"' in answer.text
    assert f'"env_key": "{default_env_key}"' in answer.text
    assert f'"video_id": "{DEMO_VIDEO_ID}"' in answer.text
    assert "__" not in answer.text.split("<body>", 1)[1].split('<script type="module">')[0]


@pytest.mark.parametrize("host", ["127.0.0.1:8123", "[::1]:8123"])
async def test_the_demo_on_a_loopback_address_moves_to_localhost(
    client: httpx.AsyncClient, host: str
) -> None:
    # mux-embed posts over plain http only to a bare localhost[:port].
    answer = await client.get("/demo", headers={"host": host})
    assert answer.status_code == 302
    assert answer.headers["location"] == "http://localhost:8123/demo"


async def test_a_demo_token_reads_the_demo_video_only_and_is_reused(
    client: httpx.AsyncClient, default_env_key: str, control: MemoryControlStore
) -> None:
    answer = await client.get("/demo/token")
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in answer.headers  # same-origin pages only
    token = answer.json()["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == DEMO_VIDEO_ID and claims["aud"] == "video_id"
    assert abs(claims["exp"] - (time.time() + TOKEN_LIFETIME)) < 5
    assert answer.json()["expires_at"] == claims["exp"]

    counts = await client.get("/counts", params={"token": token})
    assert counts.status_code == 200, counts.text
    assert counts.json()["data"][0]["views"] == 0

    key = control.get_signing_key(claims["kid"])
    assert key is not None and key.deleted_at is None
    assert b"PRIVATE" not in key.public_key_pem
    assert (await client.get("/demo/token")).json()["token"] == token  # no signature per request


async def test_the_demo_key_is_deleted_when_the_process_stops(
    runtime: Runtime,
    clock: FakeClock,
    default_env_key: str,
    control: MemoryControlStore,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    app = HeadcountApp(runtime, clock=clock)
    await runtime.start()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        token = (await client.get("/demo/token")).json()["token"]
    await runtime.stop()
    key_id = jwt.decode(token, options={"verify_signature": False})["kid"]
    key = control.get_signing_key(key_id)
    assert key is not None and key.deleted_at is not None
    assert key_id in caplog.text
    assert "PRIVATE" not in caplog.text and token not in caplog.text


async def test_a_demo_key_deleted_by_hand_is_replaced_by_a_new_one(
    client: httpx.AsyncClient, control: MemoryControlStore
) -> None:
    environment = create_environment(control, "default", 1)
    issued = create_access_token(control, environment.id, PERMISSIONS, 1)
    first = (await client.get("/demo/token")).json()["token"]
    key_id = jwt.decode(first, options={"verify_signature": False})["kid"]
    auth = (issued.token.id, issued.secret)
    deleted = await client.delete(f"/system/v1/signing-keys/{key_id}", auth=auth)
    assert deleted.status_code == 204
    assert (await client.get("/counts", params={"token": first})).status_code == 403

    second = (await client.get("/demo/token")).json()["token"]
    assert jwt.decode(second, options={"verify_signature": False})["kid"] != key_id
    assert (await client.get("/counts", params={"token": second})).status_code == 200


async def test_the_demo_serves_its_clip_and_the_vendored_mux_embed_with_its_licence(
    client: httpx.AsyncClient,
) -> None:
    video = await client.get("/demo/video.webm")
    assert video.status_code == 200 and video.headers["content-type"] == "video/webm"
    mux = await client.get("/demo/vendor/mux-embed.js")
    assert mux.status_code == 200 and b"@version 5.19.0" in mux.content[:200]
    licence = await client.get("/demo/vendor/LICENSE.mux-embed")
    assert licence.status_code == 200 and "MIT License" in licence.text
    assert (await client.get("/demo/../pyproject.toml")).status_code == 404
    assert (await client.get("/demo/nothing.js")).status_code == 404


async def test_without_an_environment_the_demo_says_so(client: httpx.AsyncClient) -> None:
    page = await client.get("/demo")
    assert page.status_code == 200 and '"env_key": null' in page.text
    token = await client.get("/demo/token")
    assert token.status_code == 404
    assert "headcount init" in token.json()["error"]["messages"][0]


@pytest.mark.parametrize(
    "changes", [{"demo": False}, {"role": "counts,system"}], ids=["demo-off", "no-collector"]
)
async def test_the_demo_is_off_by_setting_or_role_but_the_element_stays(
    settings: Settings, control: MemoryControlStore, clock: FakeClock, changes: dict[str, object]
) -> None:
    runtime = Runtime(
        settings=settings.replace(**changes), control=control, live=MemoryLiveStore(), clock=clock
    )
    transport = httpx.ASGITransport(app=HeadcountApp(runtime, clock=clock))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await client.get("/demo")).status_code == 404
        assert (await client.get("/demo/token")).status_code == 404
        assert (await client.get(f"/widget/{WIDGET_NAME}")).status_code == 200


@pytest.mark.parametrize(
    ("changes", "url"),
    [
        ({}, "http://localhost:8000/demo"),
        ({"host": "0.0.0.0", "port": 9000}, "http://localhost:9000/demo"),
        ({"host": "::1"}, "http://localhost:8000/demo"),
        ({"host": "10.1.2.3"}, "http://10.1.2.3:8000/demo"),
        ({"demo": False}, None),
        ({"role": "collector"}, None),
    ],
)
def test_serve_prints_where_the_demo_opens(changes: dict[str, object], url: str | None) -> None:
    assert demo_url(load_settings(changes, environ={})) == url
