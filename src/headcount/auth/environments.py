"""Environments: the unit of isolation. Creating one picks its public env key; ``initialize``
is what ``headcount init`` and a server's first start do (an environment plus an access token
with every permission)."""

from __future__ import annotations

from headcount.auth.access_tokens import IssuedAccessToken, create_access_token
from headcount.auth.identifiers import new_env_key
from headcount.stores.control import PERMISSIONS, ControlStore, Environment

__all__ = ["DEFAULT_ENVIRONMENT_NAME", "create_environment", "initialize"]

DEFAULT_ENVIRONMENT_NAME = "default"

# A fresh env key colliding even once is ~2^-124; a few retries turn "never" into "never twice".
_ENV_KEY_ATTEMPTS = 5


def create_environment(control: ControlStore, name: str, now: int) -> Environment:
    for _ in range(_ENV_KEY_ATTEMPTS - 1):
        try:
            return control.create_environment(name, new_env_key(), now)
        except ValueError:
            continue
    return control.create_environment(name, new_env_key(), now)


def initialize(control: ControlStore, name: str, now: int) -> tuple[Environment, IssuedAccessToken]:
    environment = create_environment(control, name, now)
    issued = create_access_token(control, environment.id, PERMISSIONS, now)
    return environment, issued
