"""Which Redis a live-store URL names, and the redis-py client for it.

``redis://``, ``rediss://`` (TLS) and ``unix://`` are one Redis server; ``redis+cluster://``
and ``rediss+cluster://`` are a Redis Cluster reached through one seed node. Everything else in
the URL (password, database, ``ssl_*`` options) is redis-py's, as its ``from_url`` takes it.
One query parameter is Headcount's own: ``prefix`` (default ``hc``), the first part of every
key name, so that several deployments can share one Redis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from headcount.stores.redis_keys import DEFAULT_PREFIX, check_prefix

__all__ = ["SCHEMES", "RedisTarget", "connect", "parse_redis_url"]

# scheme -> (scheme redis-py is given, is a cluster)
SCHEMES: Final = {
    "redis": ("redis", False),
    "rediss": ("rediss", False),
    "unix": ("unix", False),
    "redis+cluster": ("redis", True),
    "rediss+cluster": ("rediss", True),
}
# A request must fail fast rather than hang while Redis is away: the collector then answers
# 503 and mux-embed sends the batch again.
_SOCKET_TIMEOUT: Final = 2.0
_CONNECT_TIMEOUT: Final = 1.0


@dataclass(frozen=True)
class RedisTarget:
    url: str  # as redis-py takes it
    cluster: bool
    prefix: str
    display: str  # for logs: no password


def parse_redis_url(url: str) -> RedisTarget:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = parts.netloc.rpartition("@")[2]
    # What an error may show: no user, password or query (redis-py takes a password there too).
    shown = urlunsplit((parts.scheme, host, parts.path, "", ""))
    if scheme not in SCHEMES:
        raise ValueError(
            f"unsupported live store URL {shown!r}: use memory://, redis://HOST:PORT/DB, "
            "rediss://... or redis+cluster://HOST:PORT"
        )
    client_scheme, cluster = SCHEMES[scheme]
    if scheme != "unix" and not parts.hostname:
        raise ValueError(f"the live store URL {shown!r} names no host")
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = DEFAULT_PREFIX
    kept = []
    for name, value in query:
        if name == "prefix":
            prefix = value
        else:
            kept.append((name, value))
    check_prefix(prefix)  # refused with the URL, not later when the store is built
    kept_query = urlencode(kept)
    # Written out, not urlunsplit: that turns "unix:///path" into "unix:/path", which
    # redis-py refuses (it wants "unix://").
    client_url = f"{client_scheme}://{parts.netloc}{parts.path}"
    return RedisTarget(
        url=f"{client_url}?{kept_query}" if kept_query else client_url,
        cluster=cluster,
        prefix=prefix,
        display=f"{scheme}://{host}{parts.path}",
    )


def connect(target: RedisTarget) -> tuple[Any, bool]:
    """A client for ``target`` (it connects on first use) and whether it is a cluster's."""
    options: dict[str, Any] = {
        "socket_timeout": _SOCKET_TIMEOUT,
        "socket_connect_timeout": _CONNECT_TIMEOUT,
    }
    if target.cluster:
        return RedisCluster.from_url(target.url, **options), True
    return Redis.from_url(target.url, retry=Retry(NoBackoff(), 1), **options), False
