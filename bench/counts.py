"""``GET /counts`` against the pure-Python ceiling and the raw RS256 verify rate.

Three measurements, in one run, server on CPU 0 and wrk on CPU 1:

- **ceiling**: ``bench.bare`` answering the constant counts body, same URL as below; beside it,
  for reading only, the same app under stock uvicorn without the hot-path protocol
  (:func:`bench.deployment.serve_plain_uvicorn`), loaded with the token of (a): what the hot
  path buys;
- **(a) repeated token**: ``headcount serve`` with one valid token on every request (a browser
  polling: the verified-token cache answers), interleaved run by run with the ceiling;
- **(b) fresh token**: a different valid token on every request (cold RS256 verify). Tokens are
  minted beforehand on every core; each kept run gets a freshly started server (empty cache),
  a warm-up with one repeated token that is not in the pool, then walks the pool without
  repeating a token. The pool holds more tokens than even a bare ``RSAPublicKey.verify`` loop
  could consume in a run, and the Lua script reports any wrap-around, which voids the run.

The reference for (b) is the raw ``cryptography`` verify rate of a token, measured pinned to the
server core right before each (b) run, so the two see the same machine. "Raw verify" is read as
verifying a whole token with nothing but ``cryptography`` and ``orjson`` (split, base64url,
``RSAPublicKey.verify``, claims): that is what a request must do at the least. The RSA
operation alone is printed too; against it, 0.6 is out of reach even for the bare ceiling
server (``reference/perf-stack.md`` §3b: 23.5k uncached req/s against 42k RSA verifies/s).
"""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench.bare import COUNTS_BODY
from bench.deployment import Deployment, deployment, serve_headcount, serve_plain_uvicorn
from bench.report import SERIES_HEADERS, Metric, Ratio, Report, compare, markdown_table, series_row
from bench.servers import SERVER_CPU, BenchError, ServerProcess, free_port, start_server
from bench.tokens import VerifyRates, mint_token, mint_tokens
from bench.wrk import FULL_CORE, LUA_DIR, Method, Series, Target, WrkRun, measure_interleaved

__all__ = ["CountsOptions", "cold_pool_size", "run"]

CEILING = "bare uvloop+httptools GET (ceiling)"
HOT = "headcount /counts, repeated token"
BARE_VERIFY = "bare uvloop+httptools GET, raw verify of every token (ceiling of (b))"
PLAIN = "headcount over plain uvicorn (ASGI way, no hot path), repeated token"

# The pool must outlast the fastest possible verifier: a bare RSA verify loop, plus margin for
# the rate measured before minting being lower than the rate during a run.
POOL_MARGIN = 1.3


@dataclass(frozen=True)
class CountsOptions:
    method: Method
    cold_duration: int = 5


def cold_pool_size(rsa_only_rate: float, duration: float) -> int:
    """Tokens needed so a run of ``duration`` seconds can never repeat one."""
    return math.ceil(rsa_only_rate * duration * POOL_MARGIN) + 1000


def _verify_rates() -> VerifyRates:
    done = subprocess.run(
        ["taskset", "-c", SERVER_CPU, sys.executable, "-m", "bench.tokens"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise BenchError(f"the raw verify measurement failed: {done.stderr.strip()}")
    return VerifyRates(**json.loads(done.stdout))


def _hot_token(target: Deployment) -> str:
    """The token of (a): it reads a video outside the pool, so it is never a cold token."""
    key = serialization.load_pem_private_key(target.private_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    claims = {"sub": "bench-video-hot", "aud": "video_id", "exp": int(time.time()) + 3600}
    return mint_token(key, target.key_id, claims)


def _check_answer(url: str) -> None:
    """One request before loading: a 4xx would be cheap and make any rate meaningless."""
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (127.0.0.1 only)
        body = json.loads(answer.read())
    row = body["data"][0]
    if set(row) != {"views", "viewers", "updated_at"}:
        raise BenchError(f"unexpected /counts body: {body}")


def _public_key_file(target: Deployment) -> Path:
    key = serialization.load_pem_private_key(target.private_key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    path = target.directory / "public.pem"
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def _fresh_token_run(
    server: ServerProcess, options: CountsOptions, hot_token: str, pool: Path, number: int
) -> WrkRun:
    """One kept fresh-token run on a just-started server: warm-up, then the pool in order."""
    method = options.method
    _check_answer(server.url(f"/counts?token={hot_token}"))
    warm = Target("warm-up", server, f"/counts?token={hot_token}")
    warm.run(method.warmup, method.connections, 0)
    cold = Target(
        "cold", server, "/", script=LUA_DIR / "tokens.lua", script_args=lambda _: [str(pool)]
    )
    run = cold.run(options.cold_duration, method.connections, number)
    if run.script.get("wrapped") != "0":
        raise BenchError(f"cold run {number} ran out of fresh tokens: {run.script}")
    return run


def _cold_runs(
    target: Deployment, options: CountsOptions, hot_token: str, pool: Path
) -> tuple[Series, Series, list[VerifyRates], list[dict[str, str]]]:
    """(b), run by run: the raw verify rate, the bare server verifying every token (the
    ceiling of this case), then Headcount, each on a freshly started server."""
    method = options.method
    runs: list[WrkRun] = []
    bare_runs: list[WrkRun] = []
    rates: list[VerifyRates] = []
    public_key = _public_key_file(target)
    for number in range(1, method.runs + 1):
        rates.append(_verify_rates())
        port = free_port()
        argv = [sys.executable, "-m", "bench.bare", "--port", str(port)]
        with start_server("bare-verify", [*argv, "--verify-key", str(public_key)], port) as bare:
            bare_runs.append(_fresh_token_run(bare, options, hot_token, pool, number))
        port = free_port()
        with serve_headcount(target, f"headcount-cold-{number}", port) as server:
            runs.append(_fresh_token_run(server, options, hot_token, pool, number))
    scripts = [dict(r.script) for r in runs]
    return (
        Series("headcount /counts, fresh token", tuple(runs)),
        Series(BARE_VERIFY, tuple(bare_runs)),
        rates,
        scripts,
    )


def _cold_ratio(cold: Series, rates: list[VerifyRates], *, rsa_only: bool = False) -> Ratio:
    """Fresh-token /counts against a raw verify rate (the whole token by default, the RSA
    operation alone with ``rsa_only``), by wall time and by CPU time."""
    wall = statistics.median(r.rsa_only if rsa_only else r.full_raw for r in rates)
    cpu = statistics.median(r.rsa_only_cpu if rsa_only else r.full_raw_cpu for r in rates)
    # The micro-benchmark shared its core too if its wall rate fell well below its CPU rate.
    shared = any(r.full_raw < FULL_CORE * r.full_raw_cpu for r in rates)
    return Ratio(
        throughput=cold.requests_per_s / wall,
        cpu=(1e6 / cold.cpu_us_per_request) / cpu,
        contended=cold.contended or shared,
    )


def run(options: CountsOptions) -> Report:
    method = options.method
    with deployment() as target:
        first_rates = _verify_rates()
        # CPU-time rate: what the core could do if nobody else used it during the runs.
        count = cold_pool_size(first_rates.rsa_only_cpu, options.cold_duration)
        print(f"  minting {count:,} RS256 tokens on every core...", flush=True)
        hot_token = _hot_token(target)
        pool_tokens = mint_tokens(target.private_key_pem, target.key_id, count)
        if hot_token in set(pool_tokens) or len(set(pool_tokens)) != count:
            raise BenchError("the token pool has duplicates")
        pool = target.directory / "tokens.txt"
        pool.write_text("\n".join(pool_tokens) + "\n")
        del pool_tokens

        print("  ceiling and (a) repeated token, interleaved...", flush=True)
        bare_port, plain_port, headcount_port = free_port(), free_port(), free_port()
        path = f"/counts?token={hot_token}"
        bare_argv = [sys.executable, "-m", "bench.bare", "--port", str(bare_port)]
        with (
            start_server("bare", bare_argv, bare_port) as bare,
            serve_plain_uvicorn(target, "headcount-plain", plain_port) as plain_server,
            serve_headcount(target, "headcount-hot", headcount_port) as headcount,
        ):
            _check_answer(headcount.url(path))
            _check_answer(plain_server.url(path))
            hot = measure_interleaved(
                [
                    Target(CEILING, bare, path),
                    Target(PLAIN, plain_server, path),
                    Target(HOT, headcount, path),
                ],
                method,
            )
        print("  (b) fresh token per request, a fresh server per run...", flush=True)
        cold, bare_verify, rates, scripts = _cold_runs(target, options, hot_token, pool)

    ceiling = hot[CEILING]
    plain = hot[PLAIN]
    cached = hot[HOT]
    hot_ratio = compare(cached, ceiling)
    cold_ratio = _cold_ratio(cold, rates)
    cold_vs_rsa = _cold_ratio(cold, rates, rsa_only=True)
    bare_verify_ratio = _cold_ratio(bare_verify, rates)
    cold_vs_bare = compare(cold, bare_verify)

    details = "\n\n".join(
        [
            markdown_table(
                SERIES_HEADERS,
                [
                    series_row(ceiling, "1.00 (ceiling)"),
                    series_row(plain, f"{compare(plain, ceiling).decisive:.2f} x ceiling"),
                    series_row(cached, f"{hot_ratio.decisive:.2f} x ceiling"),
                    series_row(bare_verify, f"{bare_verify_ratio.decisive:.2f} x raw token verify"),
                    series_row(cold, f"{cold_ratio.decisive:.2f} x raw token verify"),
                ],
            ),
            markdown_table(
                (
                    "raw `cryptography` RS256 verify, pinned to the server core",
                    "per CPU second (median)",
                    "per wall second (median)",
                    "samples (per CPU s)",
                ),
                [
                    (
                        "split + base64url + `RSAPublicKey.verify` + orjson + exp/aud checks: "
                        "the raw verify of a token, the reference for (b)",
                        f"{statistics.median(r.full_raw_cpu for r in rates):,.0f}",
                        f"{statistics.median(r.full_raw for r in rates):,.0f}",
                        ", ".join(f"{r.full_raw_cpu / 1000:.1f}k" for r in rates),
                    ),
                    (
                        "`RSAPublicKey.verify` alone, on a token already split and decoded",
                        f"{statistics.median(r.rsa_only_cpu for r in rates):,.0f}",
                        f"{statistics.median(r.rsa_only for r in rates):,.0f}",
                        ", ".join(f"{r.rsa_only_cpu / 1000:.1f}k" for r in rates),
                    ),
                ],
            ),
            f"(b) per server CPU second: {1e6 / cold.cpu_us_per_request:,.0f} requests; "
            f"against the RSA operation alone: {cold_vs_rsa.text()}. "
            f"Cold-run token pool: {count:,} tokens; used per run: "
            + ", ".join(s.get("used", "?") for s in scripts)
            + ".",
        ]
    )
    notes = ceiling.notes() + plain.notes() + cached.notes() + bare_verify.notes() + cold.notes()
    if notes:
        details += "\n\nNotes: " + "; ".join(notes) + "."
    problems = (
        ceiling.problems()
        + plain.problems()
        + cached.problems()
        + bare_verify.problems()
        + cold.problems()
    )
    if problems:
        details += "\n\nProblems (these void the affected rows): " + "; ".join(problems)
    metrics = (
        Metric(
            "/counts (a) repeated token ÷ bare ceiling",
            "≥ 0.50",
            f"{hot_ratio.text()}; {cached.requests_per_s:,.0f} vs {ceiling.requests_per_s:,.0f} "
            "req/s",
            hot_ratio.decisive >= 0.5 and cached.clean and ceiling.clean,
        ),
        Metric(
            "/counts (b) fresh token ÷ raw RS256 token verify rate",
            "≥ 0.60",
            f"{cold_ratio.text()}; {cold.requests_per_s:,.0f} req/s",
            cold_ratio.decisive >= 0.6 and cold.clean,
        ),
        Metric(
            "bare ceiling verifying every token the raw way ÷ raw RS256 token verify rate",
            "",
            f"{bare_verify_ratio.text()}; {bare_verify.requests_per_s:,.0f} req/s",
            None,
        ),
        Metric(
            "/counts (b) fresh token ÷ that bare ceiling verifying every token",
            "",
            cold_vs_bare.text(),
            None,
        ),
        Metric(
            "headcount over plain uvicorn (ASGI way, no hot path), /counts (a) ÷ bare ceiling",
            "",
            compare(plain, ceiling).text(),
            None,
        ),
        Metric(
            "/counts (a) repeated token, p50 / p99",
            "",
            f"{cached.p50_ms:.2f} / {cached.p99_ms:.2f} ms",
            None,
        ),
        Metric(
            "/counts (b) fresh token, p50 / p99",
            "",
            f"{cold.p50_ms:.2f} / {cold.p99_ms:.2f} ms",
            None,
        ),
    )
    raw = {
        "method": asdict(method),
        "cold_duration": options.cold_duration,
        "token_pool": count,
        "bare": [asdict(r) for r in ceiling.runs],
        "plain_uvicorn": [asdict(r) for r in plain.runs],
        "hot": [asdict(r) for r in cached.runs],
        "cold": [asdict(r) for r in cold.runs],
        "bare_verify": [asdict(r) for r in bare_verify.runs],
        "cold_scripts": scripts,
        "verify_rates": [first_rates.as_dict()] + [r.as_dict() for r in rates],
        "body": COUNTS_BODY.decode(),
    }
    return Report("counts", metrics, details, raw)
