"""Beacon bodies: bytes in, metadata and events with full key names out (pure).

The envelope is ``{"metadata": {...}, "events": [{...}, ...]}`` (beacons.md §2.1). Event keys
may be abbreviated (mux-embed) or spelled out (any other client); both come out spelled out.
Values are never touched: nested objects such as ``request_response_headers`` keep their own
keys, and ``metadata`` keys are never abbreviated in the first place.

Decisions where the protocol is silent:

* ``metadata`` is optional (null or absent reads as ``{}``): mux-embed always sends it, but
  nothing in counting needs it, and the documented JSON for other players need not carry it.
* An element of ``events`` that is not an object is passed through as is, so the collector can
  reject that one event by its index and keep its neighbours; only a body that is not JSON, or
  not the envelope, is refused as a whole.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from headcount.core.keys import expand_keys
from headcount.errors import BadRequest

__all__ = ["Beacon", "decode_beacon", "expand_event"]


_new_tuple = tuple.__new__


class Beacon(NamedTuple):  # a NamedTuple: cheaper to build than a frozen dataclass
    metadata: dict[str, Any]
    # Events with full key names; non-objects are passed through for the caller to reject.
    events: list[Any]


def expand_event(event: dict[str, Any]) -> dict[str, Any]:
    """The same event with every key spelled out (values, nested ones included, untouched)."""
    return expand_keys(event)


def decode_beacon(body: bytes, *, expand: bool = True) -> Beacon:
    """The envelope, checked; with ``expand=False`` events keep the keys they were sent with
    (the collector reads them with :func:`headcount.core.events.read_view_event`, which knows
    both spellings, instead of expanding every key of every event)."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.") from None
    if not isinstance(document, dict):
        raise BadRequest('The body must be a JSON object: {"metadata":{...},"events":[...]}.')
    events = document.get("events")
    if not isinstance(events, list):
        raise BadRequest('The body must have an "events" array: {"metadata":{...},"events":[...]}.')
    metadata = document.get("metadata")
    if metadata is None:
        metadata = {}
    elif not isinstance(metadata, dict):
        raise BadRequest('"metadata" must be an object when present.')
    if expand:
        events = [expand_keys(e) if isinstance(e, dict) else e for e in events]
    # tuple.__new__ directly: the NamedTuple's generated __new__ is one more Python call, and
    # this runs for every collector request.
    return _new_tuple(Beacon, (metadata, events))
