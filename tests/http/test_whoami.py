"""``GET /system/v1/whoami`` in-process: Mux's shape (mux-node's ``UtilityWhoamiResponse``) for
every access token whatever its permissions, 401 without one. The real mux-node SDK calls it in
``tests/e2e/test_mux_sdks_system.py``."""

from __future__ import annotations

import httpx
import pytest

from headcount.auth.access_tokens import create_access_token, hash_secret
from headcount.auth.environments import create_environment
from headcount.stores.control import PERMISSIONS, SYSTEM_READ, AccessToken
from headcount.stores.control_memory import MemoryControlStore

pytestmark = pytest.mark.anyio

WHOAMI = "/system/v1/whoami"


async def test_whoami_says_which_token_environment_and_permissions(
    client: httpx.AsyncClient, control: MemoryControlStore
) -> None:
    environment = create_environment(control, "production-site", 1)
    issued = create_access_token(control, environment.id, PERMISSIONS, 1)
    answer = await client.get(WHOAMI, auth=(issued.token.id, issued.secret))
    assert answer.status_code == 200
    assert answer.headers["cache-control"] == "no-store"
    assert answer.json() == {
        "data": {
            "access_token_name": issued.token.id,
            "environment_id": environment.id,
            "environment_name": "production-site",
            "environment_type": "production",
            "organization_id": "headcount",
            "organization_name": "Headcount",
            "permissions": sorted(PERMISSIONS),
        }
    }


async def test_every_token_may_ask_whatever_its_permissions(
    client: httpx.AsyncClient, control: MemoryControlStore
) -> None:
    environment = create_environment(control, "env", 1)
    read_only = create_access_token(control, environment.id, [SYSTEM_READ], 1)
    answer = await client.get(WHOAMI, auth=(read_only.token.id, read_only.secret))
    assert answer.json()["data"]["permissions"] == [SYSTEM_READ]
    control.add_access_token(
        AccessToken("noperm", environment.id, frozenset(), created_at=1), hash_secret("s3cret")
    )
    answer = await client.get(WHOAMI, auth=("noperm", "s3cret"))
    assert answer.status_code == 200 and answer.json()["data"]["permissions"] == []


async def test_no_token_a_wrong_one_or_a_revoked_one_is_401(
    client: httpx.AsyncClient, control: MemoryControlStore
) -> None:
    environment = create_environment(control, "env", 1)
    issued = create_access_token(control, environment.id, PERMISSIONS, 1)
    control.revoke_access_token(issued.token.id)
    for auth in [None, (issued.token.id, issued.secret + "x"), (issued.token.id, issued.secret)]:
        answer = await client.get(WHOAMI, auth=auth)
        assert answer.status_code == 401
        assert answer.json()["error"]["type"] == "unauthorized"
        assert answer.headers["www-authenticate"].startswith("Basic ")
    assert (await client.post(WHOAMI, auth=(issued.token.id, issued.secret))).status_code == 405
