"""Keys and hand-made tokens for the token tests.

RSA keys are generated once per test session (generation costs 50-100 ms each) and handed
around as key objects (loading a private key from PEM costs ~39 ms). ``forge`` writes a JWT
byte by byte, so a test can build exactly the malformed or malicious token it is named after.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from headcount.history.memory import MemoryHistory
from headcount.stores.control import ControlStore, Environment, SigningKey
from headcount.stores.live import Counts


@functools.cache
def private_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """One RSA key per (label, bits) for the whole session."""
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def ec_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def pkcs1_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def pkcs8_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def register_key(
    control: ControlStore, environment: Environment, key: rsa.RSAPrivateKey, key_id: str
) -> SigningKey:
    stored = SigningKey(
        id=key_id,
        environment_id=environment.id,
        public_key_pem=public_pem(key),
        created_at=environment.created_at,
    )
    control.add_signing_key(stored)
    return stored


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def segment(obj: Any) -> str:
    return b64url(json.dumps(obj, separators=(",", ":")).encode())


def rs256_signature(key: rsa.RSAPrivateKey, signing_input: bytes) -> bytes:
    return key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())


def forge(
    header: dict[str, Any],
    claims: dict[str, Any],
    key: rsa.RSAPrivateKey | None = None,
    *,
    alg: str = "RS256",
    secret: bytes = b"",
) -> str:
    """A token with exactly this header and payload, signed the way ``alg`` names (``none``:
    no signature; HS256: HMAC with ``secret``; RS256/RS512/PS256 with ``key``; ES256 with a
    session EC key)."""
    signing_input = f"{segment(header)}.{segment(claims)}".encode("ascii")
    if alg == "none":
        signature = b""
    elif alg == "HS256":
        signature = hmac.new(secret, signing_input, hashlib.sha256).digest()
    elif alg == "ES256":
        signature = ec_private_key().sign(signing_input, ec.ECDSA(hashes.SHA256()))
    else:
        assert key is not None
        if alg == "RS256":
            signature = rs256_signature(key, signing_input)
        elif alg == "RS512":
            signature = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA512())
        elif alg == "PS256":
            signature = key.sign(
                signing_input,
                padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32),
                hashes.SHA256(),
            )
        else:
            raise ValueError(alg)
    return f"{signing_input.decode('ascii')}.{b64url(signature)}"


class Tenant:
    """An environment with one registered signing key, and a way to sign tokens for it."""

    def __init__(
        self,
        control: ControlStore,
        name: str,
        now: float,
        *,
        key_label: str = "main",
        bits: int = 2048,
    ) -> None:
        self.environment = control.create_environment(name, name.replace("-", ""), int(now))
        self.key = private_key(key_label, bits)
        self.key_id = f"{name}-key-{key_label}"
        register_key(control, self.environment, self.key, self.key_id)

    def claims(self, now: float, **overrides: Any) -> dict[str, Any]:
        """mux-node's claims: kid in the payload, sub/aud/exp, no iat."""
        claims: dict[str, Any] = {
            "kid": self.key_id,
            "sub": "video-1",
            "aud": "video_id",
            "exp": int(now) + 3600,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not ABSENT}

    def token(self, now: float, *, header: dict[str, Any] | None = None, **overrides: Any) -> str:
        return forge(
            header or {"alg": "RS256", "typ": "JWT"}, self.claims(now, **overrides), self.key
        )


ABSENT: Any = object()  # pass as a claim value to leave the claim out


class TableLiveStore:
    """A LiveStore (the real port) whose counts are set by the test, keyed by the full counter
    key (environment, id type, id): it shows exactly whose counts a token read."""

    def __init__(self, updated_at: float = 0.0) -> None:
        self.table: dict[tuple[str, str, str], Counts] = {}
        self._updated_at = updated_at
        self.history = MemoryHistory(86_400.0)  # the port has one; nothing here records

    @property
    def updated_at(self) -> float:
        return self._updated_at

    ready = True

    def immediate(self) -> None:
        return None  # behaves like a store on the network: always awaited

    async def counts(self, environment_id: str, id_type: str, id_value: str, now: float) -> Counts:
        return self.table.get((environment_id, id_type, id_value), Counts(0, 0))

    async def start(self, now: float) -> None:
        self._updated_at = now

    async def close(self, now: float) -> None:
        return None


async def asgi_get(app: Any, path: str, query_string: bytes) -> tuple[int, dict[str, str], bytes]:
    """One GET straight into the ASGI app, with query bytes no HTTP client would send (NUL
    bytes, a megabyte of token): what a hostile raw-socket caller can put on the wire."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query_string,
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    return start["status"], headers, body
