"""mux-embed's key abbreviation, both ways, over the real key list of mux-embed 5.19.0."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from headcount.core import keys
from headcount.core.keys import FIRST_WORDS, KNOWN_KEYS, WORDS, abbreviate_key, expand_key

KEY_TABLE = Path(__file__).parents[1] / "fixtures" / "beacons" / "key-table.tsv"


def _key_table() -> list[tuple[str, str]]:
    with KEY_TABLE.open(encoding="utf-8") as f:
        return [(row["full_key"], row["short_key"]) for row in csv.DictReader(f, delimiter="\t")]


def test_tables_have_the_documented_sizes() -> None:
    assert len(FIRST_WORDS) == 19
    assert len(WORDS) == 180
    assert len(KNOWN_KEYS) == 230
    assert all(len(code) == 2 and code.isalpha() and code.islower() for code in WORDS)


def test_packaged_key_table_is_the_reference_one() -> None:
    assert dict((short, full) for full, short in _key_table()) == KNOWN_KEYS


@pytest.mark.parametrize(("full", "short"), _key_table())
def test_round_trip_of_every_real_key(full: str, short: str) -> None:
    assert abbreviate_key(full) == short
    assert expand_key(short) == full
    # The grammar alone (no table lookup) decodes every real short key too.
    assert keys._expand_uncached(short) == full


@pytest.mark.parametrize(("full", "_short"), _key_table())
def test_spelled_out_keys_stay_spelled_out(full: str, _short: str) -> None:
    assert expand_key(full) == full


@pytest.mark.parametrize(
    ("full", "short"),
    [
        ("asset_id", "asset_id"),
        ("playback_id", "playback_id"),
        ("live_stream_id", "live_smid"),
        ("custom_1", "c1"),
        ("viewer_device_orientation", "udv_orientation_"),
        ("foo_bar_id", "foo__bar_id"),
    ],
)
def test_keys_outside_the_table(full: str, short: str) -> None:
    """Keys a page adds in `data` (beacons.md §6) and unknown words use the same scheme."""
    assert abbreviate_key(full) == short
    assert expand_key(short) == full


def test_extra_content_id_keys_spelled_out_are_kept() -> None:
    for full in ("asset_id", "playback_id", "live_stream_id"):
        assert expand_key(full) == full


@pytest.mark.parametrize("key", ["", "zz", "xzz", "Q", "!?", "x_open", "ake_zz"])
def test_unparseable_keys_come_back_unchanged(key: str) -> None:
    assert expand_key(key) == key


def test_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    memo: dict[str, str] = {}
    monkeypatch.setattr(keys, "_MEMO", memo)
    monkeypatch.setattr(keys, "_MEMO_LIMIT", 3)
    invented = [f"zzq{i}" for i in range(10)]
    assert [expand_key(k) for k in invented] == invented
    assert len(memo) == 3


def test_packaged_dictionary_is_the_reference_one() -> None:
    import json

    reference = json.loads((KEY_TABLE.parent / "dictionary.json").read_text("utf-8"))
    assert reference["first_word"] == FIRST_WORDS
    assert reference["words"] == WORDS
