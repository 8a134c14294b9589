"""Access tokens: secrets shown once and stored hashed; Basic and Bearer; permissions."""

from __future__ import annotations

import base64
import hashlib
import re

import pytest

from headcount.auth.access_tokens import (
    authenticate,
    create_access_token,
    credentials_from_header,
    require_permission,
)
from headcount.auth.environments import create_environment, initialize
from headcount.auth.identifiers import new_env_key, new_id
from headcount.errors import Forbidden, NotFound, Unauthorized
from headcount.stores.control import PERMISSIONS, SYSTEM_READ, SYSTEM_WRITE
from headcount.stores.control_memory import MemoryControlStore


def basic(token_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{token_id}:{secret}".encode()).decode()


@pytest.fixture
def store() -> MemoryControlStore:
    return MemoryControlStore()


@pytest.fixture
def environment_id(store: MemoryControlStore) -> str:
    return create_environment(store, "test", 1).id


def test_secret_is_stored_only_as_its_sha256(
    store: MemoryControlStore, environment_id: str
) -> None:
    issued = create_access_token(store, environment_id, [SYSTEM_READ], 5)
    found = store.access_token_with_hash(issued.token.id)
    assert found is not None
    token, stored = found
    assert token == issued.token
    assert stored == hashlib.sha256(issued.secret.encode()).hexdigest()
    assert issued.secret not in stored


def test_secrets_and_ids_are_long_random_and_url_safe(
    store: MemoryControlStore, environment_id: str
) -> None:
    issued = [create_access_token(store, environment_id, PERMISSIONS, 1) for _ in range(20)]
    assert len({i.secret for i in issued}) == 20
    assert len({i.token.id for i in issued}) == 20
    for i in issued:
        assert len(i.secret) >= 43  # 32 random bytes
        assert re.fullmatch(r"[A-Za-z0-9]{43}", i.token.id)
        assert re.fullmatch(r"[A-Za-z0-9_-]+", i.secret)


def test_env_keys_are_what_mux_embed_accepts() -> None:
    keys = {new_env_key() for _ in range(50)}
    assert len(keys) == 50
    for key in keys:
        assert re.fullmatch(r"[a-z0-9]{20,}", key)
    assert not new_id().startswith("-")  # would read as a CLI option


def test_issued_token_repr_hides_the_secret(store: MemoryControlStore, environment_id: str) -> None:
    issued = create_access_token(store, environment_id, PERMISSIONS, 1)
    assert issued.secret not in repr(issued)


def test_basic_credentials_authenticate(store: MemoryControlStore, environment_id: str) -> None:
    issued = create_access_token(store, environment_id, [SYSTEM_READ], 1)
    assert authenticate(store, basic(issued.token.id, issued.secret)) == issued.token
    lowercase_scheme = "basic " + basic(issued.token.id, issued.secret).split(" ", 1)[1]
    assert authenticate(store, lowercase_scheme) == issued.token


def test_bearer_id_dot_secret_authenticates(store: MemoryControlStore, environment_id: str) -> None:
    issued = create_access_token(store, environment_id, [SYSTEM_READ], 1)
    assert authenticate(store, f"Bearer {issued.token.id}.{issued.secret}") == issued.token


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Basic",
        "Basic !!!not-base64!!!",
        "Basic " + base64.b64encode(b"no-colon-here").decode(),
        "Basic " + base64.b64encode(b":secret-without-id").decode(),
        "Basic " + base64.b64encode(b"\xff\xfe:x").decode(),
        "Bearer nodot",
        "Digest username=x",
    ],
)
def test_malformed_credentials_are_unauthorized(
    store: MemoryControlStore, header: str | None
) -> None:
    assert credentials_from_header(header) is None
    with pytest.raises(Unauthorized):
        authenticate(store, header)


def test_wrong_secret_unknown_id_and_revoked_token_are_unauthorized(
    store: MemoryControlStore, environment_id: str
) -> None:
    issued = create_access_token(store, environment_id, PERMISSIONS, 1)
    with pytest.raises(Unauthorized):
        authenticate(store, basic(issued.token.id, issued.secret + "x"))
    with pytest.raises(Unauthorized):
        authenticate(store, basic("unknown", issued.secret))
    with pytest.raises(Unauthorized):
        authenticate(store, f"Bearer {issued.token.id}.{issued.secret[:-1]}")
    store.revoke_access_token(issued.token.id)
    with pytest.raises(Unauthorized):
        authenticate(store, basic(issued.token.id, issued.secret))


def test_write_implies_read_and_read_does_not_imply_write(
    store: MemoryControlStore, environment_id: str
) -> None:
    reader = create_access_token(store, environment_id, [SYSTEM_READ], 1).token
    writer = create_access_token(store, environment_id, [SYSTEM_WRITE], 1).token
    require_permission(reader, SYSTEM_READ)
    require_permission(writer, SYSTEM_READ)
    require_permission(writer, SYSTEM_WRITE)
    with pytest.raises(Forbidden, match="system:write"):
        require_permission(reader, SYSTEM_WRITE)


def test_token_without_system_permission_is_forbidden(store: MemoryControlStore) -> None:
    # Only possible through the store (the CLI and API always grant one); still refused.
    from headcount.stores.control import AccessToken

    bare = AccessToken(id="bare", environment_id="e", permissions=frozenset(), created_at=1)
    for permission in PERMISSIONS:
        with pytest.raises(Forbidden):
            require_permission(bare, permission)


def test_bad_permissions_and_unknown_environment_are_refused(
    store: MemoryControlStore, environment_id: str
) -> None:
    with pytest.raises(ValueError, match="unknown permission"):
        create_access_token(store, environment_id, ["system:admin"], 1)
    with pytest.raises(ValueError, match="at least one"):
        create_access_token(store, environment_id, [], 1)
    with pytest.raises(NotFound):
        create_access_token(store, "no-such-environment", PERMISSIONS, 1)
    assert store.list_access_tokens() == []


def test_initialize_makes_an_environment_and_a_system_token(store: MemoryControlStore) -> None:
    environment, issued = initialize(store, "default", 9)
    assert store.get_environment(environment.id) == environment
    assert issued.token.environment_id == environment.id
    assert issued.token.permissions == frozenset(PERMISSIONS)
    assert authenticate(store, basic(issued.token.id, issued.secret)) == issued.token


def test_auth_package_re_exports_its_control_plane_modules() -> None:
    import headcount.auth
    from headcount.auth import access_tokens, environments, signing_keys

    declared = {*access_tokens.__all__, *environments.__all__, *signing_keys.__all__}
    assert declared <= set(headcount.auth.__all__)
    for name in headcount.auth.__all__:
        assert getattr(headcount.auth, name) is not None
