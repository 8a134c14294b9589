"""``headcount.sign_viewer_counts``: mux-node's token, from every key form, with only the light
dependencies installed."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import textwrap
import time
from datetime import timedelta
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

import headcount
from headcount import sign_viewer_counts
from headcount.auth.jwt_verify import check_claims, parse_token, verify_signature
from headcount.sdk import load_private_key, parse_timespan, signing
from tests.live_counts import CountsServer
from tests.token_kit import ec_private_key, pkcs1_pem, pkcs8_pem, private_key

SEVEN_DAYS = 7 * 24 * 3600


def decode(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    head, payload, _ = token.split(".")
    parts = [json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4))) for p in (head, payload)]
    return parts[0], parts[1]


def sign(**overrides: Any) -> str:
    arguments: dict[str, Any] = {"key_id": "key-1", "private_key": private_key("main")}
    arguments.update(overrides)
    return sign_viewer_counts("video-1", **arguments)


def test_token_has_mux_node_shape_and_default_seven_days() -> None:
    before = int(time.time())
    header, claims = decode(sign())
    after = int(time.time())
    assert header == {"alg": "RS256", "typ": "JWT"}
    assert list(claims) == ["kid", "sub", "aud", "exp"]  # mux-node's order, no iat
    assert claims["kid"] == "key-1" and claims["sub"] == "video-1"
    assert claims["aud"] == "video_id"
    assert before + SEVEN_DAYS <= claims["exp"] <= after + SEVEN_DAYS


def test_token_verifies_with_the_public_key_and_passes_our_verifier() -> None:
    key = private_key("main")
    token = sign(type="asset")
    decoded = jwt.decode(token, key.public_key(), algorithms=["RS256"], audience="asset_id")
    assert decoded["sub"] == "video-1"
    parsed = parse_token(token)
    verify_signature(parsed, key.public_key())
    claims = check_claims(parsed.claims, time.time(), 0)
    assert (claims.id_type, claims.id, parsed.key_id) == ("asset_id", "video-1", "key-1")


@pytest.mark.parametrize(
    ("type", "aud"),
    [
        ("video_id", "video_id"),
        ("asset_id", "asset_id"),
        ("playback_id", "playback_id"),
        ("live_stream_id", "live_stream_id"),
        ("video", "video_id"),
        ("asset", "asset_id"),
        ("playback", "playback_id"),
        ("live_stream", "live_stream_id"),
    ],
)
def test_full_and_mux_node_short_types(type: str, aud: str) -> None:
    assert decode(sign(type=type))[1]["aud"] == aud


@pytest.mark.parametrize("type", ["livestream_id", "stats", "v", "", "VIDEO"])
def test_unknown_type_is_a_clear_error(type: str) -> None:
    with pytest.raises(ValueError, match="live_stream_id"):
        sign(type=type)


@pytest.mark.parametrize(
    ("expires_in", "seconds"),
    [
        (90, 90),
        (90.0, 90),
        ("90", 90),
        ("15m", 900),
        ("1h", 3600),
        ("2 hours", 7200),
        ("1 day", 86400),
        ("7d", SEVEN_DAYS),
        ("2 weeks", 2 * SEVEN_DAYS),
        ("1y", 365 * 86400),
        (timedelta(minutes=30), 1800),
    ],
)
def test_expires_in_forms(expires_in: Any, seconds: int) -> None:
    assert parse_timespan(expires_in) == seconds
    before = int(time.time())
    exp = decode(sign(expires_in=expires_in))[1]["exp"]
    assert before + seconds <= exp <= int(time.time()) + seconds


@pytest.mark.parametrize("expires_in", ["soon", "1 fortnight", "-", 0, -5, "0"])
def test_bad_expires_in_is_a_clear_error(expires_in: Any) -> None:
    with pytest.raises(ValueError, match=r"expires_in|time span"):
        sign(expires_in=expires_in)


def test_extra_claims_cannot_override_the_four_required() -> None:
    extra = {"sub": "other", "aud": "asset_id", "kid": "x", "exp": 1, "room": "lobby"}
    claims = decode(sign(extra_claims=extra))[1]
    assert claims["sub"] == "video-1" and claims["aud"] == "video_id"
    assert claims["kid"] == "key-1" and claims["exp"] > time.time()
    assert claims["room"] == "lobby"


def _wrapped(data: bytes) -> str:
    # What `base64` prints by default: lines of 76 characters.
    return "\n".join(textwrap.wrap(base64.b64encode(data).decode(), 76)) + "\n"


@pytest.mark.parametrize(
    "form",
    [
        "base64-pkcs1",
        "base64-pkcs8",
        "base64-wrapped-76",
        "pem-pkcs1-str",
        "pem-pkcs1-bytes",
        "pem-pkcs8-str",
        "key-object",
    ],
)
def test_private_key_forms(form: str) -> None:
    key = private_key("main")
    value: Any = {
        "base64-pkcs1": base64.b64encode(pkcs1_pem(key)).decode(),
        "base64-pkcs8": base64.b64encode(pkcs8_pem(key)).decode(),
        "base64-wrapped-76": _wrapped(pkcs1_pem(key)),
        "pem-pkcs1-str": pkcs1_pem(key).decode(),
        "pem-pkcs1-bytes": pkcs1_pem(key),
        "pem-pkcs8-str": pkcs8_pem(key).decode(),
        "key-object": key,
    }[form]
    loaded = load_private_key(value)
    assert loaded.private_numbers() == key.private_numbers()
    token = sign(private_key=value)
    jwt.decode(token, key.public_key(), algorithms=["RS256"], audience="video_id")


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("not base64 at all!", "neither a PEM nor base64"),
        (base64.b64encode(b"hello world").decode(), "not to a PEM"),
        ("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n", "could not"),
    ],
)
def test_unreadable_private_key_is_a_clear_error(value: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        sign(private_key=value)


def test_non_rsa_private_key_is_refused() -> None:
    pem = ec_private_key().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ValueError, match="not an RSA key"):
        sign(private_key=pem)


def test_key_below_2048_bits_is_refused_before_signing() -> None:
    with pytest.raises(ValueError, match="1024 bits"):
        sign(private_key=private_key("weak", 1024))


def test_a_pem_is_parsed_once_for_many_tokens() -> None:
    pem = pkcs1_pem(private_key("main")) + b"\n"  # a PEM no other test used
    signing._load_pem.cache_clear()
    for n in range(5):
        sign(private_key=pem, extra_claims={"n": n})
    info = signing._load_pem.cache_info()
    assert (info.misses, info.hits) == (1, 4)


def test_package_exports_match_all() -> None:
    for name in headcount.__all__:
        assert getattr(headcount, name) is getattr(headcount.sdk, name)
    with pytest.raises(AttributeError):
        _ = headcount.no_such_thing  # type: ignore[attr-defined]


# Every package of the server extra (and what httpx would use if present): blocked.
SERVER_PACKAGES = [
    "starlette",
    "uvicorn",
    "uvloop",
    "orjson",
    "sqlalchemy",
    "alembic",
    "psycopg",
    "redis",
    "click",
    "rich",
    "anyio",
    "httptools",
]


def test_sdk_needs_only_pyjwt_cryptography_and_httpx(counts_server: CountsServer) -> None:
    # A fresh interpreter where importing any server package fails signs a token with the key
    # the System API issued and reads its counts from a real `headcount serve`.
    program = textwrap.dedent(
        f"""
        import sys
        for name in {SERVER_PACKAGES!r}:
            sys.modules[name] = None  # `import name` now raises ImportError
        from headcount import CountsClient, sign_viewer_counts

        token = sign_viewer_counts(
            "video-1", type="video", key_id={counts_server.key_id!r},
            private_key={counts_server.private_key!r}, expires_in="1h",
        )
        with CountsClient({counts_server.base_url!r}) as client:
            counts = client.get(token)
        loaded = sorted(n for n in {SERVER_PACKAGES!r} if sys.modules.get(n) is not None)
        print(counts.views, counts.viewers, counts.updated_at.tzname(), loaded)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "0", "UTC", "[]"]
