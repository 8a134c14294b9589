"""Strict RS256 verification of viewer-count tokens, on raw ``cryptography``.

PyJWT spends ~67 µs per decode, most of it checking base64 characters in Python; the same work
done here costs ~28 µs, close to the ~24 µs of the RSA operation itself (perf-stack §1). The
verifier is deliberately narrow, so there is little to get wrong:

1. size: a token longer than :data:`MAX_TOKEN_LENGTH` is refused before any decoding;
2. shape: exactly three segments of strict, canonical, unpadded base64url;
3. header: a JSON object whose ``alg`` is one of :data:`ALLOWED_ALGORITHMS` (the token never
   chooses anything else); ``crit`` is refused because we implement no extension; ``jku``,
   ``jwk``, ``x5u``... are ignored: keys come only from our own store, by ``kid``;
4. ``kid``: from the payload first (mux-node and the Go/PHP/Ruby examples), then the header
   (PyJWT examples); it must be a non-empty string;
5. the caller looks the key up (:mod:`headcount.auth.keyring`); it must be an RSA public key of
   at least :data:`MIN_KEY_BITS` bits (:func:`load_verification_key`);
6. signature: RSASSA-PKCS1-v1_5 with SHA-256;
7. claims, only once the signature holds: :data:`REQUIRED_CLAIMS`, ``aud`` one of the four id
   types, ``exp``/``nbf``/``iat`` against ``now`` with a leeway. Extra claims and ``typ`` are
   accepted whatever they are.

Every refusal is a :class:`~headcount.errors.TokenRefused` whose ``error_type`` says why; the
low-level errors of base64, JSON and cryptography are translated by :class:`_RefuseOn` only
(as a context manager, or on the hot path as ``except _LOW_LEVEL: raise X.refusal()``, which
costs nothing when nothing is raised, where ``with`` costs two Python calls).
"""

from __future__ import annotations

import binascii
import time
from types import TracebackType
from typing import Any, Final, NamedTuple

import orjson
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from headcount.core.ids import ID_TYPES
from headcount.errors import TokenRefused

__all__ = [
    "ALLOWED_ALGORITHMS",
    "MAX_KEY_BITS",
    "MAX_TOKEN_LENGTH",
    "MIN_KEY_BITS",
    "REQUIRED_CLAIMS",
    "Claims",
    "ParsedToken",
    "check_claims",
    "load_verification_key",
    "parse_token",
    "verify_signature",
]

ALLOWED_ALGORITHMS: Final[tuple[str, ...]] = ("RS256",)
REQUIRED_CLAIMS: Final[tuple[str, ...]] = ("exp", "sub", "aud")

# A mux-node token is ~500 characters; 8 KiB leaves room for generous extra claims while
# bounding the work an anonymous caller can ask for (base64 + JSON are linear in the size).
MAX_TOKEN_LENGTH: Final = 8192
# The Mux guide: "the API will generate a 2048-bit RSA key pair". Smaller keys are forgeable in
# practice; keys above 8192 bits only make each verify slower (verify cost grows with the square
# of the modulus) and no Mux tool makes them.
MIN_KEY_BITS: Final = 2048
MAX_KEY_BITS: Final = 8192

# The shape of a JWT, [A-Za-z0-9_-]+ "." [A-Za-z0-9_-]+ "." [A-Za-z0-9_-]*, checked as: deleting
# every base64url character leaves exactly two dots, and the first two segments are not empty
# (a third of the cost of the same regular expression on a 500-character token).
_BASE64URL_ALPHABET: Final = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
_REQUIRED: Final = frozenset(REQUIRED_CLAIMS)
_TO_STANDARD_ALPHABET: Final = bytes.maketrans(b"-_", b"+/")
_PADDING: Final = {2: b"==", 3: b"="}
# Canonical base64url: the bits a final partial character does not use must be zero, so that
# one byte string has exactly one encoding (no alternative spellings of the same signature).
_CANONICAL_LAST: Final = {2: frozenset(b"AQgw"), 3: frozenset(b"AEIMQUYcgkosw048")}
_PKCS1V15: Final = padding.PKCS1v15()
_SHA256: Final = hashes.SHA256()
# Header segments that passed _check_header, and their JSON (read only, for the header kid). A
# signer writes the same header on every token, so a handful of entries serve nearly every
# verify; bounded in number and size, oldest first out, whatever a caller sends.
_CHECKED_HEADERS: Final[dict[bytes, dict[str, Any]]] = {}
_CHECKED_HEADERS_MAX: Final = 256
_CHECKED_HEADER_MAX_LENGTH: Final = 512
# binascii.Error, orjson.JSONDecodeError and UnicodeDecodeError are all ValueErrors.
_LOW_LEVEL: Final = (ValueError, InvalidSignature, UnsupportedAlgorithm)


class _RefuseOn:
    """The one place where low-level errors become a :class:`TokenRefused`.

    ``with _RefuseOn(type, message): <decode or verify>`` turns the errors base64, UTF-8,
    JSON and cryptography raise into a refusal with a message written for the developer; the
    original error is dropped (``from None``): it says nothing more and may echo token bytes.
    """

    __slots__ = ("error_type", "message")

    def __init__(self, error_type: str, message: str) -> None:
        self.error_type = error_type
        self.message = message

    def refusal(self) -> TokenRefused:
        # A fresh exception each time: re-raising one instance would grow its traceback.
        return TokenRefused(self.message, error_type=self.error_type)

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None and issubclass(exc_type, _LOW_LEVEL):
            raise self.refusal() from None


_BAD_BASE64: Final = _RefuseOn(
    "invalid_token",
    "The token is not a JWT: a segment is not canonical, unpadded base64url.",
)
_BAD_JSON: Final = _RefuseOn(
    "invalid_token", "The token header or payload is not JSON; send a signed JWT."
)
_BAD_SIGNATURE: Final = _RefuseOn(
    "invalid_signature",
    "The token signature does not match its signing key (kid): it was signed with another "
    "private key, or the token was altered after signing.",
)
_BAD_KEY: Final = _RefuseOn(
    "weak_key", "The signing key (kid) is stored in a form that cannot verify tokens."
)


def _refuse(error_type: str, message: str) -> TokenRefused:
    return TokenRefused(message, error_type=error_type)


class ParsedToken(NamedTuple):
    """A token whose shape and header passed, signature not yet checked."""

    key_id: str
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


class Claims(NamedTuple):
    """What a verified token grants: counts of ``id`` of type ``id_type`` until ``exp``."""

    id_type: str
    id: str
    exp: float


def _b64decode(segment: bytes) -> bytes:
    remainder = len(segment) & 3
    if remainder:
        if remainder == 1:
            raise ValueError("impossible base64 length")
        if segment[-1] not in _CANONICAL_LAST[remainder]:
            raise ValueError("non-canonical base64")
        segment += _PADDING[remainder]
    # The shape check already refused '+', '/' and '=': after this translation the standard
    # decoder sees exactly the url-safe characters, with the padding we added.
    return binascii.a2b_base64(segment.translate(_TO_STANDARD_ALPHABET))


def parse_token(token: str) -> ParsedToken:
    """Steps 1-4: size, shape, header, ``kid``. No key is needed yet."""
    if len(token) > MAX_TOKEN_LENGTH:
        raise _refuse("invalid_token", f"The token is longer than {MAX_TOKEN_LENGTH} characters.")
    raw = token.encode("ascii", "replace")  # anything non-ASCII becomes '?': refused below
    if raw.translate(None, _BASE64URL_ALPHABET) != b"..":
        raise _bad_shape()
    header_b64, payload_b64, signature_b64 = raw.split(b".")
    if not header_b64 or not payload_b64:
        raise _bad_shape()
    # A header segment that already passed every header check passes them again: skip its
    # decoding and checks. The refusals keep their order for the others (base64 of the three
    # segments, then JSON, then the header's checks, then the payload's).
    header = _CHECKED_HEADERS.get(header_b64)
    try:
        header_json = _b64decode(header_b64) if header is None else b""
        payload_json = _b64decode(payload_b64)
        signature = _b64decode(signature_b64)
    except _LOW_LEVEL:
        raise _BAD_BASE64.refusal() from None
    try:
        decoded_header = orjson.loads(header_json) if header is None else header
        claims = orjson.loads(payload_json)
    except _LOW_LEVEL:
        raise _BAD_JSON.refusal() from None
    if header is None:
        header = _check_header(decoded_header)
        if len(header_b64) <= _CHECKED_HEADER_MAX_LENGTH:
            if len(_CHECKED_HEADERS) >= _CHECKED_HEADERS_MAX:
                del _CHECKED_HEADERS[next(iter(_CHECKED_HEADERS))]
            _CHECKED_HEADERS[header_b64] = header
    if not isinstance(claims, dict):
        raise _refuse("invalid_token", "The token payload is not a JSON object.")
    return ParsedToken(
        _key_id(claims, header),
        claims,
        raw[: len(header_b64) + 1 + len(payload_b64)],
        signature,
    )


def _check_header(header: Any) -> dict[str, Any]:
    if not isinstance(header, dict):
        raise _refuse("invalid_token", "The token header is not a JSON object.")
    alg = header.get("alg")
    if alg.__class__ is not str or alg not in ALLOWED_ALGORITHMS:
        raise _refuse(
            "unsupported_algorithm",
            f"The token header must say alg {ALLOWED_ALGORITHMS[0]}; "
            "no other algorithm is accepted.",
        )
    if "crit" in header:
        raise _refuse(
            "invalid_token",
            "The token header lists critical extensions (crit); none are supported.",
        )
    return header


def _bad_shape() -> TokenRefused:
    return _refuse(
        "invalid_token",
        "The token is not a JWT: expected three base64url segments separated by dots "
        "(header.payload.signature), without padding.",
    )


def _key_id(claims: dict[str, Any], header: dict[str, Any]) -> str:
    # The payload wins: that is where mux-node writes it, and a header kid is only a fallback
    # for PyJWT-style tokens. A present but malformed payload kid never falls back.
    if "kid" in claims:
        kid, where = claims["kid"], "payload"
    elif "kid" in header:
        kid, where = header["kid"], "header"
    else:
        raise _refuse(
            "missing_claim",
            "The token has no kid: put the signing key id in the payload (as mux-node does) "
            "or in the header.",
        )
    if not isinstance(kid, str) or not kid:
        raise _refuse(
            "invalid_claim", f"The token's kid (in the {where}) must be a non-empty string."
        )
    return kid


def load_verification_key(public_key_pem: bytes) -> rsa.RSAPublicKey:
    """A stored public key, refused unless it is RSA with MIN_KEY_BITS..MAX_KEY_BITS bits."""
    with _BAD_KEY:
        key = serialization.load_pem_public_key(public_key_pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise _refuse("weak_key", "The signing key (kid) is not an RSA key; tokens must be RS256.")
    if not MIN_KEY_BITS <= key.key_size <= MAX_KEY_BITS:
        raise _refuse(
            "weak_key",
            f"The signing key (kid) is a {key.key_size}-bit RSA key; only keys of "
            f"{MIN_KEY_BITS} to {MAX_KEY_BITS} bits are accepted. Create a new signing key.",
        )
    return key


def verify_signature(parsed: ParsedToken, public_key: rsa.RSAPublicKey) -> None:
    """Step 6: RSASSA-PKCS1-v1_5 / SHA-256 over ``header.payload``."""
    try:
        public_key.verify(parsed.signature, parsed.signing_input, _PKCS1V15, _SHA256)
    except _LOW_LEVEL:
        raise _BAD_SIGNATURE.refusal() from None


def _utc(seconds: float) -> str:
    try:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
    except (OverflowError, OSError, ValueError):
        return f"{seconds:.0f} (epoch seconds)"


def _time_claim(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    # bool is an int subclass, but `"exp": true` is a mistake, not a time: compare classes.
    # orjson never yields an infinite or NaN float (it refuses 1e400), so no finiteness check.
    if value.__class__ is not int and value.__class__ is not float:
        raise _refuse(
            "invalid_claim", f"The token's {name} must be a number of seconds since the epoch."
        )
    return float(value)


def check_claims(claims: dict[str, Any], now: float, leeway: float) -> Claims:
    """Step 7, on a payload whose signature already verified."""
    if not claims.keys() >= _REQUIRED:
        missing = [name for name in REQUIRED_CLAIMS if name not in claims]
        raise _refuse(
            "missing_claim",
            f"The token lacks the required claim(s) {', '.join(missing)}; a viewer-counts "
            f"token needs {', '.join(REQUIRED_CLAIMS)} (and kid).",
        )
    exp = _time_claim(claims, "exp")
    if exp + leeway <= now:
        raise _refuse(
            "expired_token",
            f"The token expired at {_utc(exp)} (exp); sign a new one with a later exp.",
        )
    if "nbf" in claims:
        nbf = _time_claim(claims, "nbf")
        if nbf - leeway > now:
            raise _refuse(
                "token_not_yet_valid", f"The token is not valid before {_utc(nbf)} (nbf)."
            )
    if "iat" in claims:
        iat = _time_claim(claims, "iat")
        if iat - leeway > now:
            raise _refuse(
                "token_not_yet_valid",
                f"The token claims to be issued in the future, at {_utc(iat)} (iat); check "
                "the signing machine's clock.",
            )
    aud = claims["aud"]
    if aud.__class__ is not str or aud not in ID_TYPES:
        raise _refuse(
            "invalid_audience",
            f"The token's aud must be one of {', '.join(ID_TYPES)} (a single string).",
        )
    sub = claims["sub"]
    if sub.__class__ is not str or not sub:
        raise _refuse(
            "invalid_claim", "The token's sub must be a non-empty string: the id to count."
        )
    return Claims(aud, sub, exp)
