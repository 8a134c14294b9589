"""Memory and CPU of history in ``MemoryHistory`` (the memory live store's records).

The worst case the retention allows: ``ids`` content ids live for a whole retention window
(default 24 h) whose counts move every minute, so each keeps one entry per minute — the bound
``retention x ids that were live``. Measured with ``tracemalloc`` (every Python allocation still
alive) after the window is full, so it includes the dicts that list live ids per environment;
and the CPU time of one ``observe`` (a counter key moving), which a transition pays on top of
its counter arithmetic. The Redis records are not measured here: their size is by design
(20 bytes per minute in a ring of twice the window, plus a small hash per key; docs/history.md).

Run alone: ``python -m bench history`` (``--history-ids`` sets ``ids``).
"""

from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass

from bench.report import Metric, Report, markdown_table
from headcount.history.memory import MemoryHistory
from headcount.history.record import MINUTE

__all__ = ["HistoryOptions", "run"]

T0 = 1_800_000_000.0
TARGET_BYTES_PER_MINUTE = 40  # per id per kept minute, overhead included
TARGET_OBSERVE_US = 10.0


@dataclass(frozen=True)
class HistoryOptions:
    ids: int = 1000
    retention: float = 86_400.0


def _fill(book: MemoryHistory, ids: int, minutes: int) -> int:
    calls = 0
    for minute in range(minutes):
        now = T0 + minute * MINUTE + 1
        for i in range(ids):
            book.observe("env", "video_id", f"video-{i:06d}", 1 + (minute + i) % 50, 1, now)
            calls += 1
    return calls


def run(options: HistoryOptions) -> Report:
    minutes = int(options.retention // MINUTE)
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    book = MemoryHistory(options.retention)
    _fill(book, options.ids, minutes)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    per_minute = held / (options.ids * minutes)

    timed = MemoryHistory(options.retention)
    started = time.process_time()
    calls = _fill(timed, options.ids, 60)
    observe_us = (time.process_time() - started) / calls * 1e6

    projected_gb = per_minute * minutes * 10_000 / 1e9
    rows = [
        ["ids live the whole window", f"{options.ids:,}"],
        ["minutes kept per id", f"{minutes:,}"],
        ["memory held", f"{held / 1e6:,.1f} MB"],
        ["bytes per id per minute", f"{per_minute:.1f}"],
        ["bytes per id (full window)", f"{per_minute * minutes:,.0f}"],
        ["projected: 10,000 ids live all day", f"{projected_gb:.2f} GB"],
        ["CPU per observe (a key moving)", f"{observe_us:.2f} µs"],
    ]
    return Report(
        name="history",
        metrics=(
            Metric(
                "history memory per id-minute",
                f"≤ {TARGET_BYTES_PER_MINUTE} B",
                f"{per_minute:.1f} B",
                per_minute <= TARGET_BYTES_PER_MINUTE,
            ),
            Metric(
                "history observe CPU",
                f"≤ {TARGET_OBSERVE_US:.0f} µs",
                f"{observe_us:.2f} µs",
                observe_us <= TARGET_OBSERVE_US,
            ),
        ),
        details=markdown_table(["measure", "value"], rows),
        raw={"held_bytes": held, "per_minute": per_minute, "observe_us": observe_us},
    )
