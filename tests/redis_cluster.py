"""A real Redis Cluster for the test suite: ``RedisCluster`` is six ``RedisServer`` nodes in
cluster mode (3 masters, 3 replicas) made with ``redis-cli --cluster create``, with helpers to
kill a master, bring a node back, reshard and read command statistics.

The session fixture ``redis_cluster`` starts one on first use and kills it at session end
(``tests/conftest.py`` re-exports it); ``own_redis_cluster`` is one for a test alone, for tests
that kill masters or move slots. Every wait is a bounded poll; a timeout raises with what was
last seen and the nodes' log tails.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redis_servers import HOST, RedisServer, _fields, _info, _wait_until, redis_call
from tests.redis_topology import (
    CLUSTER_SLOTS,
    MasterNode,
    NodeRef,
    ReplicaNode,
    _NodeLine,
    _parse_cluster_nodes,
    _port_of,
    _topology,
)

__all__ = [
    "CLUSTER_SLOTS",
    "MasterNode",
    "RedisCluster",
    "ReplicaNode",
    "own_redis_cluster",
    "redis_cluster",
]

REDIS_CLI = "/usr/bin/redis-cli"
CLUSTER_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0


def _cluster_info(port: int) -> dict[str, str]:
    return _fields(str(redis_call(port, "CLUSTER", "INFO")))


class RedisCluster:
    """Six ``redis-server`` nodes in cluster mode: 3 masters, each with one replica.

    ``start()`` creates the cluster with ``redis-cli --cluster create`` and returns once every
    node agrees on the slot map, ``cluster_state`` is ``ok`` everywhere and every replica is in
    sync. The helpers change the topology the way production does (a master crashes, a node
    comes back, slots move) and each waits, bounded, until the cluster has settled again.
    """

    NODE_ARGS = (
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        "nodes.conf",
        "--cluster-node-timeout",
        "2000",
        # A master waits 5 s by default before a diskless full sync, for more replicas to
        # join it; here each master has one, so sync at once (creation and rejoins ~5 s faster).
        "--repl-diskless-sync-delay",
        "0",
    )

    def __init__(self, directory: Path, masters: int = 3, replicas_per_master: int = 1) -> None:
        self.directory = directory
        self.replicas_per_master = replicas_per_master
        self.nodes: list[RedisServer] = []
        for index in range(masters * (1 + replicas_per_master)):
            node = RedisServer(
                directory / f"node{index}",
                extra_args=self.NODE_ARGS,
                cluster_bus=True,
                avoid=lambda: [other.port for other in self.nodes],
            )
            self.nodes.append(node)
        self._node_ids: dict[int, str] = {}
        self._seed: RedisServer = self.nodes[0]

    def __repr__(self) -> str:
        return f"RedisCluster(ports={[n.port for n in self.nodes]})"

    # -- life cycle

    def start(self, timeout: float = CLUSTER_TIMEOUT) -> RedisCluster:
        """Start the nodes, create the cluster and wait until it is fully healthy."""
        for node in self.nodes:
            node.start()
        self._cli(
            "--cluster",
            "create",
            *(f"{HOST}:{node.port}" for node in self.nodes),
            "--cluster-replicas",
            str(self.replicas_per_master),
            "--cluster-yes",
        )
        self._node_ids = {node.port: str(node.call("CLUSTER", "MYID")) for node in self.nodes}
        self.wait_healthy(timeout)
        self._seed = self._server_for(self.masters()[0].port)
        return self

    def kill_all(self) -> None:
        """SIGKILL every node (session teardown)."""
        errors = []
        for node in self.nodes:
            try:
                node.kill()
            except RuntimeError as error:
                errors.append(str(error))
        if errors:
            raise RuntimeError("\n".join(errors))

    # -- where clients connect

    @property
    def seed_host(self) -> str:
        return HOST

    @property
    def seed_port(self) -> int:
        """The port of a live master: the first master after ``start()``, another live master
        once that one was killed (a client made afterwards must reach the cluster)."""
        if not self._seed.alive or self._seed.port not in {m.port for m in self.masters()}:
            self._seed = self._server_for(self.masters()[0].port)
        return self._seed.port

    @property
    def seed_url(self) -> str:
        """Headcount's own scheme for a cluster: ``redis+cluster://host:port``."""
        return f"redis+cluster://{self.seed_host}:{self.seed_port}"

    # -- topology

    def node_id(self, node: NodeRef) -> str:
        """The cluster id of a node (kept across restarts in its ``nodes.conf``)."""
        return self._node_ids[_port_of(node)]

    def live_nodes(self) -> list[RedisServer]:
        return [node for node in self.nodes if node.alive]

    def _view(self, node: RedisServer | None = None) -> list[_NodeLine]:
        """CLUSTER NODES as one live node (by default the first that answers) sees it."""
        candidates = [node] if node is not None else self.live_nodes()
        last_error: Exception | None = None
        for candidate in candidates:
            try:
                return _parse_cluster_nodes(str(candidate.call("CLUSTER", "NODES")))
            except OSError as error:
                last_error = error
        raise RuntimeError(f"no cluster node answers CLUSTER NODES: {last_error}")

    def masters(self) -> list[MasterNode]:
        """Masters not marked failed, ordered by their first slot (``masters()[0]`` holds
        slot 0 unless slots moved)."""
        found = [
            MasterNode(line.host, line.port, line.node_id, line.slots)
            for line in self._view()
            if line.is_master and not line.failed
        ]
        return sorted(found, key=lambda m: (m.slots[0][0] if m.slots else CLUSTER_SLOTS, m.port))

    def replicas(self) -> list[ReplicaNode]:
        """Replicas not marked failed, in port order."""
        found = [
            ReplicaNode(line.host, line.port, line.node_id, line.master_id)
            for line in self._view()
            if "slave" in line.flags and not line.failed
        ]
        return sorted(found, key=lambda r: r.port)

    def replicas_of(self, master: MasterNode | str) -> list[ReplicaNode]:
        master_id = master if isinstance(master, str) else master.node_id
        return [replica for replica in self.replicas() if replica.master_id == master_id]

    def master_for_slot(self, slot: int) -> MasterNode:
        for master in self.masters():
            if master.owns(slot):
                return master
        raise LookupError(f"no live master owns slot {slot}")

    def keyslot(self, key: str) -> int:
        """The slot of ``key`` as the cluster computes it (CLUSTER KEYSLOT)."""
        return int(self._server_for(self.seed_port).call("CLUSTER", "KEYSLOT", key))

    def server(self, node: NodeRef) -> RedisServer:
        """The ``RedisServer`` behind a node (by port)."""
        return self._server_for(_port_of(node))

    def _server_for(self, port: int) -> RedisServer:
        for node in self.nodes:
            if node.port == port:
                return node
        raise LookupError(f"no node of this cluster listens on {port}")

    # -- health

    def problems(self, require_replicas: bool = True) -> str | None:
        """What keeps the cluster from being settled, or None. Settled: every live node says
        ``cluster_state:ok`` with all slots assigned; all live nodes agree on every node's role,
        on who owns which slot and on which master each replica follows; no slot is migrating;
        every dead node is marked failed by every live node; every live replica's link to its
        master is up and synced; and (``require_replicas``) every master has online replicas."""
        live = self.live_nodes()
        if not live:
            return "no node is running"
        dead_ids = {self._node_ids[n.port] for n in self.nodes if not n.alive and self._node_ids}
        reference: dict[str, tuple[str, object]] | None = None
        for node in live:
            info = _cluster_info(node.port)
            if info.get("cluster_state") != "ok":
                return f"{node.port}: cluster_state {info.get('cluster_state')}"
            if info.get("cluster_slots_assigned") != str(CLUSTER_SLOTS):
                return f"{node.port}: {info.get('cluster_slots_assigned')} slots assigned"
            view = self._view(node)
            if any(line.migrating for line in view):
                return f"{node.port}: a slot is migrating or importing"
            by_id = {line.node_id: line for line in view}
            for dead in dead_ids:
                if dead in by_id and not by_id[dead].failed:
                    return f"{node.port}: dead node {dead[:8]} not marked failed yet"
            for other in live:
                line = by_id.get(self._node_ids.get(other.port, ""))
                if self._node_ids and (line is None or line.failed or "fail?" in line.flags):
                    return f"{node.port}: does not see live node {other.port} as healthy"
            topology = _topology(view)
            if reference is None:
                reference = topology
            elif topology != reference:
                return f"{node.port}: disagrees about the topology (roles, masters, slots)"
            replication = _info(node.port, "replication")
            if replication.get("role") == "slave":
                if replication.get("master_link_status") != "up":
                    return f"replica {node.port}: master link {replication['master_link_status']}"
                if replication.get("master_sync_in_progress") != "0":
                    return f"replica {node.port}: still syncing"
            elif require_replicas and node.port in self._master_ports(view):
                online = [
                    value
                    for key, value in replication.items()
                    if key.startswith("slave") and key[5:].isdigit() and "state=online" in value
                ]
                if len(online) < self.replicas_per_master:
                    return f"master {node.port}: {len(online)} online replica(s)"
        if require_replicas and reference is not None:
            followed = [role[1] for role in reference.values() if role[0] == "replica"]
            for node_id, (role, _slots) in reference.items():
                if role == "master" and followed.count(node_id) < self.replicas_per_master:
                    return f"the nodes do not see a replica of master {node_id[:8]} yet"
        return None

    @staticmethod
    def _master_ports(view: list[_NodeLine]) -> set[int]:
        return {line.port for line in view if line.is_master and line.slots and not line.failed}

    def wait_healthy(self, timeout: float = CLUSTER_TIMEOUT, require_replicas: bool = True) -> None:
        """Wait (bounded) until ``problems()`` finds none; TimeoutError with the last one."""
        _wait_until(
            lambda: self.problems(require_replicas),
            timeout,
            "cluster settled",
            self._log_tails,
        )

    def _log_tails(self) -> str:
        return "\n".join(node.log_tail(15) for node in self.nodes)

    # -- topology changes

    def kill_master(self, index: int, timeout: float = CLUSTER_TIMEOUT) -> RedisServer:
        """SIGKILL ``masters()[index]`` and wait until one of its replicas took over its slots
        and the cluster is ``ok`` again; the killed server (for ``restart_node``)."""
        master = self.masters()[index]
        replica_ids = {replica.node_id for replica in self.replicas_of(master)}
        if not replica_ids:
            raise RuntimeError(f"master {master.port} has no replica to take over")
        victim = self._server_for(master.port)
        victim.kill()
        first_slot = master.slots[0][0]

        def promoted() -> str | None:
            try:
                owner = self.master_for_slot(first_slot)
            except LookupError as error:
                return str(error)
            if owner.node_id not in replica_ids:
                return f"slot {first_slot} still owned by {owner.port}"
            return self.problems(require_replicas=False)

        _wait_until(promoted, timeout, f"failover of master {master.port}", self._log_tails)
        return victim

    def restart_node(self, node: NodeRef, timeout: float = CLUSTER_TIMEOUT) -> RedisServer:
        """Start a stopped or killed node again (same port, directory and cluster id; no data)
        and wait until the cluster is fully healthy: a former master rejoins as a replica of
        the node that took over its slots."""
        server = self.server(node)
        server.restart()
        self.wait_healthy(timeout, require_replicas=self._all_alive())
        return server

    def heal(self, timeout: float = CLUSTER_TIMEOUT) -> None:
        """Restart every dead node and wait until fully healthy (a test that kills nodes calls
        this in its teardown, so the next test gets six nodes again)."""
        for node in self.nodes:
            if not node.alive:
                node.restart()
        self.wait_healthy(timeout)

    def reshard(
        self, slots: int, from_node_id: str, to_node_id: str, timeout: float = CLI_TIMEOUT
    ) -> None:
        """Move ``slots`` slots (with their keys) with ``redis-cli --cluster reshard``, the way
        an operator does, then wait until every node agrees on the new map. Safe to run while
        clients send traffic (they follow ASK/MOVED redirections)."""
        self._cli(
            "--cluster",
            "reshard",
            f"{HOST}:{self.seed_port}",
            "--cluster-from",
            from_node_id,
            "--cluster-to",
            to_node_id,
            "--cluster-slots",
            str(slots),
            "--cluster-yes",
            timeout=timeout,
        )
        self.wait_healthy(timeout, require_replicas=self._all_alive())

    def _all_alive(self) -> bool:
        return all(node.alive for node in self.nodes)

    def _cli(self, *args: str, timeout: float = CLI_TIMEOUT) -> str:
        """Run ``redis-cli`` to completion (bounded); its output, or RuntimeError with it."""
        try:
            result = subprocess.run(
                [REDIS_CLI, *args],
                capture_output=True,
                text=True,
                stdin=subprocess.DEVNULL,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(
                f"redis-cli {' '.join(args)} did not finish in {timeout}s\n"
                f"{error.stdout!r}\n{self._log_tails()}"
            ) from error
        output = result.stdout + result.stderr
        if result.returncode != 0 or "[ERR]" in output:
            raise RuntimeError(
                f"redis-cli {' '.join(args)} exited {result.returncode}\n{output}\n"
                f"{self._log_tails()}"
            )
        return output

    # -- data and statistics

    def flushall(self) -> None:
        """FLUSHALL on every live master (replicas follow)."""
        for master in self.masters():
            redis_call(master.port, "FLUSHALL")

    def commandstats(self, node: NodeRef) -> dict[str, int]:
        """``calls`` per command from INFO commandstats (``get``, ``cluster|nodes``, ...).
        The infrastructure's own polling (PING, INFO, CLUSTER ...) counts too."""
        stats: dict[str, int] = {}
        for key, value in _info(_port_of(node), "commandstats").items():
            if not key.startswith("cmdstat_"):
                continue
            fields = dict(part.split("=", 1) for part in value.split(","))
            stats[key.removeprefix("cmdstat_")] = int(fields["calls"])
        return stats

    def reset_stats(self) -> None:
        """CONFIG RESETSTAT on every live node: command statistics start from zero."""
        for node in self.live_nodes():
            node.call("CONFIG", "RESETSTAT")


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """One 6-node Redis Cluster for the whole session, started on first use. A test that
    kills nodes or moves slots calls ``heal()`` (or ``restart_node``) before it ends."""
    cluster = RedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.kill_all()


@pytest.fixture
def own_redis_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A 6-node cluster for this test alone: for tests that kill masters or move slots, so a
    failover that does not heal cleanly cannot break the session cluster other tests share."""
    cluster = RedisCluster(tmp_path / "own-redis-cluster")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.kill_all()
