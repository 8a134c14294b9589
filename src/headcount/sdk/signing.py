"""Sign viewer-count tokens: the Python twin of mux-node's ``mux.jwt.signViewerCounts``.

Needs only PyJWT and cryptography, so an application can sign tokens with the light install
(``pip install headcount``) and none of the server stack.

The token is what mux-node 15 produces: header ``{"alg":"RS256","typ":"JWT"}``, payload
``{...extra_claims, "kid", "sub", "aud", "exp"}`` (``kid`` in the payload; no ``iat``; the four
required claims always win over ``extra_claims``). Such a token is accepted by Headcount and by
Mux's own ``stats.mux.com/counts``.
"""

from __future__ import annotations

import base64
import binascii
import functools
import re
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Final

import jwt
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from headcount.core.ids import ID_TYPES, SHORT_ID_TYPES

__all__ = [
    "DEFAULT_EXPIRES_IN",
    "load_private_key",
    "parse_timespan",
    "sign_viewer_counts",
]

DEFAULT_EXPIRES_IN: Final = "7d"  # mux-node's default expiration

# mux-node's parseTimespan (lib/jwt.js): a number of seconds, or "<n><unit>" where the unit's
# first letter picks seconds, minutes, hours, days, weeks or (365-day) years.
_TIMESPAN: Final = re.compile(
    r"(\d+)\s*(seconds?|secs?|s|minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|w|years?|yrs?|y)"
)
_SECONDS_PER: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_MIN_KEY_BITS: Final = 2048  # what Headcount (and Mux) will verify


def parse_timespan(value: float | timedelta | str) -> float:
    """Seconds in ``value``: a number of seconds, a timedelta, or mux-node's strings
    (``"90"``, ``"15m"``, ``"1h"``, ``"1 day"``, ``"7d"``, ``"2 weeks"``, ``"1y"``)."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, bool):
        raise TypeError("expires_in must be seconds, a timedelta or a string like '7d'")
    if isinstance(value, int | float):
        return float(value)
    trimmed = value.strip()
    match = _TIMESPAN.fullmatch(trimmed)
    if match:
        return float(int(match.group(1)) * _SECONDS_PER[match.group(2)[0]])
    try:
        return float(trimmed)
    except ValueError:
        raise ValueError(
            f"Invalid time span {value!r}: use seconds, or a number with a unit "
            "(s, m, h, d, w, y), e.g. '1h' or '7d'."
        ) from None


@functools.lru_cache(maxsize=16)
def _load_pem(pem: bytes) -> PrivateKeyTypes:
    # Loading a private key runs RSA consistency checks (~39 ms); signing many tokens with the
    # same PEM or base64 string pays that once.
    return serialization.load_pem_private_key(pem, password=None)


def load_private_key(private_key: str | bytes | rsa.RSAPrivateKey) -> rsa.RSAPrivateKey:
    """An RSA private key from what the System API returns (base64 of a PEM), a PEM (str or
    bytes; PKCS#1 ``BEGIN RSA PRIVATE KEY`` or PKCS#8 ``BEGIN PRIVATE KEY``), or a key object.
    Like mux-node: a value starting with ``-----BEGIN`` is PEM, anything else base64 of one."""
    if isinstance(private_key, rsa.RSAPrivateKey):
        key = private_key
    else:
        raw = (
            private_key.encode("ascii", "replace") if isinstance(private_key, str) else private_key
        )
        raw = raw.strip()
        if raw.startswith(b"-----BEGIN"):
            pem = raw
        else:
            try:
                # `base64` wraps its output at 76 columns; the whitespace is not part of it.
                pem = base64.b64decode(b"".join(raw.split()), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(
                    "The private key is neither a PEM nor base64 of one (the System API "
                    "returns base64 of a PEM)."
                ) from None
            if not pem.lstrip().startswith(b"-----BEGIN"):
                raise ValueError("The private key decodes from base64, but not to a PEM.")
        try:
            loaded = _load_pem(pem)
        except (ValueError, TypeError, UnsupportedAlgorithm):
            raise ValueError(
                "The private key PEM could not be read (it must be an unencrypted RSA key)."
            ) from None
        if not isinstance(loaded, rsa.RSAPrivateKey):
            raise ValueError("The private key is not an RSA key; viewer-count tokens are RS256.")
        key = loaded
    if key.key_size < _MIN_KEY_BITS:
        raise ValueError(
            f"The private key has {key.key_size} bits; tokens need an RSA key of at least "
            f"{_MIN_KEY_BITS} bits (create one with the System API)."
        )
    return key


def _audience(type: str) -> str:
    if type in ID_TYPES:
        return type
    if type in SHORT_ID_TYPES:
        return SHORT_ID_TYPES[type]
    raise ValueError(
        f"Invalid type {type!r}: expected one of {', '.join(ID_TYPES)} "
        f"(or mux-node's {', '.join(SHORT_ID_TYPES)})."
    )


def sign_viewer_counts(
    id: str,
    *,
    type: str = "video_id",
    key_id: str,
    private_key: str | bytes | rsa.RSAPrivateKey,
    expires_in: float | timedelta | str = DEFAULT_EXPIRES_IN,
    extra_claims: Mapping[str, Any] | None = None,
) -> str:
    """A token for ``GET /counts?token=...``: the counts of ``id`` (a ``type``: ``video_id``,
    ``asset_id``, ``playback_id``, ``live_stream_id``, or mux-node's ``video``, ``asset``,
    ``playback``, ``live_stream``), signed with signing key ``key_id``, valid for
    ``expires_in`` (default 7 days, as mux-node)."""
    if not isinstance(id, str) or not id:
        raise ValueError("id must be a non-empty string: the id to count.")
    if not isinstance(key_id, str) or not key_id:
        raise ValueError("key_id must be the signing key's id (a non-empty string).")
    audience = _audience(type)
    lifetime = parse_timespan(expires_in)
    if lifetime <= 0:
        raise ValueError(f"expires_in must be positive; got {expires_in!r}.")
    key = load_private_key(private_key)
    # mux-node floors "now" to whole seconds, then adds the span.
    claims: dict[str, Any] = {
        **(extra_claims or {}),
        "kid": key_id,
        "sub": id,
        "aud": audience,
        "exp": int(int(time.time()) + lifetime),
    }
    return jwt.encode(claims, key, algorithm="RS256")
