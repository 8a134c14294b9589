"""The memory live store's state file: what a restart needs to lose nothing.

One JSON document (orjson): the interned strings (environment ids, content ids) by code, and
per partition the view keys, their rows and every column as base64 of the raw array bytes, so
saving a million views is a few memory copies and one write, not a million Python objects.
Columns are in the machine's byte order, which the file records; a file from a machine with the
other order is refused (the state is local to one server). The table's ``key`` column and its
last-seen list (``prev``/``next``) are not saved: the index holds the keys, and a restore
rebuilds the list from ``last_seen`` (:meth:`ViewTable.relink`).

Written to a temporary file in the same directory, flushed to disk, then renamed over the old
one: a crash mid-save leaves the previous state intact.
"""

from __future__ import annotations

import base64
import os
import sys
from array import array
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson

from headcount.stores.view_table import ViewTable

__all__ = [
    "COLUMNS",
    "FORMAT",
    "VERSION",
    "PartitionSnapshot",
    "Snapshot",
    "SnapshotError",
    "read_snapshot",
    "snapshot_table",
    "write_snapshot",
]

FORMAT: Final[str] = "headcount-live-state"
VERSION: Final[int] = 1
# Column name -> array typecode, as in ViewTable (the saved ones).
COLUMNS: Final[dict[str, str]] = {
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
    keys: array[int]
    rows: array[int]
    columns: dict[str, array[Any]]


@dataclass(frozen=True, slots=True)
class Snapshot:
    saved_at: float
    environments: list[str | None]  # by code
    contents: list[str | None]  # by code
    partitions: list[PartitionSnapshot]
    # The history section (headcount.history.memory.history_document), kept as JSON: its own
    # reader checks it, and a bad one costs the history, never the views.
    history: Any = None


def snapshot_table(table: ViewTable) -> PartitionSnapshot:
    """Copies of one partition's index and columns (C-speed copies, safe to write later)."""
    return PartitionSnapshot(
        keys=array("Q", table.index.keys()),
        rows=array("I", table.index.values()),
        columns={name: getattr(table, name)[:] for name in COLUMNS},
    )


def _b64(data: array[Any]) -> str:
    return base64.b64encode(data.tobytes()).decode("ascii")


def _unb64(text: Any, typecode: str) -> array[Any]:
    if not isinstance(text, str):
        raise SnapshotError("a column is not a base64 string")
    column = array(typecode)
    column.frombytes(base64.b64decode(text, validate=True))
    return column


def write_snapshot(path: Path, snapshot: Snapshot) -> None:
    document = {
        "format": FORMAT,
        "version": VERSION,
        "byteorder": sys.byteorder,
        "saved_at": snapshot.saved_at,
        "environments": snapshot.environments,
        "contents": snapshot.contents,
        "partitions": [
            {
                "keys": _b64(p.keys),
                "rows": _b64(p.rows),
                **{name: _b64(column) for name, column in p.columns.items()},
            }
            for p in snapshot.partitions
        ],
        "history": snapshot.history,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as f:
        f.write(orjson.dumps(document))
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def read_snapshot(path: Path) -> Snapshot | None:
    """The saved state, or None when there is no file yet."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        document = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SnapshotError(f"not JSON: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise SnapshotError("not a headcount live-state file")
    if document.get("version") != VERSION:
        raise SnapshotError(f"unsupported version {document.get('version')!r}")
    if document.get("byteorder") != sys.byteorder:
        raise SnapshotError("saved on a machine with another byte order")
    try:
        partitions = [
            PartitionSnapshot(
                keys=_unb64(p["keys"], "Q"),
                rows=_unb64(p["rows"], "I"),
                columns={name: _unb64(p[name], code) for name, code in COLUMNS.items()},
            )
            for p in document["partitions"]
        ]
        snapshot = Snapshot(
            saved_at=float(document["saved_at"]),
            environments=list(document["environments"]),
            contents=list(document["contents"]),
            partitions=partitions,
            history=document.get("history"),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"malformed: {exc!r}") from None
    for p in snapshot.partitions:
        allocated = len(p.columns["last_seen"])
        if len(p.keys) != len(p.rows) or any(len(c) != allocated for c in p.columns.values()):
            raise SnapshotError("columns of different lengths")
        if max(p.rows, default=-1) >= allocated:
            raise SnapshotError("a row points outside its columns")
        if max(p.columns["env"], default=0) >= len(snapshot.environments) or max(
            (max(p.columns[name], default=0) for name in ("video", "asset", "playback", "live")),
            default=0,
        ) >= len(snapshot.contents):
            raise SnapshotError("a code points outside its table")
    return snapshot
