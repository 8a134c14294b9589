"""Real Redis servers for the test suite: ``redis-server`` processes on free 127.0.0.1 ports.

The Redis live store is tested against the real thing, not a mock: ``RedisServer`` is one
``redis-server`` (no persistence, its own directory and log file) and ``RedisCluster`` is six
of them in cluster mode (3 masters, 3 replicas) made with ``redis-cli --cluster create``, with
helpers to kill a master, bring a node back, reshard and read command statistics.

The session fixtures ``redis_standalone`` and ``redis_cluster`` start them on first use and
kill them at session end; ``tests/conftest.py`` re-exports them. Tests share the servers and
isolate themselves by key prefix (``unique_prefix``), never by FLUSHALL. Every wait is a bounded
poll; a timeout raises with what was last seen and the server's log tail.

Each server is started with ``PR_SET_PDEATHSIG``: if pytest dies without its teardown, the
kernel sends the servers SIGTERM, so none outlives the test run. (The signal follows the
*thread* that started the process, so start servers from the main thread, as fixtures are.)
"""

from __future__ import annotations

import ctypes
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest

__all__ = [
    "CLUSTER_SLOTS",
    "MasterNode",
    "RedisCluster",
    "RedisReplyError",
    "RedisServer",
    "ReplicaNode",
    "new_key_prefix",
    "own_redis_cluster",
    "redis_call",
    "redis_cluster",
    "redis_standalone",
    "unique_prefix",
]

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"
HOST = "127.0.0.1"
CLUSTER_SLOTS = 16384
BUS_PORT_OFFSET = 10000  # Redis Cluster's bus listens on port + 10000
POLL_INTERVAL = 0.05  # seconds between two looks in every bounded wait
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
CLUSTER_TIMEOUT = 30.0
CLI_TIMEOUT = 60.0

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _terminate_with_the_test_run() -> None:
    """Runs in the server's process between fork and exec: when pytest dies, the kernel sends
    the server SIGTERM (as ``tests/e2e/conftest.py`` does for ``headcount serve``)."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def new_key_prefix() -> str:
    """A fresh short key prefix (``t`` + 8 hex digits): tests sharing a server stay apart."""
    return f"t{secrets.token_hex(4)}"


# --- a minimal RESP2 client -------------------------------------------------------------------
# The infrastructure talks to the servers over a raw socket: one short connection per command,
# nothing left open to leak, and replies exactly as Redis sends them (no client-side parsing).


class RedisReplyError(Exception):
    """An error reply (``-ERR ...``) from a server."""


def _encode(args: Sequence[str | int]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_reply(reader: Any) -> Any:
    line: bytes = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed in the middle of a reply")
    kind, body = line[:1], line[1:-2].decode()
    if kind == b"+":
        return body
    if kind == b"-":
        raise RedisReplyError(body)
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        data: bytes = reader.read(size + 2)
        if len(data) != size + 2:
            raise ConnectionError("connection closed in the middle of a reply")
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        count = int(body)
        return None if count < 0 else [_read_reply(reader) for _ in range(count)]
    raise ConnectionError(f"unexpected reply line {line!r}")


def redis_call(port: int, *args: str | int, host: str = HOST, timeout: float = 2.0) -> Any:
    """Send one command to ``host:port`` on a fresh connection and return its reply (strings,
    ints, lists, None); raises ``RedisReplyError`` on an error reply, ``OSError`` when the
    server is not there."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_encode(args))
        with sock.makefile("rb") as reader:
            return _read_reply(reader)


def _fields(text: str) -> dict[str, str]:
    """The ``key:value`` lines of an INFO or CLUSTER INFO reply."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _info(port: int, section: str) -> dict[str, str]:
    return _fields(str(redis_call(port, "INFO", section)))


def _cluster_info(port: int) -> dict[str, str]:
    return _fields(str(redis_call(port, "CLUSTER", "INFO")))


# --- ports ------------------------------------------------------------------------------------


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _free_port(cluster_bus: bool = False, avoid: Sequence[int] = ()) -> int:
    """A port free on 127.0.0.1 right now (and, for a cluster node, its bus port too)."""
    taken = set(avoid) | {p + BUS_PORT_OFFSET for p in avoid}
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port in taken:
            continue
        if not cluster_bus:
            return port
        bus = port + BUS_PORT_OFFSET
        if bus <= 65535 and bus not in taken and _bindable(bus):
            return port
    raise RuntimeError("found no free port (and bus port) on 127.0.0.1 in 200 tries")


def _wait_until(
    condition: Callable[[], str | None], timeout: float, what: str, log: Callable[[], str]
) -> None:
    """Poll ``condition`` (None when satisfied, else what is still wrong) until ``timeout``."""
    deadline = time.monotonic() + timeout
    problem: str | None = "not checked yet"
    while True:
        try:
            problem = condition()
        except (OSError, RedisReplyError) as error:
            problem = f"{type(error).__name__}: {error}"
        if problem is None:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not within {timeout}s; last: {problem}\n{log()}")
        time.sleep(POLL_INTERVAL)


# --- one server -------------------------------------------------------------------------------


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1 with its own directory and log file.

    No persistence (``--save "" --appendonly no``): a restart comes back empty, which is what
    "the live store lost its data" tests need. ``port=None`` picks a free port (with a free
    bus port when ``cluster_bus``, none of ``avoid()``), and picks another at the first start
    if someone else took it before the server could bind it.
    """

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        cluster_bus: bool = False,
        avoid: Callable[[], Sequence[int]] = tuple,
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "redis.log"
        self.extra_args = list(extra_args)
        self._cluster_bus = cluster_bus
        self._avoid = avoid
        self._movable_port = port is None
        self.port = port if port is not None else self._pick_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _pick_port(self) -> int:
        return _free_port(self._cluster_bus, avoid=self._avoid())

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, alive={self.alive})"

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        """The redis-py URL of database 0."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def alive(self) -> bool:
        """Whether the process is running (not whether it answers; see ``wait_ready``)."""
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        return [
            REDIS_SERVER,
            "--bind",
            HOST,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            *self.extra_args,
        ]

    def start(self, timeout: float = START_TIMEOUT) -> RedisServer:
        """Start the server and wait until it answers PING. A port taken meanwhile by someone
        else is replaced by a fresh one (only for a port this object chose)."""
        for _attempt in range(5):
            self._launch()
            try:
                self.wait_ready(timeout)
            except RuntimeError:
                last_run = self.log_path.read_text(errors="replace").rpartition("--- starting")[2]
                if not self._movable_port or "Address already in use" not in last_run:
                    raise
                self.port = self._pick_port()
                continue
            self._movable_port = False  # from now on clients know this port
            return self
        raise RuntimeError(f"redis-server found no free port in 5 tries\n{self.log_tail()}")

    def _launch(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self!r} is already running")
        with self.log_path.open("ab") as log:
            log.write(f"--- starting {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C reaches pytest, whose teardown stops the server.
                start_new_session=True,
                preexec_fn=_terminate_with_the_test_run,
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait (bounded) until the server answers PING; RuntimeError with the log tail if it
        exited, TimeoutError if it stays silent."""

        def answers() -> str | None:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(
                    f"redis-server on port {self.port} exited ({code})\n{self.log_tail()}"
                )
            reply = redis_call(self.port, "PING", timeout=1.0)
            return None if reply == "PONG" else f"PING answered {reply!r}"

        _wait_until(answers, timeout, f"redis-server on port {self.port} ready", self.log_tail)

    def kill(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGKILL (a crash: no goodbye to the cluster) and wait for the process to be gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"redis-server on port {self.port} survived SIGKILL") from error

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (a clean shutdown) and wait, bounded; killed if it does not stop in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired as error:
            self.kill()
            raise RuntimeError(
                f"redis-server on port {self.port} ignored SIGTERM for {timeout}s\n"
                f"{self.log_tail()}"
            ) from error

    def restart(self, timeout: float = START_TIMEOUT) -> RedisServer:
        """Stop if running, then start again on the same port and directory: no data comes
        back (no persistence), a cluster node keeps its identity (``nodes.conf``)."""
        self.stop()
        self._launch()
        self.wait_ready(timeout)
        return self

    def call(self, *args: str | int, timeout: float = 2.0) -> Any:
        """One command on a fresh connection (see ``redis_call``)."""
        return redis_call(self.port, *args, timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- {self.log_path} (last {lines} lines)\n{tail}"


# --- a cluster --------------------------------------------------------------------------------


class MasterNode(NamedTuple):
    """A master as CLUSTER NODES shows it; ``slots`` are inclusive ``(first, last)`` ranges."""

    host: str
    port: int
    node_id: str
    slots: tuple[tuple[int, int], ...]

    @property
    def slot_count(self) -> int:
        return sum(last - first + 1 for first, last in self.slots)

    def owns(self, slot: int) -> bool:
        return any(first <= slot <= last for first, last in self.slots)


class ReplicaNode(NamedTuple):
    """A replica as CLUSTER NODES shows it, with the id of the master it follows."""

    host: str
    port: int
    node_id: str
    master_id: str


class _NodeLine(NamedTuple):
    node_id: str
    host: str
    port: int
    flags: frozenset[str]
    master_id: str  # "-" for a master
    link: str
    slots: tuple[tuple[int, int], ...]
    migrating: bool  # "[slot->-id]" / "[slot-<-id]" entries: a reshard is in flight

    @property
    def failed(self) -> bool:
        return "fail" in self.flags

    @property
    def is_master(self) -> bool:
        return "master" in self.flags


def _parse_cluster_nodes(text: str) -> list[_NodeLine]:
    nodes = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@")[0]
        host, _, port = address.rpartition(":")
        slots: list[tuple[int, int]] = []
        migrating = False
        for entry in fields[8:]:
            if entry.startswith("["):
                migrating = True
                continue
            first, _, last = entry.partition("-")
            slots.append((int(first), int(last or first)))
        nodes.append(
            _NodeLine(
                node_id=fields[0],
                host=host,
                port=int(port or 0),
                flags=frozenset(fields[2].split(",")),
                master_id=fields[3],
                link=fields[7],
                slots=tuple(sorted(slots)),
                migrating=migrating,
            )
        )
    return nodes


def _topology(view: list[_NodeLine]) -> dict[str, tuple[str, object]]:
    """What all nodes must agree on: each healthy node's role, with a master's slots (when it
    has any) or a replica's master."""
    topology: dict[str, tuple[str, object]] = {}
    for line in view:
        if line.failed:
            continue
        if "slave" in line.flags:
            topology[line.node_id] = ("replica", line.master_id)
        elif line.slots:
            topology[line.node_id] = ("master", line.slots)
        else:
            topology[line.node_id] = ("empty master", ())
    return topology


NodeRef = RedisServer | MasterNode | ReplicaNode | int


def _port_of(node: NodeRef) -> int:
    return node if isinstance(node, int) else node.port


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
def redis_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One standalone Redis for the whole session, started on first use. Tests share it and
    keep apart by key prefix; a test that stops or restarts it must leave it running."""
    server = RedisServer(tmp_path_factory.mktemp("redis-standalone"))
    try:
        server.start()
        yield server
    finally:
        server.kill()


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


@pytest.fixture
def unique_prefix() -> str:
    """A fresh key prefix for this test (``t`` + 8 hex digits)."""
    return new_key_prefix()
