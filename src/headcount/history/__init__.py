"""History of the live counts: peaks, a per-minute series, the ids with most views now.

* :mod:`~headcount.history.model` — what a read returns (:class:`LiveEntry`, :class:`LiveDetail`,
  :class:`Minute`) and the read service's port (:class:`LiveReads`).
* :mod:`~headcount.history.record` — the recording rules (pure, ``now`` is an argument): one
  :class:`KeyHistory` per counter key, moved by :func:`observe` where a counter moves.
* Adapters: :mod:`~headcount.history.memory` (kept by the memory live store, saved in its
  state file) and :mod:`~headcount.history.redis` (kept in Redis beside the counters).

The service is ``runtime.history`` (also ``HeadcountApp.history``). See docs/history.md.
"""

from headcount.history.model import ENVIRONMENT, LiveDetail, LiveEntry, LiveReads, Minute

__all__ = ["ENVIRONMENT", "LiveDetail", "LiveEntry", "LiveReads", "Minute"]
