"""Public keys of signing keys, by ``kid``, parsed once and kept in memory.

The ControlStore is synchronous and may be a database across the network, so a verify that
misses this cache looks the key up off the event loop, through
:class:`~headcount.stores.lookups.BoundedLookups`: at most :data:`LOOKUP_CONCURRENCY` lookups
at a time and :data:`LOOKUPS_QUEUED` more waiting, and one lookup per ``kid`` however many
requests wait for it. Past that queue (a flood of tokens with made-up kids) a token whose kid
is not known yet is answered at once with a 503 ``service_unavailable`` (the widget and the CLI
poll again; a 403 would stop them), instead of waiting behind every other lookup: its kid may
be a real key created a moment ago. Kids the store does not know are remembered for
:data:`UNKNOWN_KID_TTL` seconds (at most :data:`MAX_REFUSED` of them): anyone can put garbage
in a token, and a browser retrying a bad token must not cost a query per request. The TTL is
short because a key created on another node must start working quickly.

A deleted key is remembered as deleted (:meth:`Keyring.forget`), so that a lookup that was
already in flight when the key was deleted cannot put it back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Final

from cryptography.hazmat.primitives.asymmetric import rsa

from headcount.auth.jwt_verify import load_verification_key
from headcount.errors import TokenRefused
from headcount.stores.control import ControlStore, SigningKey
from headcount.stores.lookups import BoundedLookups

__all__ = [
    "LOOKUPS_QUEUED",
    "LOOKUP_CONCURRENCY",
    "MAX_KID_LENGTH",
    "UNKNOWN_KID_TTL",
    "Keyring",
    "VerificationKey",
]

UNKNOWN_KID_TTL: Final = 1.0
# Key ids Headcount issues are 43 URL-safe characters. A kid that could not be one (too long,
# control characters, non-ASCII) is unknown without asking the store: Postgres, for one,
# rejects NUL bytes in a query with an error rather than "no such row".
MAX_KID_LENGTH: Final = 128
LOOKUP_CONCURRENCY: Final = 4
LOOKUPS_QUEUED: Final = 64
# Bounds on what an anonymous caller can make us remember; the oldest entries go first.
MAX_KEYS: Final = 10_000
MAX_REFUSED: Final = 10_000


@dataclass(frozen=True, slots=True)
class VerificationKey:
    key_id: str
    environment_id: str  # decides whose counts the key's tokens read
    public_key: rsa.RSAPublicKey


def _unknown_refusal() -> TokenRefused:
    return TokenRefused(
        "The token's signing key (kid) is unknown here: check the kid, and that the key was "
        "created on this Headcount (System API /system/v1/signing-keys).",
        error_type="unknown_key",
    )


def _deleted_refusal() -> TokenRefused:
    return TokenRefused(
        "The token's signing key (kid) was deleted; sign new tokens with a current key.",
        error_type="unknown_key",
    )


class Keyring:
    def __init__(self, control: ControlStore) -> None:
        self._control = control
        self._keys: dict[str, VerificationKey] = {}
        # kid -> (error type, message, until); until is None for refusals that never change
        # (a deleted or unusable key stays so).
        self._refused: dict[str, tuple[str, str, float | None]] = {}
        self._deleted: dict[str, None] = {}  # insertion-ordered set, bounded
        self._inflight: dict[str, asyncio.Task[VerificationKey]] = {}
        self.lookups = BoundedLookups(
            concurrency=LOOKUP_CONCURRENCY,
            queued=LOOKUPS_QUEUED,
            busy_message="Too many tokens whose signing key is not yet known here are being "
            "checked; try again shortly.",
        )
        self.store_lookups = 0  # how often the store was asked (observability and tests)

    def key_now(self, key_id: str, now: float) -> VerificationKey | None:
        """What memory knows of ``key_id`` without asking the store: the usable key, a
        :class:`TokenRefused` for a key known to be unusable, or ``None`` (ask :meth:`key`)."""
        found = self._keys.get(key_id)
        if found is not None:
            return found
        if len(key_id) > MAX_KID_LENGTH or not (key_id.isascii() and key_id.isprintable()):
            raise _unknown_refusal()
        refused = self._refused.get(key_id)
        if refused is not None:
            error_type, message, until = refused
            if until is None or until > now:
                # A fresh exception each time: re-raising one instance would grow its traceback.
                raise TokenRefused(message, error_type=error_type)
            del self._refused[key_id]
        return None

    async def key(self, key_id: str, now: float) -> VerificationKey:
        """The usable key for ``key_id``, or a :class:`TokenRefused` saying why not."""
        found = self.key_now(key_id, now)
        if found is not None:
            return found
        lookup = self._inflight.get(key_id)
        if lookup is None:
            # Admitted now, or a 503 at once when the queue is full.
            stored = self.lookups.call(self._control.get_signing_key, key_id)
            self.store_lookups += 1
            lookup = asyncio.ensure_future(self._lookup(key_id, stored, now))
            self._inflight[key_id] = lookup
            lookup.add_done_callback(lambda done: self._lookup_done(key_id, done))
        # Shielded: a request that goes away does not cancel the lookup others wait for.
        return await asyncio.shield(lookup)

    def _lookup_done(self, key_id: str, lookup: asyncio.Future[VerificationKey]) -> None:
        del self._inflight[key_id]
        if not lookup.cancelled():
            lookup.exception()  # every waiter may have gone; the outcome is already recorded

    async def _lookup(
        self, key_id: str, stored: Awaitable[SigningKey | None], now: float
    ) -> VerificationKey:
        return self._admit(key_id, await stored, now)

    def _admit(self, key_id: str, stored: SigningKey | None, now: float) -> VerificationKey:
        if key_id in self._deleted or (stored is not None and stored.deleted_at is not None):
            self._remember_refusal(key_id, _deleted_refusal(), None)
            raise _deleted_refusal()
        if stored is None:
            self._remember_refusal(key_id, _unknown_refusal(), now + UNKNOWN_KID_TTL)
            raise _unknown_refusal()
        try:
            public_key = load_verification_key(stored.public_key_pem)
        except TokenRefused as exc:
            self._remember_refusal(key_id, exc, None)
            raise
        key = VerificationKey(key_id, stored.environment_id, public_key)
        if len(self._keys) >= MAX_KEYS:
            del self._keys[next(iter(self._keys))]
        self._keys[key_id] = key
        return key

    def _remember_refusal(self, key_id: str, refusal: TokenRefused, until: float | None) -> None:
        if len(self._refused) >= MAX_REFUSED:
            del self._refused[next(iter(self._refused))]
        self._refused[key_id] = (refusal.error_type or "invalid_token", refusal.message, until)

    def forget(self, key_id: str) -> None:
        """The key was deleted: refuse it from now on, whatever is in flight."""
        self._keys.pop(key_id, None)
        self._remember_refusal(key_id, _deleted_refusal(), None)
        if len(self._deleted) >= MAX_REFUSED:
            del self._deleted[next(iter(self._deleted))]
        self._deleted[key_id] = None

    def was_deleted(self, key_id: str) -> bool:
        return key_id in self._deleted
