"""Signing keys: RSA key pairs whose private half signs viewer-count tokens.

Generation returns the private key exactly as Mux does: base64 of a PKCS#1 PEM
(``-----BEGIN RSA PRIVATE KEY-----``), which mux-node's ``signViewerCounts`` and PyJWT both
accept. Only the public key (SubjectPublicKeyInfo PEM) is stored; the private key is handed to
the caller once and never written to the store, a log or a file.

A key belongs to one environment; asking for a key of another environment, or a deleted one,
is :class:`NotFound` — the same answer as for a key that never existed, so nothing leaks.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from headcount.auth.identifiers import new_id
from headcount.errors import NotFound
from headcount.stores.control import ControlStore, SigningKey

__all__ = [
    "KEY_SIZE",
    "IssuedSigningKey",
    "create_signing_key",
    "delete_signing_key",
    "generate_signing_key",
    "visible_signing_key",
]

KEY_SIZE = 2048


@dataclass(frozen=True, slots=True)
class IssuedSigningKey:
    key: SigningKey
    private_key: str  # base64 of a PKCS#1 PEM; exists only in the create answer

    def __repr__(self) -> str:  # keep the private key out of logs and tracebacks
        return f"IssuedSigningKey(key={self.key!r}, private_key=<hidden>)"


def generate_signing_key(environment_id: str, now: int) -> IssuedSigningKey:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,  # PKCS#1: "BEGIN RSA PRIVATE KEY"
        serialization.NoEncryption(),
    )
    key = SigningKey(
        id=new_id(), environment_id=environment_id, public_key_pem=public_pem, created_at=now
    )
    return IssuedSigningKey(key, base64.b64encode(private_pem).decode("ascii"))


def create_signing_key(control: ControlStore, environment_id: str, now: int) -> IssuedSigningKey:
    if control.get_environment(environment_id) is None:
        raise NotFound(f"There is no environment {environment_id!r}.")
    issued = generate_signing_key(environment_id, now)
    control.add_signing_key(issued.key)
    return issued


def visible_signing_key(control: ControlStore, environment_id: str, key_id: str) -> SigningKey:
    key = control.get_signing_key(key_id)
    if key is None or key.deleted_at is not None or key.environment_id != environment_id:
        raise NotFound()
    return key


def delete_signing_key(control: ControlStore, environment_id: str, key_id: str, now: int) -> None:
    visible_signing_key(control, environment_id, key_id)
    if not control.delete_signing_key(key_id, now):
        raise NotFound()  # deleted by someone else in between
