"""``GET /counts/stream?token=<JWT>``: the counts of ``/counts``, pushed as Server-Sent Events.

The same token rules, errors and CORS as ``/counts`` (:class:`~headcount.http.counts.
CountsEndpoint` verifies, and formats every event's data: exactly the ``/counts`` body). A
refused token gets ``/counts``' status and envelope, not a stream, so a browser's
``EventSource`` fails the connection and does not retry.

The wire is :mod:`headcount.http.stream_wire` (and docs/stream.md): ``retry``, then the first
event at once, then one event per change of the counts, coalesced to at most one per
:data:`MIN_SPACING` ticks per counter; an ``error`` event and the end when a token stops
granting; keep-alive comments. A client that stops reading is cut off once
:data:`MAX_UNSENT` bytes wait for it.

**Cost follows what changed.** One job, every :data:`TICK` seconds, reads each counter that
has subscribers once (the node's read, not one per subscriber; a network store caches it per
node as for ``/counts``), and formats each event once for all of that counter's subscribers.
Streams are held by the hot-path protocol without a task (:mod:`headcount.http.protocol`), or
by the ASGI way (:meth:`~headcount.http.app.HeadcountApp.__call__`) with one.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from headcount.auth.token_cache import VerifiedToken
from headcount.errors import TokenRefused
from headcount.http.counts import CountsEndpoint, tokens_from_query
from headcount.http.stream_wire import KEEPALIVE, RETRY, counts_frame, error_frame
from headcount.runtime import Runtime
from headcount.stores.live import Counts

__all__ = [
    "MAX_TOKENS",
    "MAX_UNSENT",
    "MIN_SPACING",
    "TICK",
    "Opened",
    "Sink",
    "StreamHub",
]

log = logging.getLogger("headcount.http")

TICK: Final = 0.25  # s between two looks at the counters that have subscribers
MIN_SPACING: Final = 4  # ticks (1 s) at least between two events of one counter
MAX_TOKENS: Final = 32
MAX_UNSENT: Final = 64 * 1024  # bytes written but not yet taken by the client
RECHECK: Final = 5.0  # s until a token that could not be checked is checked again
_CHECKS_PER_TURN: Final = 500
_HEAP_SLACK: Final = 1024


CounterKey = tuple[str, str, str]  # (environment id, id type, id)


class Sink(Protocol):
    """Where a stream's bytes go: the connection's transport (hot path) or an ASGI queue."""

    def write(self, data: bytes) -> None: ...

    def get_write_buffer_size(self) -> int: ...

    def close(self) -> None: ...


@dataclass(eq=False, slots=True)
class _Slot:
    """One token of one stream."""

    stream: Stream
    index: int  # position in the query; -1 when the stream has one token
    token: str
    verified: VerifiedToken
    counter: _Counter | None = None
    sent: Counts | None = None  # what this slot's last event said, when not the counter's


@dataclass(eq=False, slots=True)
class Stream:
    """One open ``/counts/stream`` connection."""

    sink: Sink
    slots: list[_Slot] = field(default_factory=list)
    closed: bool = False


@dataclass(eq=False, slots=True)
class _Counter:
    key: CounterKey
    slots: set[_Slot] = field(default_factory=set)  # in step: last got ``shown``
    behind: set[_Slot] = field(default_factory=set)  # got something else first
    shown: Counts | None = None
    shown_tick: int = -MIN_SPACING


@dataclass(frozen=True, slots=True)
class Opened:
    """A stream ready to attach: the bytes its body starts with, and the stream itself."""

    first: bytes
    stream: Stream
    counts: tuple[Counts, ...]


class StreamHub:
    """Every open stream of this process, by counter and by signing key."""

    def __init__(self, runtime: Runtime, counts: CountsEndpoint) -> None:
        self.counts = counts
        self._live = runtime.live
        self._immediate = runtime.live.immediate()  # decided once, as for /counts
        self._counters: dict[CounterKey, _Counter] = {}
        self._by_key: dict[str, set[_Slot]] = {}
        self._expiries: list[tuple[float, int, _Slot]] = []
        self._sequence = itertools.count()
        self._streams: set[Stream] = set()
        self._tick = 0
        self._held = 0  # slots attached and not dropped: what the expiry heap should hold
        self._keepalive_ticks = max(1, round(runtime.settings.stream_keepalive / TICK))
        self._rechecks: set[asyncio.Task[None]] = set()
        # One copy of each token, however many streams carry it: token -> [the copy, streams].
        self._tokens: dict[str, list[Any]] = {}
        metrics = runtime.metrics
        self._opened = metrics.counter(
            "headcount_streams_opened_total", "Counts streams opened (GET /counts/stream)."
        )
        self._events = metrics.counter(
            "headcount_stream_events_total", "Counts events written to streams."
        )
        self._cut = metrics.counter(
            "headcount_streams_cut_total", "Streams closed because the client stopped reading."
        )
        counts.verifier.on_forget.append(self.key_deleted)
        runtime.every("counts-stream", TICK, self.tick)
        runtime.on_stop.append(self._close_all)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    @property
    def watched_expiries(self) -> int:
        """Entries of the expiry heap (live slots, and dead ones not yet rebuilt away)."""
        return len(self._expiries)

    # -- opening and closing -----------------------------------------------------------------

    async def open(self, query_string: bytes, now: float) -> Opened:
        """Verify the tokens and read their counts; raises what ``/counts`` would for the first
        refused token when none is accepted. Attach the result with :meth:`attach` once its
        head and ``first`` are written (nothing is pushed to it before)."""
        tokens = tokens_from_query(query_string, MAX_TOKENS)
        several = len(tokens) > 1
        stream = Stream(_NO_SINK)
        refused: list[tuple[int, TokenRefused]] = []
        for index, token in enumerate(tokens):
            try:
                verified = await self.counts.verified(token, now)
            except TokenRefused as exc:
                if not several:
                    raise
                refused.append((index, exc))
                continue
            stream.slots.append(_Slot(stream, index if several else -1, token, verified))
        if not stream.slots:
            raise refused[0][1]
        counts = await self._read([_key_of(slot.verified) for slot in stream.slots], now)
        parts = [RETRY]
        parts += [error_frame(index, exc) for index, exc in refused]
        stamp = int(now * 1000)
        parts += [
            self._frame(slot.index, c, stamp) for slot, c in zip(stream.slots, counts, strict=True)
        ]
        return Opened(b"".join(parts), stream, tuple(counts))

    def attach(self, opened: Opened, sink: Sink, now: float) -> None:
        stream = opened.stream
        stream.sink = sink
        self._streams.add(stream)
        self._opened.value += 1
        for slot, counts in zip(stream.slots, opened.counts, strict=True):
            key = _key_of(slot.verified)
            counter = self._counters.get(key)
            if counter is None:
                counter = self._counters[key] = _Counter(key, shown=counts)
            slot.counter = counter
            if counts == counter.shown:
                counter.slots.add(slot)
            else:
                slot.sent = counts
                counter.behind.add(slot)
            self._by_key.setdefault(slot.verified.key_id, set()).add(slot)
            shared = self._tokens.get(slot.token)
            if shared is None:
                self._tokens[slot.token] = [slot.token, 1]
            else:
                shared[1] += 1
                slot.token = shared[0]
            heapq.heappush(self._expiries, (slot.verified.valid_until, next(self._sequence), slot))
            self._held += 1

    def detach(self, stream: Stream) -> None:
        """The connection is gone (or being closed): forget its stream."""
        if stream.closed:
            return
        stream.closed = True
        self._streams.discard(stream)
        for slot in stream.slots:
            self._drop(slot)
        stream.slots.clear()

    def _drop(self, slot: _Slot) -> None:
        counter = slot.counter
        if counter is not None:
            self._held -= 1
            counter.slots.discard(slot)
            counter.behind.discard(slot)
            if not counter.slots and not counter.behind:
                del self._counters[counter.key]
            slot.counter = None
        shared = self._tokens.get(slot.token)
        if shared is not None:
            shared[1] -= 1
            if shared[1] == 0:
                del self._tokens[slot.token]
        by_key = self._by_key.get(slot.verified.key_id)
        if by_key is not None:
            by_key.discard(slot)
            if not by_key:
                del self._by_key[slot.verified.key_id]

    def _end(self, stream: Stream) -> None:
        sink = stream.sink
        self.detach(stream)
        sink.close()

    async def _close_all(self, now: float) -> None:
        """Shutdown: close every stream (browsers reconnect to another node)."""
        for stream in list(self._streams):
            self._end(stream)

    # -- the job -----------------------------------------------------------------------------

    async def tick(self, now: float) -> None:
        """Push what changed since the last look, end the streams of expired tokens, and keep
        idle streams alive. Called every :data:`TICK` seconds by the runtime."""
        self._tick += 1
        tick = self._tick
        if self._counters:
            counters = list(self._counters.values())
            counts = await self._read([c.key for c in counters], now)
            stamp = int(now * 1000)
            for counter, current in zip(counters, counts, strict=True):
                self._push(counter, current, tick, stamp)
        expiries = self._expiries
        if len(expiries) > 2 * self._held + _HEAP_SLACK:
            # Dead entries are skipped when due, but tokens live for days (mux-node signs
            # for 7): rebuilt with the live ones once half is dead, or churn grows it.
            expiries[:] = [entry for entry in expiries if entry[2].counter is not None]
            heapq.heapify(expiries)
        due: list[_Slot] = []
        while expiries and expiries[0][0] <= now:
            slot = heapq.heappop(expiries)[2]
            if slot.counter is not None:
                due.append(slot)
        if due:
            self._recheck(due, now)
        if tick % self._keepalive_ticks == 0:
            for stream in list(self._streams):
                self._write(stream, KEEPALIVE)

    def _push(self, counter: _Counter, current: Counts, tick: int, stamp: int) -> None:
        if tick - counter.shown_tick < MIN_SPACING:
            return
        frames: dict[int, bytes] = {}
        if current != counter.shown:
            counter.shown = current
            counter.shown_tick = tick
            for slot in list(counter.slots):
                self._send(slot, current, stamp, frames)
        if counter.behind:
            for slot in list(counter.behind):
                if slot.sent != current:
                    self._send(slot, current, stamp, frames)
                counter.behind.discard(slot)
                slot.sent = None
                if slot.counter is counter:
                    counter.slots.add(slot)

    def _send(self, slot: _Slot, counts: Counts, stamp: int, frames: dict[int, bytes]) -> None:
        frame = frames.get(slot.index)
        if frame is None:
            frame = frames[slot.index] = self._frame(slot.index, counts, stamp)
        self._write(slot.stream, frame)
        self._events.value += 1

    def _write(self, stream: Stream, data: bytes) -> None:
        if stream.closed:
            return
        sink = stream.sink
        if sink.get_write_buffer_size() > MAX_UNSENT:
            self._cut.value += 1
            self._end(stream)
            return
        sink.write(data)

    async def _read(self, keys: Sequence[CounterKey], now: float) -> list[Counts]:
        immediate = self._immediate
        if immediate is not None:
            return [immediate.counts_now(*key) for key in keys]
        return list(await asyncio.gather(*(self._live.counts(*key, now) for key in keys)))

    def _frame(self, index: int, counts: Counts, stamp: int) -> bytes:
        return counts_frame(index, self.counts.body(counts), stamp)

    async def checked(self) -> None:
        """Wait for the token checks under way (expiries, key deletions) to finish."""
        while self._rechecks:
            await asyncio.gather(*self._rechecks)

    # -- tokens that stop granting -----------------------------------------------------------

    def key_deleted(self, key_id: str) -> None:
        """A signing key was forgotten (deleted here, or seen deleted by the revocation
        poll): check its streams' tokens again, the way ``/counts`` would."""
        slots = self._by_key.get(key_id)
        if slots:
            self._recheck(list(slots), None)

    def _recheck(self, slots: list[_Slot], now: float | None) -> None:
        task = asyncio.get_running_loop().create_task(self._recheck_now(slots, now))
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    async def _recheck_now(self, slots: list[_Slot], now: float | None) -> None:
        clock = self.counts.runtime.clock
        # Slots that carry one token share its outcome: a key deleted under 20,000 streams
        # of one page's token costs one check, not 20,000 (tokens are one copy each).
        outcomes: dict[str, VerifiedToken | TokenRefused | None] = {}
        for done, slot in enumerate(slots, 1):
            if slot.counter is None:
                continue  # gone meanwhile
            if slot.token not in outcomes:
                outcomes[slot.token] = await self._check(
                    slot.token, clock() if now is None else now
                )
            outcome = outcomes[slot.token]
            if isinstance(outcome, TokenRefused):
                self._refuse(slot, outcome)
                continue
            # Still granted (a key deletion elsewhere, a clock step), or not known now (the
            # control store is away): look again at its expiry, or in RECHECK seconds.
            slot.verified = outcome or slot.verified
            when = outcome.valid_until if outcome is not None else clock() + RECHECK
            heapq.heappush(self._expiries, (when, next(self._sequence), slot))
            if done % _CHECKS_PER_TURN == 0:
                await asyncio.sleep(0)  # let the loop serve others between long runs

    async def _check(self, token: str, now: float) -> VerifiedToken | TokenRefused | None:
        try:
            return await self.counts.verified(token, now)
        except TokenRefused as exc:
            return exc
        except Exception:
            log.warning("Could not check a streamed token again", exc_info=True)
            return None

    def _refuse(self, slot: _Slot, exc: TokenRefused) -> None:
        stream = slot.stream
        self._write(stream, error_frame(slot.index, exc))
        if stream.closed:
            return
        self._drop(slot)
        stream.slots.remove(slot)
        if not stream.slots:
            self._end(stream)


def _key_of(verified: VerifiedToken) -> CounterKey:
    return (verified.environment_id, verified.id_type, verified.id)


class _NoSink:
    """A stream's sink until it is attached."""

    def write(self, data: bytes) -> None:
        raise AssertionError("a stream was written to before it was attached")

    def get_write_buffer_size(self) -> int:
        return 0

    def close(self) -> None:
        pass


_NO_SINK: Final = _NoSink()
