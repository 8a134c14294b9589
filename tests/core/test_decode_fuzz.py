"""Property-based fuzzing of the beacon decoder (hypothesis): whatever the bytes, it decodes or
refuses with :class:`BadRequest`, and each event is read or refused with
:class:`EventRejected`; spelled-out events survive mux-embed's encoding unchanged. The mutators
are those of ``python -m bench fuzz`` (which runs them ≥ 100k times), driven here by
``st.randoms`` so hypothesis can shrink a failure."""

from __future__ import annotations

import json
import random
from typing import Any

import orjson
from bench.fuzz_inputs import CAPTURES, capture_bodies, mutate_beacon
from hypothesis import given, settings
from hypothesis import strategies as st

from headcount.core.decode import decode_beacon
from headcount.core.events import EventRejected, read_keyed_event
from headcount.errors import BadRequest
from headcount.sim.beacons import encode_body

BODIES = capture_bodies()
FULL_KEYS = sorted(
    {
        key
        for path in CAPTURES.glob("*/decoded/*.json")
        for event in json.loads(path.read_text("utf-8"))["events"]
        for key in event
    }
)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
JSON = st.recursive(
    SCALARS,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _read_every_event(body: bytes) -> None:
    """What the collector does with a body; only the documented refusals may come out."""
    try:
        beacon = decode_beacon(body, expand=False)
    except BadRequest:
        return
    for event in beacon.events:
        if isinstance(event, dict):
            try:
                read_keyed_event(event)
            except EventRejected as exc:
                assert exc.reason and exc.reason.isidentifier()
    assert len(decode_beacon(body).events) == len(beacon.events)  # the expanding way too


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=512))
def test_any_bytes_are_decoded_or_refused_as_a_bad_request(body: bytes) -> None:
    _read_every_event(body)


@settings(max_examples=200, deadline=None)
@given(JSON)
def test_any_json_document_is_decoded_or_refused_as_a_bad_request(document: Any) -> None:
    _read_every_event(orjson.dumps(document))


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_mutated_real_captures_only_meet_the_documented_refusals(rng: random.Random) -> None:
    _read_every_event(mutate_beacon(rng, BODIES))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.dictionaries(st.sampled_from(FULL_KEYS), SCALARS, max_size=12), max_size=5),
    st.integers(min_value=0, max_value=2**53),
)
def test_spelled_out_events_round_trip_through_mux_embeds_encoding(
    events: list[dict[str, Any]], transmission_ms: int
) -> None:
    beacon = decode_beacon(encode_body(events, transmission_ms=transmission_ms))
    assert beacon.events == events
    assert beacon.metadata == {"transmission_timestamp": transmission_ms}
