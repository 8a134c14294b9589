"""A Redis Cluster's topology as ``CLUSTER NODES`` shows it, for ``tests/redis_cluster.py``:
masters with their slot ranges, replicas with the master they follow, the parsed lines, and
what every node must agree on.
"""

from __future__ import annotations

from typing import NamedTuple

from tests.redis_servers import RedisServer

__all__ = ["CLUSTER_SLOTS", "MasterNode", "NodeRef", "ReplicaNode"]

CLUSTER_SLOTS = 16384


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
