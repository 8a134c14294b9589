"""Access tokens: the id/secret pairs that authenticate calls to the System API.

The secret is 32 random bytes (URL-safe base64), shown once and stored as its SHA-256. A
plain hash is enough here: the secret is high-entropy random, never a password a person chose,
so there is nothing for a slow hash to protect, and every System API call pays for the check.
Comparison is constant-time (:func:`hmac.compare_digest`).

A request authenticates with HTTP Basic (``id:secret``, what mux-node and mux-python send), or
with ``Authorization: Bearer <id>.<secret>`` (mux-node's ``authorizationToken``; a ``.`` joins
the two because a bearer token may not contain ``:``, and neither part ever contains ``.``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from headcount.auth.identifiers import new_id
from headcount.errors import Forbidden, NotFound, Unauthorized
from headcount.stores.control import (
    DATA_READ,
    PERMISSIONS,
    SYSTEM_READ,
    SYSTEM_WRITE,
    AccessToken,
    ControlStore,
)

__all__ = [
    "IssuedAccessToken",
    "authenticate",
    "create_access_token",
    "credentials_from_header",
    "hash_secret",
    "require_permission",
    "verify_credentials",
]

# Compared against when the token id is unknown, so a miss costs what a hit costs.
_NO_SUCH_TOKEN_HASH = hashlib.sha256(b"no such token").hexdigest()


@dataclass(frozen=True, slots=True)
class IssuedAccessToken:
    """A new token and its secret: the only moment the secret exists outside the caller."""

    token: AccessToken
    secret: str

    def __repr__(self) -> str:  # keep the secret out of logs and tracebacks
        return f"IssuedAccessToken(token={self.token!r}, secret=<hidden>)"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_access_token(
    control: ControlStore, environment_id: str, permissions: Iterable[str], now: int
) -> IssuedAccessToken:
    wanted = frozenset(permissions)
    unknown = wanted - set(PERMISSIONS)
    if unknown:
        raise ValueError(
            f"unknown permission(s) {', '.join(sorted(unknown))}; "
            f"choose from {', '.join(PERMISSIONS)}"
        )
    if not wanted:
        raise ValueError("an access token needs at least one permission")
    if control.get_environment(environment_id) is None:
        raise NotFound(f"There is no environment {environment_id!r}.")
    token = AccessToken(
        id=new_id(), environment_id=environment_id, permissions=wanted, created_at=now
    )
    secret = secrets.token_urlsafe(32)
    control.add_access_token(token, hash_secret(secret))
    return IssuedAccessToken(token, secret)


def credentials_from_header(authorization: str | None) -> tuple[str, str] | None:
    """``(token_id, secret)`` from an ``Authorization`` header, or None if it carries none."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        token_id, colon, secret = decoded.partition(":")
    elif scheme == "bearer":
        token_id, colon, secret = value.partition(".")
    else:
        return None
    if not colon or not token_id or not secret:
        return None
    return token_id, secret


def authenticate(control: ControlStore, authorization: str | None) -> AccessToken:
    """The live access token named by the header; :class:`Unauthorized` otherwise (missing,
    malformed, unknown, wrong secret, or revoked all look the same to the caller)."""
    credentials = credentials_from_header(authorization)
    if credentials is None:
        raise Unauthorized()
    return verify_credentials(control, *credentials)


def verify_credentials(control: ControlStore, token_id: str, secret: str) -> AccessToken:
    """The live access token with this id and secret (the dashboard's sign-in form sends the
    two as fields); :class:`Unauthorized` otherwise, every miss alike."""
    found = control.access_token_with_hash(token_id)
    stored_hash = found[1] if found is not None else _NO_SUCH_TOKEN_HASH
    matches = hmac.compare_digest(hash_secret(secret), stored_hash)
    if found is None or not matches or found[0].revoked:
        raise Unauthorized()
    return found[0]


def require_permission(token: AccessToken, permission: str) -> None:
    """Write implies read: a ``system:write`` token may also list and get."""
    granted = token.permissions
    if permission == SYSTEM_READ and granted & {SYSTEM_READ, SYSTEM_WRITE}:
        return
    if permission in granted:
        return
    needed = (
        "the Data read permission is needed to read live counts and their history"
        if permission == DATA_READ
        else "the System permission is needed to manage signing keys"
    )
    raise Forbidden(f"This access token does not have the {permission} permission ({needed}).")
