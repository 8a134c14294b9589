"""Viewer-count tokens: verify one, remember it, and forget it when its key is deleted.

:class:`TokenVerifier` puts together the strict verifier (:mod:`~headcount.auth.jwt_verify`),
the public keys by ``kid`` (:mod:`~headcount.auth.keyring`) and the cache of verified tokens
(:mod:`~headcount.auth.token_cache`).

Deleting a signing key refuses its tokens
- **at once in the process that deleted it**: the System API calls
  ``runtime.signing_key_deleted(kid)``, which drops the key and every cached token of it
  before the DELETE is answered;
- **within one second on every other node**: each node runs the ``signing-key-revocations``
  job every :data:`REVOCATION_POLL_INTERVAL` (0.5 s), asking the shared ControlStore for keys
  deleted since its last poll and dropping them the same way. A deletion committed just after
  a poll began is seen by the next one, so the wait is at most two intervals plus one query: at
  most ~1 s. Polls overlap by :data:`REVOCATION_OVERLAP` seconds so that ``deleted_at`` stamps
  written by a node whose clock is slightly behind (or truncated to whole seconds) are not
  missed; dropping a key twice is harmless. A key that is not cached needs no message at all:
  its next lookup reads ``deleted_at`` from the store.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Final

from headcount.auth.jwt_verify import ParsedToken, check_claims, parse_token, verify_signature
from headcount.auth.keyring import Keyring, VerificationKey
from headcount.auth.token_cache import VerifiedToken, VerifiedTokenCache
from headcount.errors import TokenRefused
from headcount.runtime import Runtime
from headcount.stores.control import ControlStore

__all__ = ["REVOCATION_OVERLAP", "REVOCATION_POLL_INTERVAL", "TokenVerifier"]

REVOCATION_POLL_INTERVAL: Final = 0.5
# Assumes node clocks agree within this many seconds (NTP does far better).
REVOCATION_OVERLAP: Final = 30


class TokenVerifier:
    def __init__(self, control: ControlStore, *, leeway: float, cache_size: int) -> None:
        self.control = control
        self.leeway = leeway
        self.keyring = Keyring(control)
        self.cache = VerifiedTokenCache(cache_size)
        self.rsa_verifications = 0  # counts the expensive path (observability and tests)
        self._polled_since: float | None = None
        # Called with the key id after a key is forgotten here (the counts stream ends the
        # streams of its tokens).
        self.on_forget: list[Callable[[str], None]] = []

    @classmethod
    def for_runtime(cls, runtime: Runtime) -> TokenVerifier:
        """A verifier wired to the runtime's key deletions (local hook and periodic poll)."""
        verifier = cls(
            runtime.control,
            leeway=runtime.settings.token_leeway,
            cache_size=runtime.settings.token_cache_size,
        )
        runtime.on_signing_key_deleted.append(verifier.forget_key)
        runtime.every(
            "signing-key-revocations", REVOCATION_POLL_INTERVAL, verifier.poll_revocations
        )
        return verifier

    async def verify(self, token: str, now: float) -> VerifiedToken:
        """Verify ``token`` fully (no cache read) and cache it; raises :class:`TokenRefused`."""
        parsed = parse_token(token)
        key = self.keyring.key_now(parsed.key_id, now) or await self.keyring.key(parsed.key_id, now)
        return self._verify_with(token, parsed, key, now)

    def verify_now(self, token: str, now: float) -> VerifiedToken | None:
        """:meth:`verify` without a coroutine, or ``None`` when the token's key is not in
        memory yet (the caller then awaits :meth:`verify`, which asks the store)."""
        parsed = parse_token(token)
        key = self.keyring.key_now(parsed.key_id, now)
        if key is None:
            return None
        return self._verify_with(token, parsed, key, now)

    def _verify_with(
        self, token: str, parsed: ParsedToken, key: VerificationKey, now: float
    ) -> VerifiedToken:
        self.rsa_verifications += 1
        verify_signature(parsed, key.public_key)
        claims = check_claims(parsed.claims, now, self.leeway)
        if self.keyring.was_deleted(key.key_id):
            # The key was deleted while this request waited for it.
            raise TokenRefused(
                "The token's signing key (kid) was deleted; sign new tokens with a current key.",
                error_type="unknown_key",
            )
        verified = VerifiedToken(
            key.key_id, key.environment_id, claims.id_type, claims.id, claims.exp + self.leeway
        )
        self.cache.put(token, verified)
        return verified

    def forget_key(self, key_id: str) -> None:
        self.keyring.forget(key_id)
        self.cache.drop_key(key_id)
        for forgotten in self.on_forget:
            forgotten(key_id)

    async def poll_revocations(self, now: float) -> None:
        since = self._polled_since if self._polled_since is not None else now
        deleted = await asyncio.to_thread(
            self.control.signing_keys_deleted_since, math.floor(since) - REVOCATION_OVERLAP
        )
        for key_id in deleted:
            self.forget_key(key_id)
        self._polled_since = now
