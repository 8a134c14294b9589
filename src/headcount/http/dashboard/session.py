"""The dashboard's session: a signed cookie naming the access tokens a person signed in with.

*Decisions* (docs/dashboard.md says the same for operators):

- **No account system**: a person signs in with an access token id and secret, checked by
  :func:`~headcount.auth.access_tokens.authenticate` (the System API's own check). The cookie
  holds the token ids, never the secret.
- **The signing key is derived, never a constant**: an HMAC, keyed by the
  ``dashboard_session_secret`` setting, of the stored SHA-256 hashes of the session's own
  access tokens. The hashes make a token that is revoked, or gone from the store, void its
  sessions on their next request, on every node. The setting keeps a copy of the control
  store from being enough to forge a session: the store holds only hashes so that reading it
  gives no credential, and a key made from the hashes alone would have made them one. Nodes
  that share a control store and this setting accept each other's cookies; with the setting
  empty, ``headcount serve`` makes a random one at start (shared by its ``--workers``), so
  sessions then hold on that server until it restarts.
- **Expiry**: the signature carries its time (itsdangerous); a cookie older than
  :data:`LIFETIME` is refused whatever its ``Max-Age`` said.
- **Cookie flags**: ``HttpOnly``; ``SameSite=Lax``; ``Path=/dashboard``; ``Secure`` when the
  request came over https: directly, or through a proxy that says ``X-Forwarded-Proto:
  https`` (the server runs without uvicorn's proxy-header rewriting; trusting this one header
  is safe either way: a client that adds it on plain http only gets a cookie its browser will
  not send back over http). Lax, not Strict, because every change is a POST, which Lax never sends
  cross-site and which also needs the session's CSRF token, while GET pages change nothing:
  Lax lets a dashboard link pasted in a chat open signed in, Strict would buy nothing more.
- **CSRF**: a random token per session, inside the signed cookie, sent back as a hidden field
  by every POST form and compared in constant time. The sign-in form, before any session,
  uses a double-submit nonce (its own short-lived cookie, same value in the form).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer
from starlette.requests import Request
from starlette.responses import Response

from headcount.stores.control import AccessToken, ControlStore

__all__ = [
    "COOKIE",
    "LIFETIME",
    "MAX_TOKENS",
    "PATH",
    "SIGN_IN_COOKIE",
    "SIGN_IN_LIFETIME",
    "Session",
    "SessionCodec",
    "clear_cookie",
    "csrf_matches",
    "new_nonce",
    "set_cookie",
]

COOKIE = "headcount_session"
SIGN_IN_COOKIE = "headcount_sign_in"
PATH = "/dashboard"
LIFETIME = 12 * 3600  # s: a session lasts a working day, then its person signs in again
SIGN_IN_LIFETIME = 3600  # s: the sign-in form's nonce
MAX_TOKENS = 8  # environments one session may hold (each costs a store read per request)
_SALT = "headcount.dashboard.session"
_KEY_LABEL = b"headcount dashboard session key v1"
_ID_SEPARATOR = "-"  # token ids are [A-Za-z0-9] (auth/identifiers.py)
_PART_SEPARATOR = "~"


@dataclass(frozen=True, slots=True)
class Session:
    """Who is signed in: the tokens (one per environment), the one in use, the CSRF token."""

    token_ids: tuple[str, ...]
    current: str
    csrf: str


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def csrf_matches(expected: str, sent: str | None) -> bool:
    return sent is not None and hmac.compare_digest(expected.encode(), sent.encode())


def _key(pepper: bytes, secret_hashes: Iterable[str]) -> bytes:
    material = _KEY_LABEL + b"\n" + "\n".join(secret_hashes).encode("ascii")
    return hmac.new(pepper, material, hashlib.sha256).digest()


def _signer_at(now: float) -> type[TimestampSigner]:
    """itsdangerous's timestamp signer, reading ``now`` instead of the clock (time is a
    parameter: the tests move it)."""

    class _At(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(now)

    return _At


class SessionCodec:
    """Writes and reads the session cookie against one control store (synchronous: call it
    off the event loop)."""

    def __init__(self, control: ControlStore, secret: str) -> None:
        self.control = control
        # The deployment's dashboard_session_secret; empty (an app built without `serve`,
        # which makes one): a random one for this codec, so cookies hold in this process only.
        self._pepper = secret.encode() if secret else secrets.token_bytes(32)

    def _serializer(self, secret_hashes: Iterable[str], now: float) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(
            _key(self._pepper, secret_hashes),
            salt=_SALT,
            signer=_signer_at(now),
            signer_kwargs={"digest_method": hashlib.sha256},
        )

    def encode(self, session: Session, now: float) -> str:
        hashes = [self._stored(token_id)[1] for token_id in session.token_ids]
        document = {"t": list(session.token_ids), "c": session.current, "x": session.csrf}
        signed = self._serializer(hashes, now).dumps(document)
        return _ID_SEPARATOR.join(session.token_ids) + _PART_SEPARATOR + signed

    def decode(self, cookie: str | None, now: float) -> tuple[Session, list[AccessToken]] | None:
        """The session and its tokens (current first) if the cookie is genuine, unexpired,
        and every token in it is still live; else None (the person signs in again)."""
        if not cookie or _PART_SEPARATOR not in cookie:
            return None
        names, _, signed = cookie.partition(_PART_SEPARATOR)
        token_ids = tuple(names.split(_ID_SEPARATOR))
        if not 1 <= len(token_ids) <= MAX_TOKENS:
            return None
        found = [self.control.access_token_with_hash(token_id) for token_id in token_ids]
        stored = [f for f in found if f is not None]
        if len(stored) != len(found) or any(token.revoked for token, _ in stored):
            return None
        try:
            document = self._serializer((h for _, h in stored), now).loads(
                signed, max_age=LIFETIME, return_timestamp=False
            )
        except BadSignature:  # also SignatureExpired, its subclass
            return None
        if not isinstance(document, dict) or tuple(document.get("t", ())) != token_ids:
            return None
        current, csrf = document.get("c"), document.get("x")
        if current not in token_ids or not isinstance(csrf, str):
            return None
        tokens = sorted((t for t, _ in stored), key=lambda t: t.id != current)
        return Session(token_ids, current, csrf), tokens

    def _stored(self, token_id: str) -> tuple[AccessToken, str]:
        found = self.control.access_token_with_hash(token_id)
        if found is None:
            raise LookupError(f"access token {token_id} is not in the store")
        return found


def _over_https(request: Request) -> bool:
    forwarded = request.headers.get("x-forwarded-proto", "").partition(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        secure=_over_https(request),
        httponly=True,
        samesite="lax" if name == COOKIE else "strict",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(
        name, path=PATH, secure=_over_https(request), httponly=True, samesite="lax"
    )
