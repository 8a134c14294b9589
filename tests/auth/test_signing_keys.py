"""Signing keys: 2048-bit RSA, private key returned once as base64 of a PKCS#1 PEM, never
stored; environments see only their own keys."""

from __future__ import annotations

import base64
from pathlib import Path

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from headcount.auth.environments import create_environment
from headcount.auth.signing_keys import (
    create_signing_key,
    delete_signing_key,
    generate_signing_key,
    visible_signing_key,
)
from headcount.errors import NotFound
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.sql import open_control_store


def test_private_key_is_base64_of_a_pkcs1_pem_matching_the_stored_public_key() -> None:
    issued = generate_signing_key("env", 100)
    pem = base64.b64decode(issued.private_key, validate=True)
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    private = serialization.load_pem_private_key(pem, password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size == 2048
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    assert issued.key.public_key_pem == public_pem
    assert issued.key.public_key_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    assert (issued.key.environment_id, issued.key.created_at) == ("env", 100)
    assert issued.key.deleted_at is None


def test_a_token_signed_with_the_private_key_verifies_with_the_stored_public_key() -> None:
    issued = generate_signing_key("env", 100)
    token = jwt.encode(
        {"sub": "video-1", "aud": "video_id", "exp": 4_000_000_000, "kid": issued.key.id},
        base64.b64decode(issued.private_key),
        algorithm="RS256",
    )
    claims = jwt.decode(token, issued.key.public_key_pem, algorithms=["RS256"], audience="video_id")
    assert claims["sub"] == "video-1"


def test_issued_key_repr_hides_the_private_key() -> None:
    issued = generate_signing_key("env", 1)
    assert issued.private_key not in repr(issued)
    assert "PRIVATE" not in repr(issued)


def test_keys_of_another_environment_or_deleted_are_not_found() -> None:
    store = MemoryControlStore()
    mine = create_environment(store, "mine", 1).id
    theirs = create_environment(store, "theirs", 1).id
    key = create_signing_key(store, theirs, 5).key
    assert visible_signing_key(store, theirs, key.id) == key
    with pytest.raises(NotFound):
        visible_signing_key(store, mine, key.id)
    with pytest.raises(NotFound):
        delete_signing_key(store, mine, key.id, 6)
    assert store.get_signing_key(key.id) == key  # the failed delete left it alone
    delete_signing_key(store, theirs, key.id, 7)
    with pytest.raises(NotFound):
        visible_signing_key(store, theirs, key.id)
    with pytest.raises(NotFound):
        delete_signing_key(store, theirs, key.id, 8)
    with pytest.raises(NotFound):
        create_signing_key(store, "no-such-environment", 9)


def test_private_keys_never_reach_the_database_file(tmp_path: Path) -> None:
    database = tmp_path / "control.db"
    store = open_control_store(f"sqlite:///{database}")
    environment = create_environment(store, "e", 1).id
    issued = [create_signing_key(store, environment, 10 + i) for i in range(3)]
    store.close()  # checkpoints the WAL into the file; the WAL/SHM files are scanned as well

    stored = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.is_file())
    for key in issued:
        pem = base64.b64decode(key.private_key)
        body_lines = [line for line in pem.splitlines() if not line.startswith(b"-----")]
        der = base64.b64decode(b"".join(body_lines))
        # The scan sees what was written: the public key and id are there...
        assert key.key.public_key_pem.splitlines()[1] in stored
        assert key.key.id.encode() in stored
        # ...and no form of the private key is.
        assert key.private_key.encode() not in stored
        assert key.private_key.encode()[:64] not in stored
        for line in body_lines:
            assert line not in stored
        assert der[-64:] not in stored  # the private exponent's tail, raw
    assert b"PRIVATE KEY" not in stored
