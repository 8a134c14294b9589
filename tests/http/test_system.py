"""The System API in-process: Mux's statuses, envelopes, pagination, auth and isolation."""

from __future__ import annotations

import base64
from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import create_engine

from headcount.auth.access_tokens import create_access_token, hash_secret
from headcount.auth.environments import create_environment
from headcount.http.app import HeadcountApp
from headcount.runtime import Runtime
from headcount.settings import Settings
from headcount.stores.control import PERMISSIONS, SYSTEM_READ, AccessToken, SigningKey
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.memory import MemoryLiveStore
from headcount.stores.sql import SqlControlStore
from tests.conftest import FakeClock

pytestmark = pytest.mark.anyio

KEYS = "/system/v1/signing-keys"
LEGACY = "/video/v1/signing-keys"
UNAUTHORIZED = {"error": {"type": "unauthorized", "messages": ["Unauthorized request"]}}
PEM = b"-----BEGIN PUBLIC KEY-----\nplaceholder\n-----END PUBLIC KEY-----\n"


@dataclass
class Caller:
    environment_id: str
    token_id: str
    secret: str

    @property
    def auth(self) -> tuple[str, str]:
        return self.token_id, self.secret


def _caller(control: MemoryControlStore, *permissions: str, environment: str = "") -> Caller:
    environment_id = environment or create_environment(control, "env", 1).id
    issued = create_access_token(control, environment_id, permissions or PERMISSIONS, 1)
    return Caller(environment_id, issued.token.id, issued.secret)


@pytest.fixture
def admin(control: MemoryControlStore) -> Caller:
    return _caller(control)


def _add_keys(control: MemoryControlStore, environment_id: str, count: int) -> list[str]:
    ids = [f"key{i:03d}" for i in range(count)]
    for i, key_id in enumerate(ids):
        control.add_signing_key(SigningKey(key_id, environment_id, PEM, created_at=1000 + i))
    return ids


async def test_create_answers_201_with_id_created_at_string_and_private_key(
    client: httpx.AsyncClient, admin: Caller, clock: FakeClock
) -> None:
    answer = await client.post(KEYS, auth=admin.auth)
    assert answer.status_code == 201
    data = answer.json()["data"]
    assert set(data) == {"id", "created_at", "private_key"}
    assert data["created_at"] == str(int(clock.now))
    assert base64.b64decode(data["private_key"]).startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in answer.headers  # like api.mux.com


async def test_create_ignores_a_body_and_unknown_query_parameters(
    client: httpx.AsyncClient, admin: Caller
) -> None:
    answer = await client.post(
        f"{KEYS}?product=data", auth=admin.auth, content=b'{"whatever": true}'
    )
    assert answer.status_code == 201
    again = await client.post(KEYS, auth=admin.auth)  # a second key is not a conflict
    assert again.status_code == 201
    assert again.json()["data"]["id"] != answer.json()["data"]["id"]


async def test_get_and_list_show_the_key_without_its_private_key(
    client: httpx.AsyncClient, admin: Caller
) -> None:
    created = (await client.post(KEYS, auth=admin.auth)).json()["data"]
    expected = {"id": created["id"], "created_at": created["created_at"]}
    got = await client.get(f"{KEYS}/{created['id']}", auth=admin.auth)
    assert (got.status_code, got.json()) == (200, {"data": expected})
    listed = await client.get(KEYS, auth=admin.auth)
    assert (listed.status_code, listed.json()) == (200, {"data": [expected]})


async def test_delete_answers_204_then_the_key_is_gone_and_caches_are_told(
    client: httpx.AsyncClient, admin: Caller, runtime: Runtime
) -> None:
    forgotten: list[str] = []
    runtime.on_signing_key_deleted.append(forgotten.append)
    key_id = (await client.post(KEYS, auth=admin.auth)).json()["data"]["id"]
    deleted = await client.delete(f"{KEYS}/{key_id}", auth=admin.auth)
    assert (deleted.status_code, deleted.content) == (204, b"")
    assert forgotten == [key_id]
    assert (await client.get(f"{KEYS}/{key_id}", auth=admin.auth)).status_code == 404
    assert (await client.get(KEYS, auth=admin.auth)).json() == {"data": []}
    again = await client.delete(f"{KEYS}/{key_id}", auth=admin.auth)
    assert again.status_code == 404  # never 409: the SDKs would retry it
    assert forgotten == [key_id]


async def test_pages_walk_every_key_oldest_first_then_an_empty_page(
    client: httpx.AsyncClient, admin: Caller, control: MemoryControlStore
) -> None:
    ids = _add_keys(control, admin.environment_id, 7)
    seen: list[str] = []
    for page in range(1, 5):
        answer = await client.get(KEYS, params={"limit": 3, "page": page}, auth=admin.auth)
        assert answer.status_code == 200
        seen += [k["id"] for k in answer.json()["data"]]
        assert len(answer.json()["data"]) == [3, 3, 1, 0][page - 1]
    assert seen == ids
    past = await client.get(KEYS, params={"limit": 3, "page": 10**30}, auth=admin.auth)
    assert past.json() == {"data": []}
    for page in (2**53, 2**63, 2**64):  # past the offsets a database integer holds
        past = await client.get(KEYS, params={"limit": 100, "page": page}, auth=admin.auth)
        assert (past.status_code, past.json()) == (200, {"data": []})
    # A repeated parameter: the last one counts.
    again = await client.get(f"{KEYS}?limit=3&page=9&page=2", auth=admin.auth)
    assert [k["id"] for k in again.json()["data"]] == ids[3:6]


async def test_limit_defaults_to_25_and_may_be_100(
    client: httpx.AsyncClient, admin: Caller, control: MemoryControlStore
) -> None:
    _add_keys(control, admin.environment_id, 101)
    assert len((await client.get(KEYS, auth=admin.auth)).json()["data"]) == 25
    second = await client.get(KEYS, params={"page": 2}, auth=admin.auth)
    assert second.json()["data"][0]["id"] == "key025"
    hundred = await client.get(KEYS, params={"limit": 100}, auth=admin.auth)
    assert len(hundred.json()["data"]) == 100


@pytest.mark.parametrize(
    "query",
    [
        {"limit": "0"},
        {"limit": "101"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"limit": "2.5"},
        {"limit": ""},
        {"limit": "1e2"},
        {"limit": "9" * 40},
        {"page": "0"},
        {"page": "-3"},
        {"page": "two"},
    ],
)
async def test_bad_paging_parameters_are_400_with_the_envelope(
    client: httpx.AsyncClient, admin: Caller, query: dict[str, str]
) -> None:
    answer = await client.get(KEYS, params=query, auth=admin.auth)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert error["type"] == "invalid_parameters"
    (name,) = query
    assert error["messages"][0].startswith(f"{name} must be an integer")


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", KEYS), ("GET", KEYS), ("GET", f"{KEYS}/x"), ("DELETE", f"{KEYS}/x")],
)
async def test_missing_or_wrong_credentials_are_401(
    client: httpx.AsyncClient, admin: Caller, method: str, path: str
) -> None:
    for auth in [None, (admin.token_id, admin.secret + "x"), ("nobody", admin.secret)]:
        answer = await client.request(method, path, auth=auth)
        assert answer.status_code == 401
        assert answer.json() == UNAUTHORIZED
        assert answer.headers["www-authenticate"].startswith("Basic ")


async def test_revoked_token_is_401(
    client: httpx.AsyncClient, admin: Caller, control: MemoryControlStore
) -> None:
    assert (await client.get(KEYS, auth=admin.auth)).status_code == 200
    control.revoke_access_token(admin.token_id)
    assert (await client.get(KEYS, auth=admin.auth)).status_code == 401


async def test_bearer_token_is_accepted(client: httpx.AsyncClient, admin: Caller) -> None:
    headers = {"authorization": f"Bearer {admin.token_id}.{admin.secret}"}
    assert (await client.post(KEYS, headers=headers)).status_code == 201


async def test_token_without_the_system_permission_is_403(
    client: httpx.AsyncClient, admin: Caller, control: MemoryControlStore
) -> None:
    control.add_access_token(
        AccessToken("noperm", admin.environment_id, frozenset(), created_at=1),
        hash_secret("s3cret"),
    )
    for method, path in [("GET", KEYS), ("POST", KEYS), ("DELETE", f"{KEYS}/x")]:
        answer = await client.request(method, path, auth=("noperm", "s3cret"))
        assert answer.status_code == 403
        assert answer.json()["error"]["type"] == "forbidden"


async def test_read_only_token_lists_and_gets_but_cannot_create_or_delete(
    client: httpx.AsyncClient, admin: Caller, control: MemoryControlStore
) -> None:
    reader = _caller(control, SYSTEM_READ, environment=admin.environment_id)
    key_id = (await client.post(KEYS, auth=admin.auth)).json()["data"]["id"]
    assert (await client.get(KEYS, auth=reader.auth)).status_code == 200
    assert (await client.get(f"{KEYS}/{key_id}", auth=reader.auth)).status_code == 200
    refused_create = await client.post(KEYS, auth=reader.auth)
    refused_delete = await client.delete(f"{KEYS}/{key_id}", auth=reader.auth)
    for refused in (refused_create, refused_delete):
        assert refused.status_code == 403
        assert "system:write" in refused.json()["error"]["messages"][0]
    assert len((await client.get(KEYS, auth=admin.auth)).json()["data"]) == 1


async def test_unknown_key_and_a_key_of_another_environment_are_404(
    client: httpx.AsyncClient, admin: Caller, control: MemoryControlStore
) -> None:
    other = _caller(control)
    theirs = (await client.post(KEYS, auth=other.auth)).json()["data"]["id"]
    for path in [f"{KEYS}/{theirs}", f"{KEYS}/does-not-exist", f"{KEYS}/{'x' * 5000}"]:
        for method in ("GET", "DELETE"):
            answer = await client.request(method, path, auth=admin.auth)
            assert answer.status_code == 404
            assert answer.json()["error"]["type"] == "not_found"
    assert (await client.get(KEYS, auth=admin.auth)).json() == {"data": []}
    # The other environment still has its key: the refused delete did nothing.
    assert (await client.get(f"{KEYS}/{theirs}", auth=other.auth)).status_code == 200


async def test_legacy_video_path_behaves_the_same(client: httpx.AsyncClient, admin: Caller) -> None:
    created = await client.post(f"{LEGACY}?product=data", auth=admin.auth)
    assert created.status_code == 201
    key_id = created.json()["data"]["id"]
    assert (await client.get(f"{KEYS}/{key_id}", auth=admin.auth)).status_code == 200
    listed = await client.get(LEGACY, params={"limit": 1, "page": 2}, auth=admin.auth)
    assert listed.json() == {"data": []}
    assert (await client.get(LEGACY)).json() == UNAUTHORIZED
    assert (await client.delete(f"{LEGACY}/{key_id}", auth=admin.auth)).status_code == 204
    assert (await client.get(f"{LEGACY}/{key_id}", auth=admin.auth)).status_code == 404


async def test_unsupported_method_is_405_with_the_envelope(
    client: httpx.AsyncClient, admin: Caller
) -> None:
    answer = await client.put(f"{KEYS}/x", auth=admin.auth)
    assert answer.status_code == 405
    assert answer.json()["error"]["type"] == "method_not_allowed"


async def test_unreachable_database_is_503_with_the_envelope(
    settings: Settings, clock: FakeClock
) -> None:
    # Nothing listens on port 1: every store call fails to connect.
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    control = SqlControlStore(engine)
    runtime = Runtime(settings=settings, control=control, live=MemoryLiveStore(), clock=clock)
    transport = httpx.ASGITransport(app=HeadcountApp(runtime, clock=clock))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
            answer = await c.get(KEYS, auth=("some-id", "some-secret"))
    finally:
        control.close()
    assert answer.status_code == 503
    assert answer.json()["error"]["type"] == "service_unavailable"
    assert "127.0.0.1" not in answer.text  # the cause stays in the server's log
