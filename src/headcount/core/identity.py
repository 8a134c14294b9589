"""Stable 60-bit hashes for views and viewers.

Live state never keeps a view id or a viewer id as a string: a view is keyed by
:func:`view_key` (environment, view_id) and a viewer identity is :func:`viewer_hash`; both are
only ever compared for equality, so a hash is enough, and it costs 8 bytes instead of ~85. The
Redis store names counter keys by :func:`content_key` in the same way.

Why 60 bits: CPython stores an int of up to 60 bits in two 30-bit digits (a 32-byte object);
61 to 64 bits need a third digit (48 bytes with allocator rounding), for ~16 bytes more per
view. Collision odds with ``n`` values are about ``n**2 / 2**61``: for one million views
alive at once, 4e-7 that any two views share a key (they would then be counted as one); for
viewers, the same odds apply within one counter key. The hash is BLAKE2b (keyless, stable
across processes, so a saved state restores to the same keys) — not Python's ``hash()``, which
is salted per process.

``0`` is reserved: as a viewer it means "the view itself" (no viewer id known), and no hash
is ever 0.
"""

from __future__ import annotations

from hashlib import blake2b
from typing import Final

__all__ = [
    "VIEWER_COOKIE",
    "VIEWER_SELF",
    "VIEWER_USER",
    "content_key",
    "view_key",
    "viewer_hash",
]

_MASK: Final[int] = (1 << 60) - 1

# Viewer identity kinds, best last: the view itself < mux_viewer_id < viewer_user_id.
VIEWER_SELF: Final[int] = 0
VIEWER_COOKIE: Final[int] = 1
VIEWER_USER: Final[int] = 2

_VIEWER_TAGS: Final[dict[int, bytes]] = {VIEWER_COOKIE: b"m\x00", VIEWER_USER: b"u\x00"}


def _hash60(data: bytes) -> int:
    return (int.from_bytes(blake2b(data, digest_size=8).digest(), "little") & _MASK) or 1


def view_key(environment_id: str, view_id: str) -> int:
    return _hash60(environment_id.encode() + b"\x00" + view_id.encode("utf-8", "surrogatepass"))


def content_key(environment_id: str, id_type: str, value: str) -> int:
    """A counter key ``(environment, id type, id)`` as one hash: what names its records in a
    store that cannot intern strings across machines (Redis)."""
    return _hash60(
        b"c\x00"
        + environment_id.encode()
        + b"\x00"
        + id_type.encode()
        + b"\x00"
        + value.encode("utf-8", "surrogatepass")
    )


def viewer_hash(kind: int, value: str) -> int:
    """A viewer id of one kind; a user id and a cookie id that are equal stay distinct."""
    return _hash60(_VIEWER_TAGS[kind] + value.encode("utf-8", "surrogatepass"))
