"""Mux's official SDKs, unmodified, manage signing keys on a live ``headcount serve``:
npm ``@mux/mux-node@15.3.0`` (a node script under ``tests/clients/``) and PyPI
``mux-python==5.1.2``. The server runs once over SQLite and once over Postgres."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import mux_python
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from mux_python.exceptions import ForbiddenException, NotFoundException, UnauthorizedException

from tests.e2e.conftest import LiveServer, run_headcount, start_server
from tests.postgres_schema import postgres_schema_url

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
T = 30  # seconds: mux-python waits forever unless each call passes `_request_timeout`


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp(f"sdk-{request.param}")
    with _database_url(request.param, directory) as database_url:
        live = start_server(directory, database_url=database_url)
        try:
            yield live
        finally:
            live.kill()


@contextlib.contextmanager
def _database_url(backend: str, directory: Path) -> Iterator[str]:
    if backend == "postgres":
        with postgres_schema_url() as url:
            yield url
    else:
        yield f"sqlite:///{directory / 'headcount.db'}"


def _public_key(server: LiveServer, key_id: str) -> bytes:
    shown = json.loads(
        run_headcount("signing-keys", "get", key_id, "--json", "--database", server.database_url)
    )
    return str(shown["public_key"]).encode()


def _assert_pkcs1(private_key: str) -> rsa.RSAPrivateKey:
    pem = base64.b64decode(private_key, validate=True)
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    loaded = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(loaded, rsa.RSAPrivateKey)
    assert loaded.key_size == 2048
    return loaded


# -- mux-node --------------------------------------------------------------------------------


def test_mux_node_creates_pages_through_retrieves_and_deletes(server: LiveServer) -> None:
    node = shutil.which("node")
    assert node, "node is required for the mux-node SDK test (.ci/run installs it)"
    environment = {
        **os.environ,
        "MUX_BASE_URL": server.base_url,
        "MUX_TOKEN_ID": server.token_id,
        "MUX_TOKEN_SECRET": server.token_secret,
    }
    done = subprocess.run(
        [node, "system_signing_keys.mjs", "5"],
        cwd=CLIENTS,
        env=environment,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)

    created = result["created"]
    assert len(created) == 5
    for key in created:
        assert set(key) == {"id", "created_at", "private_key"}
        assert isinstance(key["created_at"], str) and key["created_at"].isdigit()
        _assert_pkcs1(key["private_key"])

    # for-await walked every page (limit 2: pages of 2, 2, 1, then the empty one), each key
    # once, oldest first (keys of the same second in id order).
    listed_ids = [k["id"] for k in result["listed"]]
    assert set(listed_ids) >= {k["id"] for k in created}
    assert len(listed_ids) == len(set(listed_ids))
    order = [(int(k["created_at"]), k["id"]) for k in result["listed"]]
    assert order == sorted(order)
    assert all("private_key" not in k for k in result["listed"])

    assert result["retrieved"] == {"id": created[0]["id"], "created_at": created[0]["created_at"]}
    assert result["deleteResult"] is None
    for refused in (result["afterDelete"], result["deleteAgain"]):
        assert refused["name"] == "NotFoundError"
        assert refused["status"] == 404
        assert refused["error"]["error"]["type"] == "not_found"
    assert result["listedAfterDelete"] == [i for i in listed_ids if i != created[0]["id"]]

    unauthorized = result["unauthorized"]
    assert (unauthorized["name"], unauthorized["status"]) == ("AuthenticationError", 401)
    assert unauthorized["error"] == {
        "error": {"type": "unauthorized", "messages": ["Unauthorized request"]}
    }
    assert len(result["bearerPage"]) == 1
    # system.utilities.whoami() unwrapped the answer's data: the token that asked.
    whoami = result["whoami"]
    assert whoami["access_token_name"] == server.token_id
    assert whoami["environment_name"] == "default"
    assert whoami["permissions"] == ["data:read", "system:read", "system:write"]
    assert set(whoami) == {
        "access_token_name",
        "environment_id",
        "environment_name",
        "environment_type",
        "organization_id",
        "organization_name",
        "permissions",
    }

    # mux-node signed a viewer-counts token with the private key the API returned; it
    # verifies with the public key Headcount stored for that key id.
    signing_key = created[1]
    header = jwt.get_unverified_header(result["token"])
    claims = jwt.decode(
        result["token"],
        _public_key(server, signing_key["id"]),
        algorithms=["RS256"],
        audience="video_id",
    )
    assert header["alg"] == "RS256"
    assert claims["kid"] == signing_key["id"]
    assert claims["sub"] == "video-from-node"


# -- mux-python ------------------------------------------------------------------------------


def _python_api(server: LiveServer, *, username: str = "", password: str = "") -> Any:
    configuration = mux_python.Configuration(
        host=server.base_url,
        username=username or server.token_id,
        password=password or server.token_secret,
    )
    return mux_python.ApiClient(configuration)


def test_mux_python_signing_keys_api(server: LiveServer) -> None:
    api = mux_python.SigningKeysApi(_python_api(server))

    created = api.create_signing_key(_request_timeout=T)
    assert isinstance(created, mux_python.SigningKeyResponse)  # only a 201 gives a model
    key = created.data
    assert key.id and key.created_at.isdigit()
    private = _assert_pkcs1(key.private_key)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert _public_key(server, key.id) == public_pem

    fetched = api.get_signing_key(key.id, _request_timeout=T)
    assert (fetched.data.id, fetched.data.created_at) == (key.id, key.created_at)
    assert fetched.data.private_key is None

    everything: list[str] = []
    for page in range(1, 100):
        listed = api.list_signing_keys(limit=3, page=page, _request_timeout=T)
        assert isinstance(listed, mux_python.ListSigningKeysResponse)
        if not listed.data:
            break
        everything += [k.id for k in listed.data]
    assert key.id in everything
    assert len(everything) == len(set(everything))

    assert api.delete_signing_key(key.id, _request_timeout=T) is None
    with pytest.raises(NotFoundException) as missing:
        api.get_signing_key(key.id, _request_timeout=T)
    assert missing.value.status == 404
    assert json.loads(missing.value.body)["error"]["type"] == "not_found"


def test_mux_python_errors_map_to_its_exception_classes(server: LiveServer) -> None:
    wrong = mux_python.SigningKeysApi(_python_api(server, password="wrong-secret"))
    with pytest.raises(UnauthorizedException) as refused:
        wrong.list_signing_keys(_request_timeout=T)
    assert refused.value.status == 401
    assert json.loads(refused.value.body) == {
        "error": {"type": "unauthorized", "messages": ["Unauthorized request"]}
    }

    read_only = json.loads(
        run_headcount(
            "access-tokens",
            "create",
            "--environment",
            server.environment_id,
            "--permission",
            "system:read",
            "--json",
            "--database",
            server.database_url,
        )
    )
    reader = mux_python.SigningKeysApi(
        _python_api(server, username=read_only["id"], password=read_only["secret"])
    )
    assert isinstance(
        reader.list_signing_keys(_request_timeout=T), mux_python.ListSigningKeysResponse
    )
    with pytest.raises(ForbiddenException) as forbidden:
        reader.create_signing_key(_request_timeout=T)
    assert forbidden.value.status == 403

    with pytest.raises(NotFoundException):
        mux_python.SigningKeysApi(_python_api(server)).delete_signing_key(
            "no-such-key", _request_timeout=T
        )


def test_mux_python_legacy_url_signing_keys_api(server: LiveServer) -> None:
    legacy = mux_python.URLSigningKeysApi(_python_api(server))
    created = legacy.create_url_signing_key(_request_timeout=T)
    _assert_pkcs1(created.data.private_key)
    assert (
        legacy.get_url_signing_key(created.data.id, _request_timeout=T).data.id == created.data.id
    )
    assert created.data.id in [
        k.id for k in legacy.list_url_signing_keys(limit=100, _request_timeout=T).data
    ]
    legacy.delete_url_signing_key(created.data.id, _request_timeout=T)
    with pytest.raises(NotFoundException):
        legacy.get_url_signing_key(created.data.id, _request_timeout=T)
