"""Memory adapter of the ControlStore port: for tests and throwaway runs (``memory://``)."""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

from headcount.stores.control import AccessToken, Environment, SigningKey

__all__ = ["MemoryControlStore"]


class MemoryControlStore:
    def __init__(self) -> None:
        self._environments: dict[str, Environment] = {}
        self._tokens: dict[str, tuple[AccessToken, str]] = {}
        self._keys: dict[str, SigningKey] = {}

    def create_environment(self, name: str, env_key: str, now: int) -> Environment:
        import secrets

        if any(e.env_key == env_key for e in self._environments.values()):
            raise ValueError(f"env_key {env_key!r} is taken")
        env = Environment(id=secrets.token_hex(8), name=name, env_key=env_key, created_at=now)
        self._environments[env.id] = env
        return env

    def list_environments(self) -> list[Environment]:
        return sorted(self._environments.values(), key=lambda e: (e.created_at, e.id))

    def get_environment(self, environment_id: str) -> Environment | None:
        return self._environments.get(environment_id)

    def environments_for_env_keys(self, env_keys: Collection[str]) -> dict[str, Environment]:
        wanted = set(env_keys)
        return {e.env_key: e for e in self._environments.values() if e.env_key in wanted}

    def add_access_token(self, token: AccessToken, secret_hash: str) -> None:
        self._tokens[token.id] = (token, secret_hash)

    def access_token_with_hash(self, token_id: str) -> tuple[AccessToken, str] | None:
        return self._tokens.get(token_id)

    def list_access_tokens(self, environment_id: str | None = None) -> list[AccessToken]:
        tokens = [t for t, _ in self._tokens.values()]
        if environment_id is not None:
            tokens = [t for t in tokens if t.environment_id == environment_id]
        return sorted(tokens, key=lambda t: (t.created_at, t.id))

    def revoke_access_token(self, token_id: str) -> bool:
        found = self._tokens.get(token_id)
        if found is None or found[0].revoked:
            return False
        self._tokens[token_id] = (dataclasses.replace(found[0], revoked=True), found[1])
        return True

    def add_signing_key(self, key: SigningKey) -> None:
        self._keys[key.id] = key

    def get_signing_key(self, key_id: str) -> SigningKey | None:
        return self._keys.get(key_id)

    def list_signing_keys(self, environment_id: str, limit: int, offset: int) -> list[SigningKey]:
        live = [
            k
            for k in self._keys.values()
            if k.environment_id == environment_id and k.deleted_at is None
        ]
        live.sort(key=lambda k: (k.created_at, k.id))
        return live[offset : offset + limit]

    def delete_signing_key(self, key_id: str, now: int) -> bool:
        key = self._keys.get(key_id)
        if key is None or key.deleted_at is not None:
            return False
        self._keys[key_id] = dataclasses.replace(key, deleted_at=now)
        return True

    def signing_keys_deleted_since(self, since: int) -> list[str]:
        return [
            k.id for k in self._keys.values() if k.deleted_at is not None and k.deleted_at >= since
        ]

    def close(self) -> None:
        return None
