"""The Redis live store's URLs (DESIGN.md "Scale-out"): one server, TLS, a cluster seed, a
Unix socket; passwords never displayed; Headcount's own ``prefix``; what is refused and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from headcount.stores.redis_connect import RedisTarget, parse_redis_url
from tests.redis_servers import RedisServer
from tests.stores.redis_kit import ENV, T0, OpenRedis, fresh_url, start, video

pytestmark = pytest.mark.anyio

# -- URLs ----------------------------------------------------------------------------------


def test_a_redis_url_names_one_server() -> None:
    target = parse_redis_url("redis://cache.internal:6379/2")
    assert target == RedisTarget(
        url="redis://cache.internal:6379/2",
        cluster=False,
        prefix="hc",
        display="redis://cache.internal:6379/2",
    )
    assert parse_redis_url("REDIS://cache.internal").cluster is False


def test_a_rediss_url_keeps_tls_and_its_options_for_redis_py() -> None:
    target = parse_redis_url("rediss://:s3cret@cache.internal:6380/0?ssl_cert_reqs=none")
    assert target.url == "rediss://:s3cret@cache.internal:6380/0?ssl_cert_reqs=none"
    assert not target.cluster
    assert target.display == "rediss://cache.internal:6380/0"


def test_a_cluster_url_is_a_seed_node() -> None:
    target = parse_redis_url("redis+cluster://10.0.0.5:7000")
    assert (target.url, target.cluster, target.display) == (
        "redis://10.0.0.5:7000",
        True,
        "redis+cluster://10.0.0.5:7000",
    )
    tls = parse_redis_url("rediss+cluster://node.internal:7000")
    assert (tls.url, tls.cluster) == ("rediss://node.internal:7000", True)


def test_a_unix_socket_url() -> None:
    target = parse_redis_url("unix:///run/redis.sock?db=1&prefix=app")
    assert (target.url, target.cluster, target.prefix, target.display) == (
        "unix:///run/redis.sock?db=1",
        False,
        "app",
        "unix:///run/redis.sock",
    )


async def test_a_unix_socket_url_reaches_its_server(tmp_path: Path, open_redis: OpenRedis) -> None:
    socket = tmp_path / "r.sock"
    server = RedisServer(tmp_path / "unix", extra_args=["--unixsocket", str(socket)])
    server.start()
    try:
        store = await open_redis(fresh_url(f"unix://{socket}"))
        assert store.ready
        await store.ingest(ENV, [start("v1", viewer="c1")], T0)
        assert await video(store, T0) == (1, 1)
    finally:
        server.kill()


@pytest.mark.parametrize(
    "url",
    [
        "redis://user:hunter2@cache.internal:6379/0",
        "redis://:hunter2@cache.internal:6379/0",
        "rediss://default:hunter2@cache.internal:6380",
        "redis+cluster://user:hunter2@10.0.0.5:7000?prefix=app",
    ],
)
def test_the_password_is_never_displayed(url: str) -> None:
    target = parse_redis_url(url)
    assert "hunter2" in target.url  # redis-py needs it
    assert "hunter2" not in target.display
    assert "user" not in target.display
    assert "cache.internal" in target.display or "10.0.0.5" in target.display


def test_the_prefix_is_headcounts_own_query_parameter() -> None:
    target = parse_redis_url("redis://h:6379/0?prefix=staging-2&health_check_interval=5")
    assert target.prefix == "staging-2"
    assert target.url == "redis://h:6379/0?health_check_interval=5"
    assert parse_redis_url("redis://h:6379/0").prefix == "hc"


@pytest.mark.parametrize("prefix", ["", "a:b", "a{b}", "a%20b"])
def test_a_prefix_that_would_break_key_names_is_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="prefix"):
        parse_redis_url(f"redis://h:6379/0?prefix={prefix}")


@pytest.mark.parametrize(
    "url", ["memcached://h:11211", "http://h", "h:6379", "postgresql://u:hunter2@h/db"]
)
def test_an_unsupported_scheme_says_what_to_write(url: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_redis_url(url)
    message = str(raised.value)
    assert "unsupported live store URL" in message
    for supported in ("memory://", "redis://", "rediss://", "redis+cluster://"):
        assert supported in message
    assert "hunter2" not in message  # an error message is logged: no password in it


def test_a_url_without_a_host_is_refused() -> None:
    with pytest.raises(ValueError, match="names no host"):
        parse_redis_url("redis://:hunter2@/0")
    with pytest.raises(ValueError) as raised:
        parse_redis_url("redis://:hunter2@/0")
    assert "hunter2" not in str(raised.value)
