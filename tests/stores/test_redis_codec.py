"""The packed view state: what the node writes (``pack_state``), what it reads back
(``unpack_state``) and the ids a change carries (``ContentHashes.ids``). The sweep reads the
same bytes in Lua with the format generated from the same field list
(``tests/stores/test_redis_views.py`` sweeps a view with every id through a real Redis)."""

from __future__ import annotations

from headcount.core.identity import content_key
from headcount.core.tracker import ENDED, STARTED, ViewState
from headcount.history.model import ENVIRONMENT
from headcount.stores.redis_codec import (
    NONE,
    STATE,
    ContentHashes,
    pack_state,
    to8,
    unpack_state,
)

ENV = "env-codec"


def _hash(id_type: str, value: str) -> bytes:
    return to8(content_key(ENV, id_type, value))


def test_a_state_comes_back_as_it_was_packed_with_its_ids_as_hashes() -> None:
    hashes = ContentHashes(ENV)
    state = ViewState(STARTED | ENDED, "vid", "asset", "pb", "live", 2**63 + 5)
    seen = (1 << 63) | (1 << 32) | 1  # both halves of the bitmap
    packed = pack_state(hashes.ids(state), state, 4_000_000_000, seen, 1_800_000_000.9, 65_537)
    assert len(packed) == STATE.struct.size + 5 * 8
    back, highest, back_seen, refreshed, writes = unpack_state(packed)
    assert (highest, back_seen, refreshed, writes) == (4_000_000_000, seen, 1_800_000_000, 1)
    assert back == ViewState(
        STARTED | ENDED,
        _hash("video_id", "vid"),  # type: ignore[arg-type]  # Redis keeps hashes, not names
        _hash("asset_id", "asset"),  # type: ignore[arg-type]
        _hash("playback_id", "pb"),  # type: ignore[arg-type]
        _hash("live_stream_id", "live"),  # type: ignore[arg-type]
        2**63 + 5,
    )
    # Read back, its ids are the same as the names they were packed from.
    assert hashes.ids(back) == hashes.ids(state)


def test_ids_are_in_state_order_with_the_environment_last_and_absent_ones_take_no_room() -> None:
    hashes = ContentHashes(ENV)
    state = ViewState(STARTED, None, None, "pb", None, 0)
    ids = hashes.ids(state)
    environment = _hash(ENVIRONMENT, ENV)
    assert ids == NONE + NONE + _hash("playback_id", "pb") + NONE + environment
    packed = pack_state(ids, state, 1, 1, 0, 0)
    assert packed[STATE.struct.size :] == _hash("playback_id", "pb") + environment
    back = unpack_state(packed)[0]
    assert (back.video_id, back.playback_id, back.viewer) == (None, _hash("playback_id", "pb"), 0)


def test_names_are_remembered_both_ways_and_forgotten_when_full() -> None:
    remembered: dict[tuple[str, str, str], bytes] = {}
    names: dict[bytes, tuple[str, str, str]] = {}
    hashes = ContentHashes(ENV, remembered, names)
    hashed = hashes.content("video_id", "vid")
    assert remembered[(ENV, "video_id", "vid")] == hashed
    assert names[hashed] == (ENV, "video_id", "vid")
    assert hashes.content("video_id", "vid") is hashed  # the same object: not hashed again
