"""RS256 the raw way: mint many distinct viewer-count tokens fast, and measure the raw verify rate.

Minting: loading a private key from PEM costs ~40 ms and an RS256 signature ~350 µs, so every
worker of a process pool loads the key once and signs its share; the pool uses every core (the
servers are not running yet while tokens are minted).

The reference for the cold ``/counts`` target is ``RSAPublicKey.verify`` (PKCS#1 v1.5, SHA-256)
on an already split and decoded token, pinned to one core: the "raw cryptography verify rate".
The same run also times a complete hand-written verifier (split, base64url, verify, orjson,
claim checks) so the table can show how much of Headcount's cost is beyond the bare RSA step.

Run the rate measurement alone: ``python -m bench.tokens``.
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "VerifyRates",
    "b64url",
    "measure_verify_rates",
    "mint_token",
    "mint_tokens",
    "private_key_pem",
    "raw_verify",
]

_ID_TYPES = frozenset({"video_id", "asset_id", "playback_id", "live_stream_id"})
_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def private_key_pem(key_text: str) -> bytes:
    """Accept the System API's base64-of-PEM or a raw PEM."""
    stripped = key_text.strip()
    if stripped.startswith("-----BEGIN"):
        return stripped.encode("ascii")
    return base64.b64decode(stripped)


def _load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise TypeError("the signing key is not an RSA key")
    return key


def mint_token(
    key: rsa.RSAPrivateKey, key_id: str, claims: dict[str, Any], *, kid_in_header: bool = True
) -> str:
    """An RS256 JWT as PyJWT (``kid`` in the header) or mux-node (``kid`` claim) makes it."""
    header: dict[str, str] = {"alg": "RS256", "typ": "JWT"}
    if kid_in_header:
        header["kid"] = key_id
    else:
        claims = {**claims, "kid": key_id}
    signing_input = b64url(orjson.dumps(header)) + "." + b64url(orjson.dumps(claims))
    signature = key.sign(signing_input.encode("ascii"), _PKCS1, _SHA256)
    return signing_input + "." + b64url(signature)


def _mint_range(
    pem: bytes, key_id: str, start: int, stop: int, videos: int, aud: str, exp_base: int
) -> list[str]:
    key = _load_private_key(pem)
    # Token i reads video i % videos and expires at exp_base + i // videos: every (sub, exp)
    # pair is distinct, so no two tokens are the same string (one page load each, many videos,
    # minted over a few minutes).
    return [
        mint_token(
            key,
            key_id,
            {"sub": f"bench-video-{i % videos:05d}", "aud": aud, "exp": exp_base + i // videos},
        )
        for i in range(start, stop)
    ]


def mint_tokens(
    pem: bytes,
    key_id: str,
    count: int,
    *,
    videos: int = 1000,
    aud: str = "video_id",
    expires_in: int = 3600,
    now: float | None = None,
    workers: int | None = None,
) -> list[str]:
    """``count`` distinct RS256 tokens for ``videos`` video ids, minted on every core."""
    if count <= 0:
        return []
    exp_base = int(time.time() if now is None else now) + expires_in
    workers = max(1, min(workers or os.cpu_count() or 1, count // 2000 + 1))
    if workers == 1:
        return _mint_range(pem, key_id, 0, count, videos, aud, exp_base)
    # Many small chunks keep both workers busy to the end even if one core is shared.
    size = max(1000, -(-count // (workers * 8)))
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(
                _mint_range, pem, key_id, start, min(start + size, count), videos, aud, exp_base
            )
            for start in range(0, count, size)
        ]
        return [token for future in futures for token in future.result()]


# -- the raw verify rate ---------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyRates:
    """Verifications per second on one core (median of the repeats), per second of wall time
    and per second of CPU time (the latter does not move when another process shares the core)."""

    rsa_only: float  # RSAPublicKey.verify on pre-split, pre-decoded input
    full_raw: float  # split + base64url + verify + orjson + exp/aud checks
    rsa_only_cpu: float
    full_raw_cpu: float
    repeats: int

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _rate(work: Callable[[], object], seconds: float, repeats: int) -> tuple[float, float]:
    wall_rates, cpu_rates = [], []
    for _ in range(repeats):
        count = 0
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + seconds
        while True:
            for _ in range(100):
                work()
            count += 100
            now = time.perf_counter()
            if now >= deadline:
                break
        wall_rates.append(count / (now - started))
        cpu_rates.append(count / max(time.process_time() - cpu_started, 1e-9))
    return statistics.median(wall_rates), statistics.median(cpu_rates)


def raw_verify(token: str, public: rsa.RSAPublicKey) -> dict[str, Any]:
    """The raw verify of a token: split, base64url, ``RSAPublicKey.verify``, orjson, exp/aud.
    The least any server must do per fresh token; raises ``ValueError`` or
    ``InvalidSignature`` when the token does not verify."""
    header_text, payload_text, sig_text = token.split(".")
    header = orjson.loads(_b64url_decode(header_text))
    if header.get("alg") != "RS256":
        raise ValueError("alg")
    public.verify(
        _b64url_decode(sig_text),
        (header_text + "." + payload_text).encode("ascii"),
        _PKCS1,
        _SHA256,
    )
    claims: dict[str, Any] = orjson.loads(_b64url_decode(payload_text))
    if claims["exp"] < time.time() or claims["aud"] not in _ID_TYPES:
        raise ValueError("claims")
    return claims


def measure_verify_rates(seconds: float = 0.5, repeats: int = 5) -> VerifyRates:
    """Both rates for a fresh 2048-bit key (run this pinned to the server core)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = private.public_key()
    token = mint_token(
        private,
        "bench-key",
        {"sub": "bench-video-00001", "aud": "video_id", "exp": int(time.time()) + 3600},
    )
    signing_input, _, signature_text = token.rpartition(".")
    message = signing_input.encode("ascii")
    signature = _b64url_decode(signature_text)

    def rsa_only() -> None:
        public.verify(signature, message, _PKCS1, _SHA256)

    def full_raw() -> None:
        raw_verify(token, public)

    full_raw()  # proves the reference verifier accepts the token before timing it
    rsa_wall, rsa_cpu = _rate(rsa_only, seconds, repeats)
    full_wall, full_cpu = _rate(full_raw, seconds, repeats)
    return VerifyRates(rsa_wall, full_wall, rsa_cpu, full_cpu, repeats)


def main() -> None:
    print(json.dumps(measure_verify_rates().as_dict()))


if __name__ == "__main__":
    main()
