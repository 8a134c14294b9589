"""The memory live store's journal: every change that matters since the last snapshot.

A snapshot (:mod:`headcount.stores.memory_snapshot`) is written every ``save_interval``
seconds; what happened since would be lost by a crash. So each change of a view that the
heartbeats cannot bring back — a view first seen, a start, a pause, a resume, an end, new
content ids or a new viewer identity — is appended here as the view's whole row *after* the
change (a result of :func:`headcount.core.tracker.step`, not its input): replay puts the row
back as it was, with no rule restated. Heartbeats that change nothing but the last-seen time
and the dedupe memory are not journaled (that is most traffic); a restarted server keeps the
last-seen time of the latest record or snapshot, whichever is later. Expiry is not journaled
either: a start applies the same liveness window to those times, which are never later than
the true ones, so a view the sweeper removed stays removed.

**Files.** ``<state file>.journal-<generation>`` (six digits). A snapshot names the generation
that follows it; a save starts the next generation before it copies the state (a partition at
a time), so every change is in the snapshot or in a journal it names (or both: replaying a row
is idempotent), and the older journals are deleted once the snapshot is on disk. A start
replays, in order, every generation from the snapshot's on.

**Records.** ``length u32 | crc32 u32 | payload``; the payload is the view's key, last-seen
time, flags, viewer hash, dedupe memory and its five strings (environment id, the four content
ids; each a u32 length + 1, 0 for none, then UTF-8). A record cut short by a crash (a torn
write) or damaged fails its length or CRC check: it and anything after it in that file are
ignored, never a failed start.

**Durability.** Records are written to the operating system (``write``) before the collector
answers the POST that made them, so a killed process (SIGKILL, OOM) loses nothing it
acknowledged; they are forced to disk (``fdatasync``, in a thread) every
``journal_fsync_interval`` seconds, so a power loss or kernel crash loses at most that much —
Redis' ``appendfsync everysec``. A failed write (disk full) is logged; the journal then stops
until the next snapshot starts a fresh one (the snapshot still saves everything).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import struct
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from headcount.core.tracker import ViewState

__all__ = [
    "Journal",
    "JournalRecord",
    "decode_records",
    "delete_journals",
    "encode_record",
    "journal_generations",
    "journal_path",
    "read_journal",
    "retire",
]

log = logging.getLogger("headcount.live")

_FRAME: Final = struct.Struct("<II")  # payload length, crc32 of the payload
_ROW: Final = struct.Struct("<QdBQIQ")  # key, last_seen, flags, viewer, highest, seen
_TEXT: Final = struct.Struct("<I")
_MAX_RECORD: Final[int] = 1 << 24  # far above any real row: a longer length is damage


@dataclass(frozen=True, slots=True)
class JournalRecord:
    key: int
    last_seen: float
    environment_id: str
    state: ViewState
    highest: int
    seen: int


def _text(value: str | None) -> bytes:
    if value is None:
        return _TEXT.pack(0)
    data = value.encode("utf-8", "surrogatepass")
    return _TEXT.pack(len(data) + 1) + data


def encode_record(record: JournalRecord) -> bytes:
    state = record.state
    payload = b"".join(
        (
            _ROW.pack(
                record.key,
                record.last_seen,
                state.flags,
                state.viewer,
                record.highest,
                record.seen,
            ),
            _text(record.environment_id),
            _text(state.video_id),
            _text(state.asset_id),
            _text(state.playback_id),
            _text(state.live_stream_id),
        )
    )
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _decode_payload(payload: bytes) -> JournalRecord:
    key, last_seen, flags, viewer, highest, seen = _ROW.unpack_from(payload)
    offset = _ROW.size
    texts: list[str | None] = []
    for _ in range(5):
        (length,) = _TEXT.unpack_from(payload, offset)
        offset += _TEXT.size
        if length == 0:
            texts.append(None)
            continue
        end = offset + length - 1
        if end > len(payload):
            raise ValueError("a string runs past its record")
        texts.append(payload[offset:end].decode("utf-8", "surrogatepass"))
        offset = end
    environment_id, video, asset, playback, live = texts
    if offset != len(payload) or environment_id is None:
        raise ValueError("a malformed record")
    state = ViewState(flags, video, asset, playback, live, viewer)
    return JournalRecord(key, last_seen, environment_id, state, highest, seen)


def decode_records(data: bytes) -> tuple[list[JournalRecord], int]:
    """The records of one journal file's bytes, and how many bytes at its end were ignored
    (a torn or damaged record and whatever follows it)."""
    records: list[JournalRecord] = []
    offset = 0
    view = memoryview(data)
    while offset < len(data):
        if len(data) - offset < _FRAME.size:
            break
        length, crc = _FRAME.unpack_from(data, offset)
        start = offset + _FRAME.size
        payload = bytes(view[start : start + length])
        if length > _MAX_RECORD or len(payload) != length or zlib.crc32(payload) != crc:
            break
        try:
            records.append(_decode_payload(payload))
        except (ValueError, struct.error, UnicodeDecodeError):
            break
        offset = start + length
    return records, len(data) - offset


def journal_path(state_file: Path, generation: int) -> Path:
    return state_file.with_name(f"{state_file.name}.journal-{generation:06d}")


def journal_generations(state_file: Path) -> list[int]:
    """The generations of the journals beside ``state_file``, oldest first."""
    pattern = re.compile(re.escape(state_file.name) + r"\.journal-(\d{6,})")
    try:
        names = os.listdir(state_file.parent)
    except FileNotFoundError:
        return []
    return sorted(int(m.group(1)) for name in names if (m := pattern.fullmatch(name)))


def read_journal(state_file: Path, generation: int) -> list[JournalRecord]:
    """One generation's records in replay order; a torn tail is logged and left out."""
    path = journal_path(state_file, generation)
    records, ignored = decode_records(path.read_bytes())
    if ignored:
        log.warning(
            "journal %s: the last %d bytes were cut short or damaged and are ignored", path, ignored
        )
    return records


def delete_journals(state_file: Path, generations: Iterable[int]) -> None:
    for generation in generations:
        with contextlib.suppress(FileNotFoundError):
            journal_path(state_file, generation).unlink()


class Journal:
    """The journal being written: records are buffered by :meth:`append` and written by
    :meth:`write` (the store calls it before an ingest returns); :meth:`sync` forces them to
    disk; :meth:`rotate` starts the next generation."""

    def __init__(self, state_file: Path, generation: int) -> None:
        self.state_file = state_file
        self.generation = generation
        self.pending: list[bytes] = []
        self.broken = False
        self.records_written = 0
        self._lock = asyncio.Lock()
        self._fd = self._open(generation)

    def _open(self, generation: int) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND | getattr(os, "O_CLOEXEC", 0)
        return os.open(journal_path(self.state_file, generation), flags, 0o600)

    def append(self, record: bytes) -> None:
        if not self.broken:
            self.pending.append(record)

    def write(self) -> None:
        """Hand the pending records to the operating system (one ``write``, usually)."""
        data = b"".join(self.pending)
        count = len(self.pending)
        self.pending.clear()
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            log.error(
                "journal %s not written (%s): changes are saved by the next snapshot only",
                journal_path(self.state_file, self.generation),
                exc,
            )
            self.broken = True
            return
        self.records_written += count

    async def sync(self) -> None:
        async with self._lock:
            if self.pending:
                self.write()
            try:
                await asyncio.to_thread(os.fdatasync, self._fd)
            except OSError as exc:
                log.error("journal not synced to disk: %s", exc)

    async def rotate(self) -> tuple[int, int]:
        """Start the next generation: every later change goes there. Returns the previous
        generation's file descriptor (sync it and close it once a snapshot holds everything
        before: :func:`retire`) and the new generation."""
        async with self._lock:
            if self.pending:
                self.write()
            old = self._fd
            self.generation += 1
            self._fd = self._open(self.generation)
            self.broken = False
            return old, self.generation

    async def close(self) -> None:
        async with self._lock:
            if self.pending:
                self.write()
            os.close(self._fd)
            self._fd = -1


def retire(state_file: Path, fd: int | None, keep_from: int) -> None:
    """After a snapshot naming ``keep_from`` is on disk (in a thread): close the previous
    journal's descriptor and delete every journal older than ``keep_from``."""
    if fd is not None:
        os.close(fd)
    delete_journals(state_file, [g for g in journal_generations(state_file) if g < keep_from])
