"""``POST /`` and ``POST /collect``: mux-embed beacons (and the same JSON spelled out) in.

Answers (reference: beacons.md §5):

* 200 with ``Access-Control-Allow-Origin: *`` and ``{"accepted": n, "rejected": [{"index": i,
  "reason": "..."}]}`` whenever the body is the envelope, even if every event in it was bad: any
  other status makes mux-embed re-send the whole batch forever, good events included.
* 400 (Mux error envelope) for a body that is not JSON or not ``{"events": [...]}``; 413 for a
  body over ``max_body_bytes`` (enforced by the app before this handler runs), or with more
  than :data:`MAX_EVENTS` events (mux-embed sends at most 300).

**Every answer is small.** The ``rejected`` list names the first :data:`MAX_LISTED` rejected
events; when there were more, ``"rejected_total"`` says how many (every one is counted in the
metrics by its reason). Once, a 698 KB body of ``{"events":[0,0,...]}`` got a 14.5 MB answer.

Each event is checked on its own (:func:`headcount.core.events.read_keyed_event`); a bad one is
reported by its index and reason and counted in the metrics, and never costs its neighbours.
Events are grouped by ``env_key`` (a batch may mix environments) and each group is applied in
order by the live store. The env_keys not cached yet are looked up together, in one query,
and unknown ones are remembered for a few seconds
(:class:`~headcount.stores.environment_cache.EnvironmentCache`); a 503 when too many lookups
are queued already.
"""

from __future__ import annotations

import orjson

from headcount.core.decode import decode_beacon
from headcount.core.events import EventRejected, ViewEvent, read_keyed_event
from headcount.errors import BadRequest, HeadcountError, PayloadTooLarge
from headcount.http.reply import JSON, Reply
from headcount.metrics import Counter, Outcomes
from headcount.runtime import Runtime
from headcount.stores.control import Environment
from headcount.stores.environment_cache import MISS, EnvironmentCache
from headcount.stores.live import ImmediateLiveStore

__all__ = ["MAX_EVENTS", "MAX_LISTED", "CollectorEndpoint"]

# Indices in the body and the events of one env_key.
_Group = tuple[list[int], list[ViewEvent]]

_REJECTED_HELP = "Beacon events dropped by the collector, by reason."
MAX_EVENTS = 2000  # per body; mux-embed sends at most 300 (its queue flushes at that size)
MAX_LISTED = 20  # rejected events named in an answer

# The answer when every event was accepted (nearly every POST), built once per count.
_ALL_ACCEPTED: tuple[bytes, ...] = tuple(
    orjson.dumps({"accepted": n, "rejected": []}) for n in range(256)
)


class CollectorEndpoint:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.environments = EnvironmentCache(runtime.control)
        self._immediate = runtime.live.immediate()
        metrics = runtime.metrics
        # A body answered 200 is "ok" even when some of its events were rejected (they are
        # counted below by reason); 400 when not JSON or not the envelope, 413 when too large.
        self.bodies = Outcomes(
            metrics,
            "headcount_collector_bodies_total",
            "Beacon POST bodies by outcome: ok (answered 200), or the error envelope's type "
            "(invalid_parameters, payload_too_large, service_unavailable).",
        )
        self._ok = self.bodies.ok
        self._accepted = metrics.counter(
            "headcount_collector_events_accepted_total", "Beacon events accepted."
        )
        self._duplicates = metrics.counter(
            "headcount_collector_events_duplicate_total",
            "Accepted beacon events already seen (same view and view_sequence_number).",
        )
        self._rejected: dict[str, Counter] = {}

    def _count_rejected(self, reason: str) -> None:
        counter = self._rejected.get(reason)
        if counter is None:
            counter = self._rejected[reason] = self.runtime.metrics.counter(
                "headcount_collector_events_rejected_total", _REJECTED_HELP, reason=reason
            )
        counter.value += 1

    def _read(self, body: bytes) -> tuple[list[tuple[int, str]], dict[str, _Group]]:
        """The body's events grouped by ``env_key`` (in order), and the ones rejected."""
        try:
            beacon = decode_beacon(body, expand=False)
        except BadRequest as exc:
            self.bodies.error(exc)
            raise
        if len(beacon.events) > MAX_EVENTS:
            self.bodies.outcome("payload_too_large").value += 1
            raise PayloadTooLarge(
                f"At most {MAX_EVENTS} events per body (mux-embed sends at most 300); "
                f"got {len(beacon.events)}. Send them in several."
            )
        rejected: list[tuple[int, str]] = []
        groups: dict[str, _Group] = {}
        last_env_key = None
        indices: list[int] = []
        events: list[ViewEvent] = []
        for index, raw in enumerate(beacon.events):
            if not isinstance(raw, dict):
                rejected.append((index, "not_an_object"))
                continue
            try:
                env_key, event = read_keyed_event(raw)
            except EventRejected as exc:
                rejected.append((index, exc.reason))
                continue
            if env_key != last_env_key:  # a body is mostly one env_key's: no lookup per event
                last_env_key = env_key
                group = groups.get(env_key)
                if group is None:
                    group = groups[env_key] = ([], [])
                indices, events = group
            indices.append(index)
            events.append(event)
        return rejected, groups

    def post_now(self, body: bytes, now: float) -> Reply | None:
        """The answer without a coroutine (the server's hot path, for a live store that
        answers without I/O), or ``None``, having applied nothing, when an ``env_key`` is not
        in the cache yet."""
        assert self._immediate is not None, "hot path built for a store that must be awaited"
        rejected, groups = self._read(body)
        return self._apply_now(self._immediate, rejected, groups, now)

    async def post(self, body: bytes, now: float) -> Reply:
        rejected, groups = self._read(body)
        if self._immediate is not None:
            reply = self._apply_now(self._immediate, rejected, groups, now)
            if reply is not None:
                return reply
        accepted = 0
        duplicates = 0
        live = self.runtime.live
        # One store query for every env_key of the body not cached yet (a 503 when too many
        # lookups are queued already: mux-embed sends the batch again).
        try:
            resolved = await self.environments.resolve_many(groups, now)
            for env_key, (indices, events) in groups.items():
                environment = resolved[env_key]
                if environment is None:
                    rejected.extend((index, "unknown_env_key") for index in indices)
                    continue
                result = await live.ingest(environment.id, events, now)
                accepted += len(events)
                duplicates += result.duplicates
        except HeadcountError as exc:  # a store that does not answer: 503, mux-embed re-sends
            self.bodies.error(exc)
            raise
        return self._answer(accepted, duplicates, rejected)

    def _apply_now(
        self,
        live: ImmediateLiveStore,
        rejected: list[tuple[int, str]],
        groups: dict[str, _Group],
        now: float,
    ) -> Reply | None:
        """Apply the groups without waiting, or ``None`` (``rejected`` untouched, nothing
        applied) when an ``env_key`` is not cached."""
        environments = self.environments
        resolved: list[tuple[Environment | None, _Group]] = []
        for env_key, group in groups.items():
            environment = environments.cached(env_key, now)
            if environment is MISS:
                return None
            resolved.append((environment, group))
        rejected = list(rejected)  # the caller's list stays as read, for its own way
        accepted = 0
        duplicates = 0
        for environment, (indices, events) in resolved:
            if environment is None:
                rejected.extend((index, "unknown_env_key") for index in indices)
                continue
            result = live.ingest_now(environment.id, events, now)
            accepted += len(events)
            duplicates += result.duplicates
        return self._answer(accepted, duplicates, rejected)

    def _answer(self, accepted: int, duplicates: int, rejected: list[tuple[int, str]]) -> Reply:
        self._ok.value += 1
        self._accepted.value += accepted
        if duplicates:
            self._duplicates.value += duplicates
        if not rejected and accepted < len(_ALL_ACCEPTED):
            return 200, JSON, _ALL_ACCEPTED[accepted]
        for _, reason in rejected:
            self._count_rejected(reason)
        rejected.sort()  # unknown-environment rejections were added group by group
        answer: dict[str, object] = {
            "accepted": accepted,
            "rejected": [
                {"index": index, "reason": reason} for index, reason in rejected[:MAX_LISTED]
            ],
        }
        if len(rejected) > MAX_LISTED:
            answer["rejected_total"] = len(rejected)
        return 200, JSON, orjson.dumps(answer)
