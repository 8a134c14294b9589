"""Tokens that already verified, keyed by the token string.

Browsers poll ``/counts`` with the same token every few seconds, so a hit must cost a dict
lookup and one comparison with the token's expiry, not an RSA verify (0.2 µs against ~28 µs).

An entry never outlives:
- its token: ``valid_until`` (``exp`` plus the leeway) is compared with ``now`` on every hit;
- its signing key: :meth:`VerifiedTokenCache.drop_key` removes every token of a deleted key at
  once, through an index by key id.

The cache is bounded; when full, the oldest entry goes (first in, first out). LRU would need a
write on every hit; with the bound far above the number of tokens in active use, FIFO only
evicts tokens that will verify again on their next request. The entries are an ``OrderedDict``:
``popitem(last=False)`` is O(1), where ``next(iter(dict))`` after many deletions from the front
walks over their holes (an insertion into a full 100k-entry cache went from 1.9-3.6 µs, growing
with the holes, to ~1.2 µs).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

__all__ = ["VerifiedToken", "VerifiedTokenCache"]


class VerifiedToken(NamedTuple):
    """What a verified token grants: the counts of one counter key, until ``valid_until``."""

    key_id: str
    environment_id: str
    id_type: str
    id: str
    valid_until: float  # exp + leeway, epoch seconds


class VerifiedTokenCache:
    def __init__(self, capacity: int) -> None:
        self.capacity = max(0, capacity)
        self._entries: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._by_key: dict[str, set[str]] = {}
        # Lookups that found a live entry, and the rest (served at GET /metrics).
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, token: str, now: float) -> VerifiedToken | None:
        entry = self._entries.get(token)
        if entry is None:
            self.misses += 1
            return None
        if entry.valid_until <= now:
            self.misses += 1
            self._remove(token, entry)
            return None
        self.hits += 1
        return entry

    def put(self, token: str, verified: VerifiedToken) -> None:
        if self.capacity == 0:
            return
        entries, by_key = self._entries, self._by_key
        previous = entries.get(token)
        if previous is not None:
            self._remove(token, previous)
        while len(entries) >= self.capacity:
            oldest, entry = entries.popitem(last=False)
            tokens = by_key.get(entry.key_id)
            if tokens is not None:
                tokens.discard(oldest)
                if not tokens:
                    del by_key[entry.key_id]
        entries[token] = verified
        tokens = by_key.get(verified.key_id)
        if tokens is None:
            tokens = by_key[verified.key_id] = set()
        tokens.add(token)

    def drop_key(self, key_id: str) -> int:
        """Forget every token of ``key_id``; returns how many there were."""
        tokens = self._by_key.pop(key_id, set())
        for token in tokens:
            del self._entries[token]
        return len(tokens)

    def _remove(self, token: str, entry: VerifiedToken) -> None:
        del self._entries[token]
        tokens = self._by_key.get(entry.key_id)
        if tokens is not None:
            tokens.discard(token)
            if not tokens:
                del self._by_key[entry.key_id]
