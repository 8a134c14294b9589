"""Random identifiers: ids of environments, access tokens and signing keys, and env keys.

Ids are 43 characters of ``[A-Za-z0-9]`` (about 256 bits), the length of Mux's ids. They are
URL-safe like Mux's, but leave out Mux's ``-`` and ``_`` on purpose: an id that starts with
``-`` would be read as an option by the CLI (``headcount signing-keys get -x...``).
"""

from __future__ import annotations

import secrets
import string

__all__ = ["ENV_KEY_ALPHABET", "ID_ALPHABET", "new_env_key", "new_id"]

ID_ALPHABET = string.ascii_letters + string.digits
# mux-embed builds its default collector host from the env key only if it matches
# ^[a-z0-9]+$, so env keys stay lowercase alphanumeric.
ENV_KEY_ALPHABET = string.ascii_lowercase + string.digits


def new_id(length: int = 43) -> str:
    return "".join(secrets.choice(ID_ALPHABET) for _ in range(length))


def new_env_key(length: int = 24) -> str:
    """A public env key: 24 characters of [a-z0-9] is about 124 bits, so collisions are left
    to the store's uniqueness check (and a retry) rather than being expected."""
    return "".join(secrets.choice(ENV_KEY_ALPHABET) for _ in range(length))
