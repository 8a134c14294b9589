"""Who may do what: access tokens (System API credentials), signing keys (the RSA keys that
sign viewer-count tokens) and environments. JWT verification lives in its own modules."""

from __future__ import annotations

from headcount.auth.access_tokens import (
    IssuedAccessToken,
    authenticate,
    create_access_token,
    credentials_from_header,
    hash_secret,
    require_permission,
    verify_credentials,
)
from headcount.auth.environments import DEFAULT_ENVIRONMENT_NAME, create_environment, initialize
from headcount.auth.signing_keys import (
    KEY_SIZE,
    IssuedSigningKey,
    create_signing_key,
    delete_signing_key,
    generate_signing_key,
    visible_signing_key,
)

__all__ = [
    "DEFAULT_ENVIRONMENT_NAME",
    "KEY_SIZE",
    "IssuedAccessToken",
    "IssuedSigningKey",
    "authenticate",
    "create_access_token",
    "create_environment",
    "create_signing_key",
    "credentials_from_header",
    "delete_signing_key",
    "generate_signing_key",
    "hash_secret",
    "initialize",
    "require_permission",
    "verify_credentials",
    "visible_signing_key",
]
