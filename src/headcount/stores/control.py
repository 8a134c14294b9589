"""The ``ControlStore`` port: environments, access tokens and signing keys.

Adapters: SQLite (default) and Postgres, both through SQLAlchemy (``stores/sql.py``).
Secrets never reach this port in clear: access-token secrets arrive hashed, and signing keys
arrive as public keys only (the private key is returned once by the System API and forgotten).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DATA_READ",
    "PERMISSIONS",
    "SYSTEM_READ",
    "SYSTEM_WRITE",
    "AccessToken",
    "ControlStore",
    "Environment",
    "SigningKey",
]

SYSTEM_READ = "system:read"
SYSTEM_WRITE = "system:write"
# Reading live counts' history and the Monitoring API (Mux's "Mux Data read"): not implied by
# the System permission, as on Mux, where a System-only token gets 403 from the Data API.
DATA_READ = "data:read"
PERMISSIONS = (SYSTEM_READ, SYSTEM_WRITE, DATA_READ)


@dataclass(frozen=True, slots=True)
class Environment:
    id: str
    name: str
    env_key: str  # public, sent in beacons; lowercase alphanumeric (mux-embed's `^[a-z0-9]+$`)
    created_at: int  # epoch seconds


@dataclass(frozen=True, slots=True)
class AccessToken:
    id: str
    environment_id: str
    permissions: frozenset[str]
    created_at: int
    revoked: bool = False


@dataclass(frozen=True, slots=True)
class SigningKey:
    id: str
    environment_id: str
    public_key_pem: bytes  # SubjectPublicKeyInfo PEM
    created_at: int
    deleted_at: int | None = None  # epoch seconds; a deleted key verifies nothing


class ControlStore(Protocol):
    """Synchronous; the HTTP layer calls it off the event loop (or from caches)."""

    # environments
    def create_environment(self, name: str, env_key: str, now: int) -> Environment: ...
    def list_environments(self) -> list[Environment]: ...
    def get_environment(self, environment_id: str) -> Environment | None: ...
    def environment_for_env_key(self, env_key: str) -> Environment | None: ...

    # access tokens (the secret is stored only as a hash)
    def add_access_token(self, token: AccessToken, secret_hash: str) -> None: ...
    def access_token_with_hash(self, token_id: str) -> tuple[AccessToken, str] | None: ...
    def list_access_tokens(self, environment_id: str | None = None) -> list[AccessToken]: ...
    def revoke_access_token(self, token_id: str) -> bool: ...

    # signing keys (public half only)
    def add_signing_key(self, key: SigningKey) -> None: ...
    def get_signing_key(self, key_id: str) -> SigningKey | None:
        """The key, deleted or not (callers check ``deleted_at``)."""
        ...

    def list_signing_keys(self, environment_id: str, limit: int, offset: int) -> list[SigningKey]:
        """Undeleted keys of one environment, oldest first."""
        ...

    def delete_signing_key(self, key_id: str, now: int) -> bool: ...
    def signing_keys_deleted_since(self, since: int) -> list[str]:
        """Ids of keys deleted at or after ``since`` (epoch seconds): lets every node drop
        cached keys within its poll interval."""
        ...

    def close(self) -> None: ...
