"""The memory live store's state file: what a restart needs, with the journal, to lose nothing.

Binary, so that saving a million views is memory copies and ``write`` calls (which run without
the GIL in the saving thread), not a million Python objects or one long encode that would hold
the event loop: ``MAGIC``, then per partition every column's raw array bytes followed by its
free rows, then a small JSON header (format version, byte order, save time, the journal
generation that follows this snapshot, the interned strings by code, and per partition its row
count, free-row count and CRC-32) and its u32 length, last (it is known once the columns are
written, one partition at a time). Columns are in the machine's byte order, which the header
records; a file from a machine with the other order is refused (the state is local to one
server). The last-seen list (``prev``/``next``) is not saved: a restore rebuilds it from
``last_seen`` (:meth:`ViewTable.relink`); the rows in use are those not free.

:func:`snapshot_table` runs on the event loop and only copies arrays (C-speed ``memcpy``);
:func:`write_snapshot` runs in a thread. Written to a temporary file in the same directory,
flushed to disk, then renamed over the old one (and the directory synced): a crash mid-save
leaves the previous state, and the journals it names, intact. Version 1 files (JSON, before the
journal) are refused like any unreadable file: logged, and the counts rebuild from heartbeats.
"""

from __future__ import annotations

import os
import struct
import sys
import zlib
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from headcount.stores.view_table import ViewTable

__all__ = [
    "COLUMNS",
    "FORMAT",
    "MAGIC",
    "VERSION",
    "PartitionSnapshot",
    "Snapshot",
    "SnapshotError",
    "read_snapshot",
    "snapshot_table",
    "write_snapshot",
]

FORMAT: Final[str] = "headcount-live-state"
VERSION: Final[int] = 2
MAGIC: Final[bytes] = b"HCLIVE2\n"
_LENGTH: Final = struct.Struct("<I")
# Column name -> array typecode, as in ViewTable (the saved ones).
COLUMNS: Final[dict[str, str]] = {
    "key": "Q",
    "last_seen": "d",
    "env": "I",
    "video": "I",
    "asset": "I",
    "playback": "I",
    "live": "I",
    "viewer": "Q",
    "flags": "B",
    "highest": "I",
    "seen": "Q",
}


class SnapshotError(ValueError):
    """The state file cannot be read back (corrupt, other format, other byte order)."""


@dataclass(frozen=True, slots=True)
class PartitionSnapshot:
    columns: dict[str, array[Any]]
    free: array[int]

    def rows_in_use(self) -> list[int]:
        free = set(self.free)
        return [row for row in range(len(self.columns["key"])) if row not in free]


@dataclass(frozen=True, slots=True)
class Snapshot:
    saved_at: float
    journal: int  # the journal generation that follows this snapshot
    environments: list[str | None]  # by code
    contents: list[str | None]  # by code
    partitions: list[PartitionSnapshot]
    # The history section (headcount.history.memory.history_document), kept as JSON: its own
    # reader checks it, and a bad one costs the history, never the views.
    history: Any = None


def snapshot_table(table: ViewTable) -> PartitionSnapshot:
    """Copies of one partition's columns and free rows (C-speed copies, safe to write later)."""
    return PartitionSnapshot(
        columns={name: getattr(table, name)[:] for name in COLUMNS},
        free=array("I", table.free),
    )


def _blob(p: PartitionSnapshot) -> bytes:
    return b"".join(memoryview(chunk).cast("B") for chunk in (*p.columns.values(), p.free))


def write_snapshot(path: Path, snapshot: Snapshot) -> None:
    # One blob per partition, so the thread spends its time in calls that let go of the GIL
    # (the CRC of a large buffer, the write) and the event loop keeps running meanwhile.
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    crcs = []
    with temporary.open("wb", buffering=0) as f:
        f.write(MAGIC)
        for p in snapshot.partitions:
            blob = _blob(p)
            crcs.append(zlib.crc32(blob))
            f.write(blob)
        header = orjson.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "byteorder": sys.byteorder,
                "saved_at": snapshot.saved_at,
                "journal": snapshot.journal,
                "environments": snapshot.environments,
                "contents": snapshot.contents,
                "history": snapshot.history,
                "partitions": [
                    {"rows": len(p.columns["key"]), "free": len(p.free), "crc": crc}
                    for p, crc in zip(snapshot.partitions, crcs, strict=True)
                ],
            }
        )
        f.write(header + _LENGTH.pack(len(header)))
        os.fsync(f.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power loss
    finally:
        os.close(directory)


def read_snapshot(path: Path) -> Snapshot | None:
    """The saved state, or None when there is no file yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    if not raw.startswith(MAGIC) or len(raw) < len(MAGIC) + _LENGTH.size:
        raise SnapshotError("not a headcount live-state file of this version")
    (length,) = _LENGTH.unpack_from(raw, len(raw) - _LENGTH.size)
    end = len(raw) - _LENGTH.size - length  # where the columns end and the header starts
    if end < len(MAGIC):
        raise SnapshotError("cut short: no header at its end")
    try:
        document = orjson.loads(raw[end : len(raw) - _LENGTH.size])
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"cut short or damaged: unreadable header ({exc})") from None
    offset = len(MAGIC)
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError("not a headcount live-state file")
    if document.get("version") != VERSION:
        raise SnapshotError(f"unsupported version {document.get('version')!r}")
    if document.get("byteorder") != sys.byteorder:
        raise SnapshotError("saved on a machine with another byte order")
    data = memoryview(raw)
    partitions = []
    try:
        for entry in document["partitions"]:
            rows, free, crc = int(entry["rows"]), int(entry["free"]), int(entry["crc"])
            columns: dict[str, array[Any]] = {}
            check = 0
            for name, code in [*COLUMNS.items(), ("free", "I")]:
                column = array(code)
                size = (free if name == "free" else rows) * column.itemsize
                if offset + size > end:
                    raise SnapshotError("the columns end before their header says")
                column.frombytes(data[offset : offset + size])
                check = zlib.crc32(data[offset : offset + size], check)
                offset += size
                columns[name] = column
            if check != crc:
                raise SnapshotError("a partition's checksum does not match")
            partitions.append(PartitionSnapshot(columns, columns.pop("free")))
        snapshot = Snapshot(
            saved_at=float(document["saved_at"]),
            journal=int(document["journal"]),
            environments=list(document["environments"]),
            contents=list(document["contents"]),
            partitions=partitions,
            history=document.get("history"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, SnapshotError):
            raise
        raise SnapshotError(f"malformed: {exc!r}") from None
    for p in snapshot.partitions:
        if max(p.free, default=-1) >= len(p.columns["key"]):
            raise SnapshotError("a free row points outside its columns")
        if max(p.columns["env"], default=0) >= len(snapshot.environments) or max(
            (max(p.columns[name], default=0) for name in ("video", "asset", "playback", "live")),
            default=0,
        ) >= len(snapshot.contents):
            raise SnapshotError("a code points outside its table")
    return snapshot
