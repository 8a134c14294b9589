"""What one client may cost this process: the limits every connection is held to.

The numbers are settings (``--max-url-bytes``, ``--header-timeout``, ...; docs/deployment.md,
"Limits"); :class:`ConnectionLimits` holds them once per process with what the connections
share (the bytes of request bodies still arriving) and the answers a refusal gets. The
protocol that applies them is :class:`~headcount.http.protocol_limits.LimitedProtocol`.

Descriptors: every connection holds one, and so do the store's files and sockets (SQLite,
the live state's save, Redis and Postgres pools). :func:`descriptor_room` makes sure that
``--max-connections`` connections fit under the process's descriptor limit with
:data:`RESERVED_DESCRIPTORS` to spare, raising the soft limit toward the hard one when it
must, else lowering the number of connections held.
"""

from __future__ import annotations

import resource
from typing import Final

from headcount.errors import (
    HeadcountError,
    HeadersTooLarge,
    Overloaded,
    RequestTimeout,
    UriTooLong,
)
from headcount.http.reply import Reply, error_reply
from headcount.metrics import Counter, Metrics
from headcount.settings import Settings

__all__ = ["RESERVED_DESCRIPTORS", "ConnectionLimits", "Refusal", "descriptor_room"]

# Descriptors kept free of connections: the listening socket, the event loop's own, the
# SQLite database and its journal, the live state's lock and its save (a temporary file),
# log files, and the Redis and Postgres connection pools. A server started as `headcount
# serve` uses about 20 before its first connection.
RESERVED_DESCRIPTORS: Final = 64

_RETRY_SOON: Final = [("retry-after", "1")]


def _limited(metrics: Metrics, limit: str) -> Counter:
    return metrics.counter(
        "headcount_connections_limited_total",
        "Connections closed because the client passed a limit (docs/deployment.md, Limits).",
        limit=limit,
    )


class Refusal:
    """One limit's answer (an error envelope, then the connection closes) and its count."""

    __slots__ = ("counter", "reply")

    def __init__(self, metrics: Metrics, limit: str, exc: HeadcountError) -> None:
        extra = _RETRY_SOON if isinstance(exc, Overloaded) else None
        self.reply: Reply = error_reply(exc, extra)
        self.counter = _limited(metrics, limit)


class ConnectionLimits:
    """The limits of this process's connections, and the one total they share."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.max_url_bytes = settings.max_url_bytes
        self.max_header_bytes = settings.max_header_bytes
        self.max_headers = settings.max_headers
        # A head that keeps growing with no field completed (one endless header line) is
        # measured by the bytes read while it lasts: its whole budget.
        self.max_head_bytes = settings.max_url_bytes + settings.max_header_bytes
        self.header_timeout = settings.header_timeout
        self.body_timeout = settings.body_timeout
        self.max_connections = settings.max_connections
        self.max_body_memory = settings.max_body_memory
        self.max_unsent_bytes = settings.max_unsent_bytes
        self.send_timeout = settings.send_timeout
        # Bytes of request bodies still arriving on every connection of this process.
        self.bodies_held = 0

        def refusal(limit: str, exc: HeadcountError) -> Refusal:
            return Refusal(metrics, limit, exc)

        self.url_too_long = refusal(
            "max_url_bytes",
            UriTooLong(f"The request target is longer than {self.max_url_bytes} bytes."),
        )
        self.headers_too_large = refusal(
            "max_header_bytes",
            HeadersTooLarge(
                f"The request headers are larger than {self.max_header_bytes} bytes, or "
                f"more than {self.max_headers} fields."
            ),
        )
        self.headers_too_slow = refusal(
            "header_timeout",
            RequestTimeout(f"The request headers took longer than {self.header_timeout} s."),
        )
        self.body_too_slow = refusal(
            "body_timeout",
            RequestTimeout(f"The request body took longer than {self.body_timeout} s."),
        )
        self.too_many_connections = refusal(
            "max_connections",
            Overloaded("The server holds as many connections as it takes; try again shortly."),
        )
        self.too_many_bodies = refusal(
            "max_body_memory",
            Overloaded("The server holds as many request bodies as it takes; try again shortly."),
        )
        # Cut without an answer: nothing was asked, or the client does not read.
        self.silent = _limited(metrics, "silent_connection")
        self.stalled = _limited(metrics, "send_timeout")


def descriptor_room(max_connections: int) -> int:
    """How many connections this process may hold: ``max_connections``, or fewer when they
    would not leave :data:`RESERVED_DESCRIPTORS` descriptors free under the limit (the soft
    limit is raised toward the hard one first, as far as that needs)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + RESERVED_DESCRIPTORS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
            soft = raised
        except (ValueError, OSError):
            pass
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return max_connections
    return max(1, soft - RESERVED_DESCRIPTORS)
