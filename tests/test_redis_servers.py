"""The Redis test infrastructure does what the live-store tests rely on: real servers that
answer redis-py, a cluster whose failover and resharding behave as in production."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
import redis
import redis.cluster
from redis.crc import key_slot

from tests.redis_cluster import MasterNode, RedisCluster
from tests.redis_servers import RedisServer

pytestmark = pytest.mark.slow

CLIENT_TIMEOUTS = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}


def _client_of(cluster: RedisCluster) -> Iterator[redis.cluster.RedisCluster]:
    client = redis.cluster.RedisCluster(
        host=cluster.seed_host, port=cluster.seed_port, **CLIENT_TIMEOUTS
    )
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def cluster_client(redis_cluster: RedisCluster) -> Iterator[redis.cluster.RedisCluster]:
    yield from _client_of(redis_cluster)


@pytest.fixture
def own_cluster_client(own_redis_cluster: RedisCluster) -> Iterator[redis.cluster.RedisCluster]:
    yield from _client_of(own_redis_cluster)


def _keys_in_slots(prefix: str, slots: set[int]) -> dict[int, str]:
    """One key per slot of ``slots`` (searching ``prefix:0``, ``prefix:1``, ...)."""
    keys: dict[int, str] = {}
    number = 0
    while len(keys) < len(slots):
        key = f"{prefix}:{number}"
        slot = key_slot(key.encode())
        if slot in slots:
            keys.setdefault(slot, key)
        number += 1
    return keys


def _slots_of(ranges: Iterable[tuple[int, int]]) -> set[int]:
    """Every slot of inclusive ``(first, last)`` ranges."""
    return {slot for first, last in ranges for slot in range(first, last + 1)}


def test_unique_prefixes_are_short_and_fresh(unique_prefix: str) -> None:
    assert re.fullmatch(r"t[0-9a-f]{8}", unique_prefix)


def test_standalone_answers_redis_py(redis_standalone: RedisServer, unique_prefix: str) -> None:
    assert redis_standalone.url == f"redis://127.0.0.1:{redis_standalone.port}/0"
    with redis.Redis.from_url(redis_standalone.url, **CLIENT_TIMEOUTS) as client:
        assert client.ping()
        client.set(f"{unique_prefix}:k", "v")
        assert client.get(f"{unique_prefix}:k") == b"v"


def test_a_restarted_server_comes_back_empty_on_its_port(
    redis_standalone: RedisServer, unique_prefix: str
) -> None:
    port = redis_standalone.port
    with redis.Redis.from_url(redis_standalone.url, **CLIENT_TIMEOUTS) as client:
        client.set(f"{unique_prefix}:k", "v")
    redis_standalone.restart()
    assert redis_standalone.alive and redis_standalone.port == port
    with redis.Redis.from_url(redis_standalone.url, **CLIENT_TIMEOUTS) as client:
        assert client.get(f"{unique_prefix}:k") is None


def test_a_server_that_cannot_start_fails_with_its_log(tmp_path: Path) -> None:
    server = RedisServer(tmp_path, extra_args=["--no-such-directive", "yes"])
    with pytest.raises(RuntimeError, match="no-such-directive"):
        server.start()
    assert not server.alive


def test_the_cluster_has_three_masters_each_with_a_replica(redis_cluster: RedisCluster) -> None:
    masters = redis_cluster.masters()
    assert len(masters) == 3
    assert sum(master.slot_count for master in masters) == 16384
    assert all(len(redis_cluster.replicas_of(master)) == 1 for master in masters)
    assert len(redis_cluster.replicas()) == 3
    assert redis_cluster.seed_port in {master.port for master in masters}
    assert redis_cluster.seed_url == f"redis+cluster://127.0.0.1:{redis_cluster.seed_port}"
    assert redis_cluster.problems() is None


def test_a_cluster_client_spreads_keys_over_the_masters(
    redis_cluster: RedisCluster, cluster_client: redis.cluster.RedisCluster, unique_prefix: str
) -> None:
    masters = redis_cluster.masters()
    keys = [
        _keys_in_slots(unique_prefix, _slots_of(master.slots)).popitem()[1] for master in masters
    ]
    redis_cluster.reset_stats()
    for key in keys:
        cluster_client.set(key, key)
    assert [cluster_client.get(key) for key in keys] == [key.encode() for key in keys]
    for key, master in zip(keys, masters, strict=True):
        assert redis_cluster.master_for_slot(redis_cluster.keyslot(key)) == master
        stats = redis_cluster.commandstats(master)
        assert (stats.get("set"), stats.get("get")) == (1, 1)


def test_a_killed_master_is_replaced_and_clients_keep_writing(
    own_redis_cluster: RedisCluster,
    own_cluster_client: redis.cluster.RedisCluster,
    unique_prefix: str,
) -> None:
    master = own_redis_cluster.masters()[0]
    (replica,) = own_redis_cluster.replicas_of(master)
    key = _keys_in_slots(unique_prefix, {master.slots[0][0]}).popitem()[1]
    own_cluster_client.set(key, "before")
    try:
        victim = own_redis_cluster.kill_master(0)
        assert victim.port == master.port and not victim.alive
        assert own_redis_cluster.master_for_slot(master.slots[0][0]).node_id == replica.node_id

        deadline = time.monotonic() + 15
        while True:
            try:
                own_cluster_client.set(key, "after")
                break
            except redis.exceptions.RedisError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        assert own_cluster_client.get(key) == b"after"

        own_redis_cluster.restart_node(victim)
        assert (victim.port, replica.node_id) in {
            (r.port, r.master_id) for r in own_redis_cluster.replicas()
        }
    finally:
        own_redis_cluster.heal()


def test_reshard_moves_slots_and_their_keys_under_traffic(
    own_redis_cluster: RedisCluster,
    own_cluster_client: redis.cluster.RedisCluster,
    unique_prefix: str,
) -> None:
    source, target = own_redis_cluster.masters()[:2]
    keys = _keys_in_slots(unique_prefix, _slots_of(source.slots))
    with own_cluster_client.pipeline(transaction=False) as pipe:
        for key in keys.values():
            pipe.set(key, key)
        pipe.execute()

    errors: list[BaseException] = []
    done = 0
    stop = threading.Event()

    def traffic() -> None:
        nonlocal done
        client = redis.cluster.RedisCluster(
            host=own_redis_cluster.seed_host, port=own_redis_cluster.seed_port, **CLIENT_TIMEOUTS
        )
        try:
            while not stop.is_set():
                key = f"{unique_prefix}:traffic:{done % 500}"
                client.set(key, str(done))
                assert client.get(key) == str(done).encode()
                done += 1
        except BaseException as error:  # reported by the test thread
            errors.append(error)
        finally:
            client.close()

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while done < 50 and not errors and time.monotonic() < deadline:
            time.sleep(0.05)
        own_redis_cluster.reshard(50, source.node_id, target.node_id)
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive() and not errors and done >= 50

    after = {m.node_id: m for m in own_redis_cluster.masters()}
    moved = _slots_of(source.slots) - _slots_of(after[source.node_id].slots)
    assert len(moved) == 50
    assert after[target.node_id].slot_count == target.slot_count + 50
    assert moved <= _slots_of(after[target.node_id].slots)

    def keys_on(master: MasterNode, slot: int) -> list[str]:
        return list(own_redis_cluster.server(master).call("CLUSTER", "GETKEYSINSLOT", slot, 100))

    for slot in moved:  # other tests' keys may share the slot: look for this test's own
        assert keys[slot] in keys_on(target, slot)
        assert keys[slot] not in keys_on(source, slot)
    with own_cluster_client.pipeline(transaction=False) as pipe:
        for key in keys.values():
            pipe.get(key)
        assert pipe.execute() == [key.encode() for key in keys.values()]

    own_redis_cluster.reshard(50, target.node_id, source.node_id)
    assert sum(m.slot_count for m in own_redis_cluster.masters()) == 16384
