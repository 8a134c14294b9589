"""Hostile inputs for the beacon decoder and the token parser, made from real ones.

Every mutator takes a ``random.Random``, so ``python -m bench fuzz`` draws hundreds of
thousands of cases fast, and the suite's hypothesis tests drive the very same mutators with
``st.randoms()`` (shrinking included): one set of attacks, two budgets.

Beacons start from the real mux-embed captures (``tests/fixtures/beacons/*/raw``) and are
broken at the byte level (flips, cuts, splices, repeated chunks) or at the JSON level (values
of every type where ids and numbers belong, missing keys, deep nesting, huge numbers, non-object
events). Tokens start from valid RS256 tokens and are broken at the character level, at the
segment level, or re-signed with the real key over hostile headers and claims.
"""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

__all__ = [
    "CAPTURES",
    "capture_bodies",
    "hostile_value",
    "mutate_beacon",
    "mutate_token",
    "mutate_token_text",
    "signed_token",
]

CAPTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "beacons"
_B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_ODD_TEXT = ["", " ", "\x00", "\ud800", "é", "💥", "a" * 300, "null", "../", "%00", "=", "."]
_ODD_NUMBERS: list[Any] = [0, -1, 2**63, -(2**63) - 1, 2**64, 1e308, -1e-308, 0.5, True, False]


def capture_bodies() -> list[bytes]:
    return [p.read_bytes() for p in sorted(CAPTURES.glob("*/raw/*.json"))]


def hostile_value(rng: random.Random, depth: int = 0) -> Any:
    """A JSON value of any type, often one a reader does not expect."""
    roll = rng.randrange(8 if depth < 4 else 5)
    if roll == 0:
        return None
    if roll == 1:
        return rng.choice(_ODD_NUMBERS)
    if roll == 2:
        return rng.choice(_ODD_TEXT)
    if roll == 3:
        return "".join(chr(rng.randrange(1, 0x2FFF)) for _ in range(rng.randrange(12)))
    if roll == 4:
        return rng.randrange(-(10**6), 10**6)
    if roll == 5:
        return [hostile_value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if roll == 6:
        return {rng.choice([*_ODD_TEXT, "e", "xid", "ake"]): hostile_value(rng, depth + 1)}
    return {"e": hostile_value(rng, depth + 1), "xid": hostile_value(rng, depth + 1)}


def _mutate_json(rng: random.Random, document: Any) -> Any:
    if not isinstance(document, dict):
        return hostile_value(rng)
    events = document.get("events")
    roll = rng.randrange(20)  # 0-4 break the envelope itself, the rest one event
    if roll == 0:
        return hostile_value(rng)  # not the envelope at all
    if roll == 1:
        document["events"] = hostile_value(rng)
    elif roll == 2:
        document["metadata"] = hostile_value(rng)
    elif roll == 3 and isinstance(events, list):
        events.insert(rng.randrange(len(events) + 1), hostile_value(rng))
    elif roll == 4:
        nested: Any = rng.choice([[], {}])
        for _ in range(rng.randrange(1, 200)):
            nested = [nested] if rng.random() < 0.5 else {"v": nested}
        document[rng.choice(["events", "metadata", "x"])] = nested
    elif isinstance(events, list) and events:
        event = events[rng.randrange(len(events))]
        if isinstance(event, dict) and event:
            key = rng.choice(list(event))
            if roll % 3 == 0:
                event[key] = hostile_value(rng)
            elif roll % 3 == 1:
                del event[key]
            else:
                known = rng.choice(["e", "xid", "ake", "xsqno", "vid", "uusid", "mvrid"])
                event[known] = hostile_value(rng)
    return document


def _mutate_bytes(rng: random.Random, body: bytes, other: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randrange(1, 6)):
        roll = rng.randrange(6)
        at = rng.randrange(len(data) + 1)
        if roll == 0 and data:
            data[min(at, len(data) - 1)] = rng.randrange(256)
        elif roll == 1:
            del data[at : at + rng.randrange(1, 64)]
        elif roll == 2:
            data[at:at] = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 16)))
        elif roll == 3:
            data[at:at] = data[at : at + rng.randrange(1, 128)] * rng.randrange(1, 4)
        elif roll == 4:
            data = data[:at]
        else:
            cut = rng.randrange(len(other) + 1)
            data = data[:at] + other[cut:]
    return bytes(data)


def mutate_beacon(rng: random.Random, bodies: list[bytes]) -> bytes:
    """A broken variant of one of ``bodies`` (JSON-level four times in five)."""
    body = rng.choice(bodies)
    if rng.random() < 0.2:
        return _mutate_bytes(rng, body, rng.choice(bodies))
    document = orjson.loads(body)
    for _ in range(rng.randrange(1, 4)):
        document = _mutate_json(rng, document)
    return _dumps(document)


def _dumps(document: Any) -> bytes:
    try:
        return orjson.dumps(document)
    except TypeError:  # over 64 bits, or a lone surrogate: orjson refuses, json escapes
        return json.dumps(document).encode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def signed_token(key: rsa.RSAPrivateKey, header: Any, claims: Any) -> str:
    """An RS256 signature by ``key`` over exactly this header and payload (any JSON)."""
    signing_input = f"{_b64(_dumps(header))}.{_b64(_dumps(claims))}"
    signature = key.sign(signing_input.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def _hostile_claims(rng: random.Random, key_id: str, now: int) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "kid": key_id,
        "sub": "video-1",
        "aud": "video_id",
        "exp": now + 600,
    }
    for _ in range(rng.randrange(4)):
        name = rng.choice(["kid", "sub", "aud", "exp", "nbf", "iat", "extra"])
        roll = rng.randrange(4)
        if roll == 0:
            claims.pop(name, None)
        elif roll == 1 and name in ("exp", "nbf", "iat"):
            claims[name] = now + rng.choice([-(10**6), -60, 60, 10**6, 10**20])
        elif roll == 2 and name == "aud":
            claims[name] = rng.choice(["asset_id", "playback_id", "video", ["video_id"], ""])
        else:
            claims[name] = hostile_value(rng)
    return claims


def _mutate_chars(rng: random.Random, token: str) -> str:
    chars = list(token)
    for _ in range(rng.randrange(1, 4)):
        at = rng.randrange(len(chars) + 1)
        roll = rng.randrange(5)
        if roll == 0 and chars:
            chars[min(at, len(chars) - 1)] = rng.choice(_B64URL + ".=+/ \x00é")
        elif roll == 1:
            del chars[at : at + rng.randrange(1, 8)]
        elif roll == 2:
            chars[at:at] = rng.choice(["=", ".", "..", "A", "%", "\n"])
        elif roll == 3:
            chars = chars[:at]
        else:
            chars[at:at] = rng.choice(_B64URL) * rng.randrange(1, 9000)
    return "".join(chars)


def mutate_token_text(rng: random.Random, token: str) -> str:
    """``token`` broken without the key: characters changed, cut or added, segments shuffled
    or added. Whatever comes out, if it is not ``token`` itself no verifier may accept it."""
    if rng.random() < 0.5:
        return _mutate_chars(rng, token)
    parts = token.split(".")
    rng.shuffle(parts)
    cut = rng.randrange(4)
    return ".".join([*parts[:cut], _b64(_dumps(hostile_value(rng))), *parts[cut:]])


def mutate_token(
    rng: random.Random, token: str, key: rsa.RSAPrivateKey, key_id: str, now: int
) -> str:
    """A variant of a valid ``token``: broken by character or segment (half the time), or
    re-signed with the real key over a hostile header or claims (which may still be valid)."""
    roll = rng.randrange(4)
    if roll < 2:
        return mutate_token_text(rng, token)
    if roll == 2:
        header: Any = {"alg": "RS256", "typ": "JWT"}
        pick = rng.randrange(5)
        if pick == 0:
            header["alg"] = rng.choice(["none", "HS256", "RS512", "rs256", "", None, ["RS256"]])
        elif pick == 1:
            header["crit"] = ["exp"]
        elif pick == 2:
            header["kid"] = hostile_value(rng)
        elif pick == 3:
            header = hostile_value(rng)
        else:
            header["jku"] = "https://attacker.example/keys"
        return signed_token(key, header, _hostile_claims(rng, key_id, now))
    return signed_token(key, {"alg": "RS256", "typ": "JWT"}, _hostile_claims(rng, key_id, now))
