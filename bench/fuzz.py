"""``python -m bench fuzz``: hostile beacons and tokens through the real app, counted by outcome.

In one process, with no server or socket (the wire is the suite's schemathesis test), the
app's own hot-path entry points answer each case: ``reply_now`` and, when that needs the store
first, ``reply_later`` (what the hot-path protocol calls), over a memory control store and a
memory live store. Beacons (mutated real captures, :mod:`bench.fuzz_inputs`) go to the
collector, tokens (mutated valid ones, or re-signed by the real key over hostile claims) to
``GET /counts``. Each answer is counted by status and error type (``200`` for accepted); a
*crash* is a 5xx or any exception out of the app. Target: 0 crashes over ≥ 100,000 cases each.

Seeded (``--seed``), so a crash found once is found again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote

import orjson
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.fuzz_inputs import capture_bodies, mutate_beacon, mutate_token, signed_token
from bench.report import Metric, Report, markdown_table
from headcount.http.app import HeadcountApp
from headcount.runtime import Runtime
from headcount.settings import load_settings
from headcount.stores.control import SigningKey
from headcount.stores.control_memory import MemoryControlStore
from headcount.stores.memory import MemoryLiveStore

__all__ = ["FuzzOptions", "FuzzTally", "fuzz", "run"]

KEY_ID = "fuzz-key"
CAPTURED_ENV_KEYS = ("testenv123",)


@dataclass(frozen=True)
class FuzzOptions:
    cases: int = 100_000  # per target
    seed: int = 0


@dataclass
class FuzzTally:
    beacons: Counter[str]
    events: Counter[str]  # reasons of rejected events named in the answers
    tokens: Counter[str]
    seconds: float

    @property
    def crashes(self) -> int:
        return sum(
            n
            for tally in (self.beacons, self.tokens)
            for outcome, n in tally.items()
            if outcome.startswith("crash")
        )


def _outcome(reply: tuple[int, list[tuple[str, str]], bytes]) -> tuple[str, object]:
    status, _, body = reply
    if status >= 500:
        return f"crash: {status}", None
    document = orjson.loads(body)
    if status == 200:
        return "200", document
    return f"{status} {document['error']['type']}", document


async def _answer(app: HeadcountApp, route: str, query: bytes, body: bytes) -> tuple[str, object]:
    try:
        reply = app.reply_now(route, query, body)
        if reply is None:
            reply = await app.reply_later(route, query, body)
        return _outcome(reply)
    except Exception as exc:  # the point of a fuzzer: anything out of the app is a crash
        return f"crash: {type(exc).__name__}", None


def _app(now: float) -> tuple[HeadcountApp, rsa.RSAPrivateKey]:
    settings = load_settings({"state_file": "", "max_body_bytes": 1024 * 1024}, environ={})
    control = MemoryControlStore()
    for env_key in CAPTURED_ENV_KEYS:
        environment = control.create_environment("fuzz", env_key, int(now))
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    control.add_signing_key(SigningKey(KEY_ID, environment.id, pem, created_at=int(now)))
    runtime = Runtime(settings=settings, control=control, live=MemoryLiveStore(), clock=time.time)
    return HeadcountApp(runtime), key


async def _fuzz(options: FuzzOptions) -> FuzzTally:
    rng = random.Random(f"headcount-fuzz/{options.seed}")
    now = int(time.time())
    app, key = _app(now)
    bodies = capture_bodies()
    valid = [
        signed_token(
            key,
            {"alg": "RS256", "typ": "JWT"},
            {"kid": KEY_ID, "sub": f"video-{i}", "aud": "video_id", "exp": now + 3600},
        )
        for i in range(8)
    ]
    beacons: Counter[str] = Counter()
    events: Counter[str] = Counter()
    tokens: Counter[str] = Counter()
    started = time.perf_counter()
    await app.runtime.start()
    try:
        for _ in range(options.cases):
            outcome, document = await _answer(app, "collect", b"", mutate_beacon(rng, bodies))
            if outcome == "200" and isinstance(document, dict):
                rejected = document["rejected"]
                outcome = "200, some events rejected" if rejected else "200, all accepted"
                events.update(item["reason"] for item in rejected)
            beacons[outcome] += 1
        for _ in range(options.cases):
            token = mutate_token(rng, rng.choice(valid), key, KEY_ID, now)
            query = b"token=" + quote(token, safe="").encode("ascii")
            outcome, _ = await _answer(app, "counts", query, b"")
            tokens["200 (accepted)" if outcome == "200" else outcome] += 1
    finally:
        await app.runtime.stop()
    return FuzzTally(beacons, events, tokens, time.perf_counter() - started)


def fuzz(options: FuzzOptions) -> FuzzTally:
    return asyncio.run(_fuzz(options))


def _table(title: str, tally: Counter[str], *, crashes: bool = True) -> str:
    total = sum(tally.values()) or 1
    rows = [(outcome, f"{n:,}", f"{100 * n / total:.1f} %") for outcome, n in tally.most_common()]
    if crashes and not any(outcome.startswith("crash") for outcome in tally):
        rows.append(("crash", "0", "0.0 %"))
    return markdown_table((title, "cases", "share"), rows)


def run(options: FuzzOptions) -> Report:
    print(f"  {options.cases:,} beacons, then {options.cases:,} tokens...", flush=True)
    tally = fuzz(options)
    details = "\n\n".join(
        [
            _table("collector: outcome per body", tally.beacons),
            _table("rejected events named in 200 answers, by reason", tally.events, crashes=False),
            _table("GET /counts: outcome per token", tally.tokens),
            f"{2 * options.cases:,} cases in {tally.seconds:.0f} s (seed {options.seed}).",
        ]
    )
    metrics = (
        Metric(
            "fuzz: crashes (5xx or exception) over hostile beacons and tokens",
            "0",
            f"{tally.crashes} in {2 * options.cases:,} cases",
            tally.crashes == 0 and options.cases >= 100_000,
        ),
    )
    raw = {
        "cases": options.cases,
        "seed": options.seed,
        "beacons": dict(tally.beacons),
        "events": dict(tally.events),
        "tokens": dict(tally.tokens),
    }
    return Report("fuzz", metrics, details, raw)
