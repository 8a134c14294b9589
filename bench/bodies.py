"""Realistic mux-embed beacon batches for the ingest benchmark, as templates wrk fills in.

The shapes follow the real captures described in ``reference/beacons.md``: abbreviated keys,
the always-sent keys on every event, full state on the first event, ``viewstart`` and
``viewend``, and the ``requestcompleted`` events an HLS player (mux-player) adds every few
seconds, which is what puts a 10-second batch in the 1-3 KB range.

A *lifecycle* is every POST body one view sends, in order: the first batch ending in
``viewstart``, ``renditionchange``/``play``/``playing``, heartbeat batches, sometimes a pause
and a seek, and an end that is a ``viewend`` sent twice (sendBeacon + keepalive fetch, as
observed on every unload), a single ``viewend``, or nothing (an abandoned tab that the liveness
window has to expire).

Ids are sentinels (``@@VIEW@@``...) that ``bench/lua/bodies.lua`` replaces on every request, so
wrk can send millions of distinct views from a few hundred templates without Python in the loop.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "PLACEHOLDERS",
    "Lifecycle",
    "fill",
    "generate_lifecycles",
    "popular_videos",
    "split_template",
    "write_lua_data",
]

# Placeholder -> its number in the Lua data (the Lua script fills ids by these numbers).
PLACEHOLDERS = {"@@VIEW@@": 1, "@@VIEWER@@": 2, "@@VIDEO@@": 3, "@@PLAYER@@": 4}
_SPLIT = re.compile("(" + "|".join(re.escape(p) for p in PLACEHOLDERS) + ")")

_EPOCH_MS = 1_795_844_252_178  # the capture's clock; client clocks are never trusted anyway
_TITLES = ("Morning news", "Match highlights", "Keynote", "Cooking live", "Trailer", "Lecture 4")


@dataclass(frozen=True)
class Lifecycle:
    """Every body one view POSTs, in order, with placeholders for its ids."""

    bodies: tuple[bytes, ...]
    ending: str  # "viewend-twice", "viewend" or "abandoned"


class _View:
    """Builds one view's events the way mux-embed does (sequence numbers, clocks, deltas)."""

    def __init__(self, rng: random.Random, env_key: str) -> None:
        self.rng = rng
        self.env_key = env_key
        self.sequence = 0
        self.clock = _EPOCH_MS + rng.randrange(0, 86_400_000)
        self.playhead = 0
        self.playing_ms = 0
        self.full: dict[str, Any] = {
            "mem": "mux-embed",
            "memve": "5.19.0",
            "udvcg": "",
            "msara": 1,
            "pispa": False,
            "pwd": rng.choice((640, 1280, 1920)),
            "pht": rng.choice((360, 720, 1080)),
            "pauon": False,
            "ppron": "auto",
            "placd": "",
            "pisfs": False,
            "vsodu": rng.choice((None, 184_000, 612_500, 1_800_000)),
            "psw": "mux-player",
            "pswnm": "mux-player",
            "pswve": "3.14.0",
            "pmxpinm": "mux-player",
            "pmxpive": "3.14.0",
            "pnm": "watch-page",
            "piiti": self.clock - rng.randrange(50, 900),
            "vtt": rng.choice(_TITLES),
            "vsmty": rng.choice(("on-demand", "on-demand", "live")),
            "ucxty": rng.choice(("wifi", "cellular", "wired")),
            "sid": f"{rng.getrandbits(128):032x}",
            "sst": self.clock - rng.randrange(0, 1_500_000),
            "mvrid": "@@VIEWER@@",
            "msano": rng.random(),
            "xseid": f"{rng.getrandbits(128):032x}",
            "wur": "https://www.example.com/watch/@@VIDEO@@",
            "vsohn": "stream.mux.com",
            "vsour": "https://stream.mux.com/@@VIDEO@@.m3u8",
        }
        if rng.random() < 0.4:
            self.full["uusid"] = f"user-{rng.randrange(1, 10_000_000)}"
        if rng.random() < 0.3:
            self.full["c1"] = rng.choice(("premium", "free", "trial"))

    def event(self, name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        self.sequence += 1
        self.clock += self.rng.randrange(5, 400)
        event: dict[str, Any] = {
            "mapve": "2.1",
            "pinid": "@@PLAYER@@",
            "bdm": "collector.example.com",
            "psqno": self.sequence,
            "xsqno": self.sequence,
            "pphti": self.playhead,
            "uti": self.clock,
            "ake": self.env_key,
            "vid": "@@VIDEO@@",
            "xid": "@@VIEW@@",
            "xpntimscv": self.playing_ms,
            "sex": self.clock + 1_500_000,
        }
        event.update(extra or {})
        event["e"] = name
        return event

    def full_event(self, name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        return self.event(name, {**self.full, "xwati": self.playing_ms, **(extra or {})})

    def segment(self) -> dict[str, Any]:
        start = self.clock + self.rng.randrange(10, 200)
        duration = self.rng.randrange(20, 900)
        size = self.rng.randrange(200_000, 2_400_000)
        number = self.rng.randrange(1, 2_000)
        return self.event(
            "requestcompleted",
            {
                "qst": start,
                "qrpst": start + self.rng.randrange(5, 60),
                "qrpen": start + duration,
                "qbyld": size,
                "qty": "media",
                "qhn": "chunk-gcp-us-east1-vop1.cfcdn.mux.com",
                "qur": f"https://chunk-gcp-us-east1-vop1.cfcdn.mux.com/v1/chunk/{number}.ts",
                "qmddu": 6.006,
                "qcule": self.rng.randrange(0, 4),
                "qlbbi": self.rng.choice((800_000, 2_500_000, 5_000_000)),
                "qviwd": self.full["pwd"],
                "qviht": self.full["pht"],
            },
        )

    def play_for(self, seconds: int) -> None:
        self.playhead += seconds * 1000
        self.playing_ms += seconds * 1000
        self.clock += seconds * 1000


def _body(events: Sequence[dict[str, Any]], rtt: int | None) -> bytes:
    metadata: dict[str, Any] = {"transmission_timestamp": events[-1]["uti"] + 3}
    if rtt is not None:
        metadata["rtt_ms"] = rtt
    return orjson.dumps({"metadata": metadata, "events": list(events)})


def _lifecycle(rng: random.Random, env_key: str) -> Lifecycle:
    view = _View(rng, env_key)
    batches: list[list[dict[str, Any]]] = []
    first = view.full_event("playerready", {"pispa": True})
    batches.append([first, view.full_event("viewstart", {"xst": view.clock, "pvwco": 1})])
    batches.append(
        [
            view.event("renditionchange", {"vsohn": "stream.mux.com", "qlbbi": 2_500_000}),
            view.event("play"),
            view.event("playing", {"xtitofifr": rng.randrange(80, 900)}),
            view.segment(),
            view.segment(),
        ]
    )
    for beat in range(rng.randrange(2, 13)):
        view.play_for(10)
        batch = [view.event("hb", {"xwati": view.playing_ms, "xmaphps": view.playhead})]
        batch += [view.segment() for _ in range(rng.randrange(2, 5))]
        if beat == 1 and rng.random() < 0.3:
            batch.append(view.event("pause", {"pispa": True}))
            batches.append(batch)
            batch = [view.event("play", {"pispa": False}), view.event("playing")]
            batch += [view.segment(), view.segment()]
        elif beat == 2 and rng.random() < 0.2:
            # A seek makes the player drop the queued segment requests: keep one.
            batch = [*batch[:2], view.event("seeking"), view.event("seeked"), view.event("playing")]
        batches.append(batch)
    roll = rng.random()
    ending = "viewend-twice" if roll < 0.55 else ("viewend" if roll < 0.8 else "abandoned")
    if ending != "abandoned":
        batches.append(
            [
                view.event("pause", {"pispa": True}),
                view.full_event("viewend", {"pispa": True, "xst": _EPOCH_MS}),
            ]
        )
        if ending == "viewend-twice":
            batches.append(batches[-1])
    bodies = tuple(
        _body(batch, rng.randrange(8, 120) if i else None) for i, batch in enumerate(batches)
    )
    return Lifecycle(bodies, ending)


def generate_lifecycles(env_key: str, count: int = 200, seed: int = 7) -> list[Lifecycle]:
    """``count`` view lifecycles, the same for the same seed."""
    rng = random.Random(seed)
    return [_lifecycle(rng, env_key) for _ in range(count)]


def popular_videos(videos: int = 1000, draws: int = 10_000, seed: int = 7) -> list[str]:
    """``draws`` video ids drawn with a Zipf-like skew (a few hits, a long tail)."""
    rng = random.Random(seed)
    ids = [f"bench-video-{i:05d}" for i in range(videos)]
    weights = [1.0 / (rank + 1) for rank in range(videos)]
    return rng.choices(ids, weights=weights, k=draws)


def split_template(body: bytes) -> list[str | int]:
    """Alternating literal pieces and placeholder numbers: ``["{..", 1, "..}"]``."""
    parts: list[str | int] = []
    for index, piece in enumerate(_SPLIT.split(body.decode("utf-8"))):
        parts.append(PLACEHOLDERS[piece] if index % 2 else piece)
    return parts


def fill(template: Sequence[str | int], values: dict[int, str]) -> bytes:
    """What the Lua script does per request, in Python (for the smoke test and the sizes)."""
    return "".join(values[p] if isinstance(p, int) else p for p in template).encode("utf-8")


def _lua_string(text: str) -> str:
    level = 0
    while f"]{'=' * level}]" in text:
        level += 1
    return f"[{'=' * level}[{text}]{'=' * level}]"


def _lua_lines(lifecycles: Sequence[Lifecycle], videos: Sequence[str]) -> Iterator[str]:
    yield "return {"
    yield "  videos = {" + ",".join(_lua_string(v) for v in videos) + "},"
    yield "  lifecycles = {"
    for lifecycle in lifecycles:
        yield "    {"
        for body in lifecycle.bodies:
            cells = (str(p) if isinstance(p, int) else _lua_string(p) for p in split_template(body))
            yield "      {" + ",".join(cells) + "},"
        yield "    },"
    yield "  },"
    yield "}"


def write_lua_data(path: Path, lifecycles: Sequence[Lifecycle], videos: Sequence[str]) -> None:
    path.write_text("\n".join(_lua_lines(lifecycles, videos)) + "\n", encoding="utf-8")
