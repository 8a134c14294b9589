"""Reading a server-sent event stream off the wire, for the ``stream`` benchmark's subscribers
(:mod:`bench.stream_client`) and its parent (:mod:`bench.stream_run`): an answer's head, a
chunked body, event blocks, and the ``views`` of a ``/counts`` body."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

__all__ = [
    "HEAD_LIMIT",
    "Dechunker",
    "EventReader",
    "SseEvent",
    "parse_head",
    "quick_views",
    "views_of",
]

HEAD_LIMIT = 16_384


@dataclass(frozen=True)
class SseEvent:
    """One event (``data`` set) or one comment (``comment`` True) of a ``text/event-stream``."""

    data: bytes | None = None
    name: bytes = b"message"
    event_id: bytes | None = None
    retry: int | None = None
    comment: bool = False


class Dechunker:
    """``Transfer-Encoding: chunked`` undone incrementally: :meth:`feed` returns the payload."""

    def __init__(self) -> None:
        self.buffer = b""
        self.left = 0  # payload bytes still due in the current chunk
        self.skip = 0  # bytes of the CRLF after a chunk still to skip
        self.done = False  # the last (empty) chunk was read

    def feed(self, data: bytes) -> bytes:
        buffer = self.buffer + data if self.buffer else data
        out: list[bytes] = []
        pos = 0
        while pos < len(buffer) and not self.done:
            if self.left:
                take = min(self.left, len(buffer) - pos)
                out.append(buffer[pos : pos + take])
                pos += take
                self.left -= take
                if not self.left:
                    self.skip = 2
            elif self.skip:
                take = min(self.skip, len(buffer) - pos)
                pos += take
                self.skip -= take
            else:
                end = buffer.find(b"\r\n", pos)
                if end < 0:
                    break
                size = int(buffer[pos:end].split(b";", 1)[0], 16)
                pos = end + 2
                if size == 0:
                    self.done = True
                self.left = size
        self.buffer = buffer[pos:]
        return b"".join(out)


def _parse_block(block: bytes) -> SseEvent | None:
    data: list[bytes] = []
    name, event_id, retry, comment = b"message", None, None, False
    for line in block.split(b"\n"):
        if line.startswith(b":"):
            comment = True
            continue
        key, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if key == b"data":
            data.append(value)
        elif key == b"event":
            name = value
        elif key == b"id":
            event_id = value
        elif key == b"retry" and value.isdigit():
            retry = int(value)
    if data:
        return SseEvent(b"\n".join(data), name, event_id, retry)
    if retry is not None or event_id is not None:
        return SseEvent(None, name, event_id, retry)
    return SseEvent(comment=True) if comment else None


class EventReader:
    """The events of a ``text/event-stream`` body, fed in pieces as they arrive."""

    def __init__(self) -> None:
        self.pending = b""

    def feed(self, data: bytes) -> list[SseEvent]:
        pending = self.pending + data if self.pending else data
        if b"\r" in pending:
            pending = pending.replace(b"\r\n", b"\n")
        events: list[SseEvent] = []
        start = 0
        while (end := pending.find(b"\n\n", start)) >= 0:
            event = _parse_block(pending[start:end])
            if event is not None:
                events.append(event)
            start = end + 2
        self.pending = pending[start:]
        return events


def parse_head(head: bytes) -> tuple[int, dict[str, str]]:
    """Status code and lower-cased headers of an HTTP/1.1 response head (without the blank line)."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {lines[0][:80]!r}")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        key, _, value = line.partition(":")
        headers[key.strip().lower()] = value.strip()
    return int(parts[1]), headers


def views_of(data: bytes) -> int:
    """The ``views`` of a ``/counts`` body (``{"data":[{"views":N,...}]}``)."""
    return int(orjson.loads(data)["data"][0]["views"])


def quick_views(block: bytes) -> int | None:
    """The ``views`` of one whole plain event (``id: N\\ndata: {...}\\n\\n``, the only line
    of data), or None for any other block (which the general parser then reads)."""
    if not block.startswith(b"id: "):
        return None
    start = block.find(b"\ndata: ")
    if start < 0 or block.find(b"\n", start + 1) != len(block) - 2:
        return None
    return views_of(block[start + 7 : -2])
