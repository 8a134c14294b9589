"""mux-embed's key abbreviation scheme (reference: beacons.md §2.2), both directions.

mux-embed shortens every event key: the first word becomes one letter (table 1), every later
word two letters (table 2), digit-only words stay digits, and unknown words are kept as
``<word>_`` (first) or ``_<word>_`` (later). The tables are mux-embed 5.19.0's, shipped as
package data (``data/dictionary.json``); ``data/key-table.tsv`` lists the 230 real key names.

:func:`expand_key` is on the collector's hot path, so it is a dictionary lookup: every known
short key and every known full key is resolved once at import, and other keys are parsed once
and remembered (up to a bound, so a client inventing keys cannot grow memory without limit).
"""

from __future__ import annotations

import csv
import io
import json
from importlib.resources import files
from typing import Any, Final

__all__ = [
    "FIRST_WORDS",
    "KNOWN_KEYS",
    "WORDS",
    "abbreviate_key",
    "expand_key",
    "expand_keys",
]

_DATA = files("headcount.core").joinpath("data")


def _load_tables() -> tuple[dict[str, str], dict[str, str]]:
    tables = json.loads(_DATA.joinpath("dictionary.json").read_text("utf-8"))
    return dict(tables["first_word"]), dict(tables["words"])


def _load_key_table() -> dict[str, str]:
    text = _DATA.joinpath("key-table.tsv").read_text("utf-8")
    return {
        row["short_key"]: row["full_key"]
        for row in csv.DictReader(io.StringIO(text), delimiter="\t")
    }


# code -> word, for the first word (1 letter) and for later words (2 letters)
FIRST_WORDS, WORDS = _load_tables()
# short -> full, the 230 keys mux-embed 5.19.0 can send
KNOWN_KEYS: Final[dict[str, str]] = _load_key_table()

_FIRST_CODES: Final[dict[str, str]] = {word: code for code, word in FIRST_WORDS.items()}
_WORD_CODES: Final[dict[str, str]] = {word: code for code, word in WORDS.items()}
_DIGITS: Final[frozenset[str]] = frozenset("0123456789")

# Keys a page adds through mux-embed's `data` (beacons.md §6) or a client spells out; they are
# not in mux-embed's key list but counting reads them, so their full names must never be
# "decoded" into something else.
_EXTRA_FULL_KEYS: Final[tuple[str, ...]] = ("asset_id", "playback_id", "live_stream_id")

# Memo of expand_key. Seeded with every known key in both spellings; misses are added while the
# memo is smaller than this bound (afterwards they are parsed each time, still correctly).
_MEMO_LIMIT: Final[int] = 16_384


def _parse_later_words(rest: str) -> list[str] | None:
    """The words encoded in ``rest`` (2-letter codes, digit runs, ``_word_``), or None."""
    words: list[str] = []
    i, n = 0, len(rest)
    while i < n:
        char = rest[i]
        if char in _DIGITS:
            j = i + 1
            while j < n and rest[j] in _DIGITS:
                j += 1
            words.append(rest[i:j])
            i = j
        elif char == "_":
            j = rest.find("_", i + 1)
            if j <= i + 1:  # no closing underscore, or an empty word
                return None
            words.append(rest[i + 1 : j])
            i = j + 1
        else:
            word = WORDS.get(rest[i : i + 2])
            if word is None:
                return None
            words.append(word)
            i += 2
    return words


def _expand_uncached(key: str) -> str:
    if not key:
        return key
    first = FIRST_WORDS.get(key[0])
    if first is not None:
        later = _parse_later_words(key[1:])
        if later is not None:
            return "_".join([first, *later])
    prefix, sep, rest = key.partition("_")
    if sep and prefix:
        later = _parse_later_words(rest)
        if later is not None:
            return "_".join([prefix, *later])
    return key


def _seed_memo() -> dict[str, str]:
    memo = {full: full for full in KNOWN_KEYS.values()}
    memo.update({full: full for full in _EXTRA_FULL_KEYS})
    memo.update({abbreviate_key(full): full for full in _EXTRA_FULL_KEYS})
    memo.update(KNOWN_KEYS)
    return memo


def expand_key(key: str) -> str:
    """The full name of a key sent abbreviated or spelled out; unknown keys come back as is."""
    full = _MEMO.get(key)
    if full is None:
        full = _expand_uncached(key)
        if len(_MEMO) < _MEMO_LIMIT:
            _MEMO[key] = full
    return full


def expand_keys(event: dict[str, Any]) -> dict[str, Any]:
    """The same object with every key spelled out; values (nested ones too) untouched."""
    known = _MEMO.get
    return {known(key) or expand_key(key): value for key, value in event.items()}


def abbreviate_key(full: str) -> str:
    """mux-embed's short form of a full key name (the encoder; used by the simulator)."""
    first, *later = full.split("_")
    parts = [_FIRST_CODES.get(first) or first + "_"]
    for word in later:
        if word and all(c in _DIGITS for c in word):
            parts.append(word)
        else:
            parts.append(_WORD_CODES.get(word) or "_" + word + "_")
    return "".join(parts)


_MEMO: dict[str, str] = _seed_memo()
