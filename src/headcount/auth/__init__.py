"""Who may do what: access tokens (System API credentials), signing keys (the RSA keys that
sign viewer-count tokens) and environments. JWT verification lives in its own modules."""

from __future__ import annotations

from headcount.auth.access_tokens import (
    IssuedAccessToken,
    authenticate,
    create_access_token,
    require_permission,
)
from headcount.auth.environments import create_environment, initialize
from headcount.auth.signing_keys import (
    IssuedSigningKey,
    create_signing_key,
    delete_signing_key,
    generate_signing_key,
    visible_signing_key,
)

__all__ = [
    "IssuedAccessToken",
    "IssuedSigningKey",
    "authenticate",
    "create_access_token",
    "create_environment",
    "create_signing_key",
    "delete_signing_key",
    "generate_signing_key",
    "initialize",
    "require_permission",
    "visible_signing_key",
]
