"""``GET /counts?token=<JWT>``: the views and viewers of one id, for browsers and apps.

A hot path, dispatched by :class:`~headcount.http.app.HeadcountApp` without a framework. A
repeated token costs a dict lookup (the verified-token cache), one LiveStore read and one bytes
template filled in; only a token never seen before pays the RSA verify. With a live store that
answers without I/O (memory) :meth:`CountsEndpoint.get_now` serves it in the parser callback;
with one on the network (Redis) every request awaits :meth:`CountsEndpoint.get`, and the store
caches reads per node for the snapshot interval.

Answers (every one with ``Access-Control-Allow-Origin: *``: browsers call it cross-origin):
- 200 ``{"data":[{"views":N,"viewers":M,"updated_at":"YYYY-MM-DDTHH:MM:SSZ"}]}`` for the
  counter key (environment of the signing key, ``aud``, ``sub``), with
  ``Cache-Control: public, max-age=<snapshot_interval>``: the counters themselves are a
  snapshot up to that old, so a CDN or browser may reuse an answer for as long and no longer
  (whole seconds, rounded down; 0 when the interval is under a second);
- 400 ``invalid_parameters`` when there is no ``token`` (or ``TOKEN``) parameter, when it is
  given more than once, or when the query string is absurdly long;
- 405 ``method_not_allowed`` with ``Allow: GET, HEAD, OPTIONS`` for any other method;
- 403 with the refusal's type (``expired_token``, ``unknown_key``...) for a refused token.
Errors carry ``Cache-Control: no-store`` (see :func:`~headcount.http.reply.error_reply`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Final
from urllib.parse import unquote_to_bytes

from headcount.auth.token_cache import VerifiedToken
from headcount.auth.tokens import TokenVerifier
from headcount.errors import BadRequest, HeadcountError
from headcount.http.reply import JSON, Reply
from headcount.metrics import Outcomes
from headcount.runtime import Runtime
from headcount.stores.live import Counts

__all__ = ["MAX_QUERY_BYTES", "CountsEndpoint", "token_from_query", "tokens_from_query"]

# Room for a maximal token (8 KiB) even fully percent-encoded, and a few other parameters.
MAX_QUERY_BYTES: Final = 32 * 1024
_TOKEN_NAMES: Final = frozenset({b"token", b"TOKEN"})
_BODY: Final = b'{"data":[{"views":%d,"viewers":%d,"updated_at":"%b"}]}'


def token_from_query(query_string: bytes) -> str:
    """The one ``token`` (or ``TOKEN``, the spelling of Mux's OpenAPI spec) parameter. Given
    twice (``token=&token=JWT``, ``TOKEN=a&token=b``) it is a 400: a proxy, a cache or a log
    reading the other one must never see a different token than the one verified here."""
    if len(query_string) > MAX_QUERY_BYTES:
        raise BadRequest(f"The query string is longer than {MAX_QUERY_BYTES} bytes.")
    # What browsers send: ``token=<JWT>`` alone, nothing to unquote. Same answer as the loop
    # below, without copying the token twice (split, partition).
    if (
        query_string[:6] == b"token="
        and len(query_string) > 6
        and query_string.find(b"&") < 0  # find is memchr; `in` is twice as slow here
        and query_string.find(b"%") < 0
        and query_string.find(b"+") < 0
    ):
        return query_string[6:].decode("latin-1")
    values = list(_token_values(query_string))
    if len(values) > 1:
        raise BadRequest(
            f"Give the token parameter once; got {len(values)}. (GET /counts/stream is the "
            "endpoint that takes several.)"
        )
    if not values or not values[0]:
        raise BadRequest(_MISSING)
    # latin-1 maps every byte to one character; anything outside base64url is then refused
    # by the verifier's shape check with a clear message.
    return values[0].decode("latin-1")


def tokens_from_query(query_string: bytes, limit: int) -> list[str]:
    """Every non-empty ``token`` (or ``TOKEN``) parameter, in order (``GET /counts/stream``
    takes several); at most ``limit`` of them."""
    if len(query_string) > MAX_QUERY_BYTES:
        raise BadRequest(f"The query string is longer than {MAX_QUERY_BYTES} bytes.")
    tokens = [value.decode("latin-1") for value in _token_values(query_string) if value]
    if not tokens:
        raise BadRequest(_MISSING)
    if len(tokens) > limit:
        raise BadRequest(f"At most {limit} token parameters per request; got {len(tokens)}.")
    return tokens


_MISSING: Final = (
    "Missing the token query parameter: call GET /counts?token=<JWT> with a token signed "
    "by one of your signing keys."
)


def _token_values(query_string: bytes) -> Iterator[bytes]:
    """The values of the token parameters, unquoted, empty ones included."""
    for part in query_string.split(b"&"):
        name, _, value = part.partition(b"=")
        if name in _TOKEN_NAMES:
            if b"%" in value or b"+" in value:
                value = unquote_to_bytes(value.replace(b"+", b" "))
            yield value


class CountsEndpoint:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.verifier = TokenVerifier.for_runtime(runtime)
        self._cache = self.verifier.cache
        self._live = runtime.live
        self._immediate = runtime.live.immediate()
        max_age = max(0, int(runtime.settings.snapshot_interval))
        self._ok_headers: list[tuple[str, str]] = [
            *JSON,
            ("cache-control", f"public, max-age={max_age}"),
        ]
        self._stamp_of = math.nan  # never equal: the first answer formats the stamp
        self._stamp = b""
        self._outcomes = Outcomes(
            runtime.metrics,
            "headcount_counts_requests_total",
            "GET /counts requests by outcome: ok, or the error envelope's type "
            "(invalid_parameters, expired_token, unknown_key, service_unavailable...).",
        )
        self._ok = self._outcomes.ok
        cache = self._cache
        for outcome, read in (("hit", lambda: cache.hits), ("miss", lambda: cache.misses)):
            runtime.metrics.reading(
                "headcount_token_cache_lookups_total",
                "Lookups of /counts tokens in the verified-token cache; a miss pays the RSA "
                "verify.",
                read,
                outcome=outcome,
            )
        runtime.metrics.reading(
            "headcount_token_verifications_total",
            "Full RS256 verifications of viewer-count tokens (cache misses that got that far).",
            lambda: self.verifier.rsa_verifications,
        )

    def get_now(self, query_string: bytes, now: float) -> Reply | None:
        """The answer without a coroutine (the server's hot path, for a live store that
        answers without I/O), or ``None`` when the token's key is not in memory yet.
        Refusals raise :class:`~headcount.errors.HeadcountError` either way."""
        assert self._immediate is not None, "hot path built for a store that must be awaited"
        try:
            token = token_from_query(query_string)
            verified = self._cache.get(token, now) or self.verifier.verify_now(token, now)
        except HeadcountError as exc:
            self._outcomes.error(exc)
            raise
        if verified is None:
            return None  # counted by get(), which answers it
        return self._answer(
            self._immediate.counts_now(verified.environment_id, verified.id_type, verified.id)
        )

    async def get(self, query_string: bytes, now: float) -> Reply:
        try:
            token = token_from_query(query_string)
            verified = await self.verified(token, now)
            counts = await self._live.counts(
                verified.environment_id, verified.id_type, verified.id, now
            )
        except HeadcountError as exc:
            self._outcomes.error(exc)
            raise
        return self._answer(counts)

    async def verified(self, token: str, now: float) -> VerifiedToken:
        """What ``token`` grants, by the rules of ``GET /counts`` (the cache, else a full
        verify); raises :class:`~headcount.errors.TokenRefused` as ``/counts`` would."""
        return (
            self._cache.get(token, now)
            or self.verifier.verify_now(token, now)
            or await self.verifier.verify(token, now)
        )

    def _answer(self, counts: Counts) -> Reply:
        self._ok.value += 1
        return 200, self._ok_headers, self.body(counts)

    def body(self, counts: Counts) -> bytes:
        """The body of a 200 answer for ``counts`` (the stream's events carry it too)."""
        updated_at = self._live.updated_at
        if updated_at != self._stamp_of:
            self._stamp_updated_at(updated_at)
        # The bytes orjson.dumps would write for {"data":[{"views":..,"viewers":..,
        # "updated_at":..}]}, at half its cost (the counts are ints, the stamp plain ASCII).
        return _BODY % (counts.views, counts.viewers, self._stamp)

    def _stamp_updated_at(self, updated_at: float) -> None:
        # The snapshot time changes about once a sweep; format it once per change.
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(updated_at)))
        self._stamp = stamp.encode()
        self._stamp_of = updated_at
