"""Beacon decoding: every real capture decodes to its expected twin; bad envelopes are refused."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from headcount.core.decode import decode_beacon
from headcount.core.keys import abbreviate_key
from headcount.errors import BadRequest

CAPTURES = Path(__file__).parents[1] / "fixtures" / "beacons"
RAW_FILES = sorted(CAPTURES.glob("*/raw/*.json"))


def test_the_captures_are_there() -> None:
    assert len(RAW_FILES) == 19  # A: 9 bodies, D (no CORS): 5, D (HTTP 500): 5


@pytest.mark.parametrize("raw", RAW_FILES, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_capture_decodes_to_its_decoded_twin(raw: Path) -> None:
    expected = json.loads((raw.parents[1] / "decoded" / raw.name).read_text("utf-8"))
    beacon = decode_beacon(raw.read_bytes())
    assert beacon.metadata == expected["metadata"]
    assert beacon.events == expected["events"]
    # Key order is kept too (a decoder must not lose or reorder information).
    assert [list(e) for e in beacon.events] == [list(e) for e in expected["events"]]


@pytest.mark.parametrize("raw", RAW_FILES[:3], ids=lambda p: p.name)
def test_spelled_out_twin_decodes_to_itself(raw: Path) -> None:
    decoded = (raw.parents[1] / "decoded" / raw.name).read_bytes()
    beacon = decode_beacon(decoded)
    assert beacon.events == json.loads(decoded)["events"]


def test_abbreviated_and_spelled_out_keys_mix_in_one_body() -> None:
    body = {
        "events": [
            {"e": "viewstart", "ake": "k1", "xid": "v1", "xsqno": 1},
            {"event": "hb", "env_key": "k1", "view_id": "v1", "view_sequence_number": 2},
            {abbreviate_key("live_stream_id"): "ls1", "asset_id": "as1", "e": "hb"},
        ]
    }
    beacon = decode_beacon(orjson.dumps(body))
    assert beacon.events == [
        {"event": "viewstart", "env_key": "k1", "view_id": "v1", "view_sequence_number": 1},
        {"event": "hb", "env_key": "k1", "view_id": "v1", "view_sequence_number": 2},
        {"live_stream_id": "ls1", "asset_id": "as1", "event": "hb"},
    ]
    assert beacon.metadata == {}


def test_nested_values_are_untouched() -> None:
    headers = {"xid": "not a key to expand", "content-type": "video/mp2t"}
    body = {"metadata": {}, "events": [{"e": "requestcompleted", "qrphe": headers}]}
    (event,) = decode_beacon(orjson.dumps(body)).events
    assert event == {"event": "requestcompleted", "request_response_headers": headers}


def test_non_object_events_are_passed_through_for_the_caller() -> None:
    beacon = decode_beacon(b'{"events":[1,"x",null,{"e":"hb"}]}')
    assert beacon.events == [1, "x", None, {"event": "hb"}]


def test_metadata_may_be_null() -> None:
    assert decode_beacon(b'{"metadata":null,"events":[]}').metadata == {}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"", "not valid JSON"),
        (b"{not json", "not valid JSON"),
        (b"\xff\xfe", "not valid JSON"),
        (b"[]", "must be a JSON object"),
        (b'"events"', "must be a JSON object"),
        (b"{}", '"events" array'),
        (b'{"events":{}}', '"events" array'),
        (b'{"metadata":{},"events":null}', '"events" array'),
        (b'{"metadata":[],"events":[]}', '"metadata" must be an object'),
    ],
)
def test_bodies_that_are_not_the_envelope_are_refused(body: bytes, fragment: str) -> None:
    with pytest.raises(BadRequest) as caught:
        decode_beacon(body)
    assert fragment in caught.value.message
