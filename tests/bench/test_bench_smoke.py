"""The benchmarks' pure parts, on tiny inputs, so ``bench/`` cannot rot between runs of
``make bench`` (which needs wrk and two idle cores, and is never part of the suite)."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import jwt
import pytest
from bench.bare import COUNTS_BODY, BareProtocol, BareVerifyProtocol
from bench.bodies import (
    PLACEHOLDERS,
    fill,
    generate_lifecycles,
    popular_videos,
    split_template,
    write_lua_data,
)
from bench.counts import cold_pool_size
from bench.freshness import percentile
from bench.ingest import body_sizes
from bench.memory import measure_here
from bench.redis_cpu import TrivialRun, trivial_pipeline
from bench.redis_memory import measure_memory, memory_breakdown, video_major_batches
from bench.redis_nodes import NodeRun
from bench.redis_script_cost import CASES as SCRIPT_CASES
from bench.redis_script_cost import measure as measure_script_costs
from bench.redis_servers import RedisStats, start_redis
from bench.report import Metric, compare, markdown_table, metrics_table
from bench.servers import BenchError
from bench.snapshot import stall_here
from bench.tokens import mint_token, mint_tokens, private_key_pem
from bench.wrk import Series, WrkRun, parse_wrk
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bench import __main__ as bench_main
from headcount.auth.jwt_verify import check_claims, parse_token, verify_signature
from headcount.core.decode import decode_beacon
from headcount.core.events import event_env_key, read_view_event

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:41080/counts?token=abc
  1 threads and 64 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   540.12us  120.00us   5.00ms   90.00%
    Req/Sec   116.00k     3.00k  120.00k    80.00%
  Latency Distribution
     50%  538.00us
     75%  600.00us
     90%  700.00us
     99%    1.23ms
  1158250 requests in 10.00s, 150.00MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 7
Requests/sec: 115825.12
Transfer/sec:     15.00MB
bench used=98 total=100 wrapped=0
"""


def _run(rps: float, cores: float, p50: float = 1.0, p99: float = 2.0) -> WrkRun:
    return WrkRun(int(rps * 10), 10.0, rps, p50, p99, server_cores=cores)


def test_parse_wrk_reads_rate_latency_errors_and_script_lines() -> None:
    run = parse_wrk(WRK_OUTPUT)
    assert run.requests == 1_158_250
    assert run.seconds == 10.0
    assert run.requests_per_s == 115_825.12
    assert run.p50_ms == pytest.approx(0.538)
    assert run.p99_ms == pytest.approx(1.23)
    assert (run.non_2xx, run.socket_errors) == (7, 3)
    assert run.script == {"used": "98", "total": "100", "wrapped": "0"}
    assert not run.clean


def test_parse_wrk_refuses_output_without_latency_distribution() -> None:
    without = WRK_OUTPUT.replace("  Latency Distribution\n", "").replace("     99%    1.23ms\n", "")
    with pytest.raises(BenchError, match="latency"):
        parse_wrk(without)
    with pytest.raises(BenchError, match="unexpected"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused")


def test_series_medians_and_ratios_use_cpu_when_the_core_was_shared() -> None:
    bare = Series("bare", (_run(100_000, 1.0), _run(90_000, 1.0), _run(110_000, 1.0)))
    app = Series(
        "app", (_run(50_000, 1.0, 2.0, 4.0), _run(60_000, 1.0, 1.0, 3.0), _run(55_000, 1.0))
    )
    assert bare.requests_per_s == 100_000
    assert app.p99_ms == 3.0
    ratio = compare(app, bare)
    assert not ratio.contended
    assert ratio.decisive == pytest.approx(0.55)
    # Half the core went to a neighbour: req/s halves, CPU per request does not.
    shared = Series("app", tuple(_run(r.requests_per_s / 2, 0.5) for r in app.runs))
    ratio = compare(shared, bare)
    assert ratio.contended
    assert ratio.throughput == pytest.approx(0.275)
    assert ratio.decisive == pytest.approx(0.55)
    assert "shared" in ratio.text()


def test_tables_are_markdown_with_verdicts() -> None:
    assert markdown_table(("a", "b"), [("1", "x|y")]) == "| a | b |\n|---|---|\n| 1 | x\\|y |"
    table = metrics_table(
        [Metric("ingest", "≥ 0.40", "0.45", True), Metric("p99", "", "3 ms", None)]
    ).splitlines()
    assert table[2] == "| ingest | ≥ 0.40 | 0.45 | PASS |"
    assert table[3].endswith("| info |")
    assert Metric("x", "", "", False).verdict == "FAIL"


def test_lifecycles_are_deterministic_1_to_3_kb_and_accepted_by_the_decoder() -> None:
    lifecycles = generate_lifecycles("envkey123", count=12, seed=3)
    assert lifecycles == generate_lifecycles("envkey123", count=12, seed=3)
    sizes = body_sizes(lifecycles)
    assert min(sizes) >= 1000 and max(sizes) <= 3100
    ids = {
        PLACEHOLDERS["@@VIEW@@"]: "11111111-0000-4000-8000-000000000001",
        PLACEHOLDERS["@@VIEWER@@"]: "22222222-0000-4000-9000-000000000001",
        PLACEHOLDERS["@@VIDEO@@"]: "bench-video-00042",
        PLACEHOLDERS["@@PLAYER@@"]: "33333333-0000-4000-a000-000000000001",
    }
    names = []
    for lifecycle in lifecycles:
        for body in lifecycle.bodies:
            beacon = decode_beacon(fill(split_template(body), ids))
            for event in beacon.events:
                assert event_env_key(event) == "envkey123"
                view_event = read_view_event(event)
                assert view_event.view_id == ids[PLACEHOLDERS["@@VIEW@@"]]
                assert view_event.video_id == "bench-video-00042"
                names.append(view_event.name)
    assert {"viewstart", "hb", "play", "playing", "requestcompleted", "viewend"} <= set(names)


def test_templates_split_and_fill_back_and_lua_strings_survive_brackets(tmp_path: Path) -> None:
    body = b'{"xid":"@@VIEW@@","e":"]]","vid":"@@VIDEO@@"}'
    template = split_template(body)
    assert template == ['{"xid":"', 1, '","e":"]]","vid":"', 3, '"}']
    assert fill(template, {1: "v", 3: "w"}) == b'{"xid":"v","e":"]]","vid":"w"}'
    lifecycle = generate_lifecycles("k", count=1)[0]
    out = tmp_path / "bodies.lua"
    write_lua_data(out, [lifecycle], popular_videos(videos=3, draws=5))
    text = out.read_text()
    assert text.startswith("return {") and text.count("[[") == text.count("]]")


def test_popular_videos_are_skewed() -> None:
    draws = popular_videos(videos=100, draws=5000, seed=1)
    assert draws.count("bench-video-00000") > 10 * max(draws.count("bench-video-00099"), 1)


def test_minted_tokens_are_distinct_and_accepted_by_pyjwt_and_headcount() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    assert private_key_pem(pem.decode()) == pem.strip()
    now = time.time()
    tokens = mint_tokens(pem, "kid-1", 6, videos=2, now=now, workers=1)
    assert len(set(tokens)) == 6
    decoded = jwt.decode(tokens[5], key.public_key(), algorithms=["RS256"], audience="video_id")
    assert decoded["sub"] == "bench-video-00001"
    assert jwt.get_unverified_header(tokens[0])["kid"] == "kid-1"
    payload_kid = mint_token(
        key, "kid-2", {"sub": "s", "aud": "asset_id", "exp": now + 60}, kid_in_header=False
    )
    parsed = parse_token(payload_kid)
    assert parsed.key_id == "kid-2"
    verify_signature(parsed, key.public_key())
    assert check_claims(parsed.claims, now, 0).id_type == "asset_id"


def test_cold_pool_outlasts_a_bare_verify_loop() -> None:
    assert cold_pool_size(40_000, 5) >= 40_000 * 5 * 1.25


def test_snapshot_stall_is_measured_on_a_tiny_population() -> None:
    result = stall_here(500, 5)
    assert result["views"] == 500 and result["bytes"] > 500 * 50
    assert result["stall_ms"] >= 0 and result["save_ms"] > 0


def test_memory_layouts_build_tiny_populations() -> None:
    for layout in ("headcount", "naive", "floor"):
        result = measure_here(layout, 2000, 20, "trace")
        assert result["views"] == 2000
        assert result["per_view"] > 0


def test_percentile_interpolates() -> None:
    assert percentile([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == 3.0
    assert percentile([0.0, 10.0], 0.99) == pytest.approx(9.9)
    with pytest.raises(ValueError):
        percentile([], 0.5)


def test_bare_server_answers_get_and_post_over_a_real_socket() -> None:
    async def exchange() -> tuple[bytes, bytes, bytes]:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(BareProtocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = json.dumps({"events": []}).encode()
        writer.write(b"GET /counts?token=x HTTP/1.1\r\nHost: b\r\n\r\n")
        writer.write(
            b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )
        writer.write(b"POST / HTTP/1.1\r\nHost: b\r\nContent-Length: 3\r\n\r\n{x}")
        answers = []
        for _ in range(3):
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            answers.append(head + await asyncio.wait_for(reader.readexactly(length), 5))
        writer.close()
        server.close()
        await server.wait_closed()
        return answers[0], answers[1], answers[2]

    get, post, bad = asyncio.run(exchange())
    assert get.startswith(b"HTTP/1.1 200") and get.endswith(COUNTS_BODY)
    assert b"access-control-allow-origin: *" in get
    assert post.startswith(b"HTTP/1.1 200")
    assert bad.startswith(b"HTTP/1.1 400")


def test_bare_verify_server_verifies_every_token_over_a_real_socket() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = time.time()
    good = mint_token(key, "kid-1", {"sub": "v", "aud": "video_id", "exp": now + 60})
    expired = mint_token(key, "kid-1", {"sub": "v", "aud": "video_id", "exp": now - 60})
    tampered = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
    BareVerifyProtocol.public_key = key.public_key()

    async def ask(token: str) -> bytes:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(BareVerifyProtocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /counts?token=%s HTTP/1.1\r\nHost: b\r\n\r\n" % token.encode())
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.close()
        server.close()
        await server.wait_closed()
        return head

    assert asyncio.run(ask(good)).startswith(b"HTTP/1.1 200")
    assert asyncio.run(ask(expired)).startswith(b"HTTP/1.1 400")
    assert asyncio.run(ask(tampered)).startswith(b"HTTP/1.1 400")


def test_main_refuses_unknown_benchmarks(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        bench_main.main(["nonsense"])
    assert exit_info.value.code == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_redis_stats_subtract_and_leave_the_bench_commands_out() -> None:
    before = RedisStats(1.0, 10, {"evalsha": (5, 50), "info": (1, 9)})
    after = RedisStats(1.5, 30, {"evalsha": (25, 250), "info": (3, 27), "config|get": (1, 2)})
    delta = after - before
    assert delta.cpu == pytest.approx(0.5)
    assert delta.reads == 20
    assert delta.calls("evalsha") == 20
    assert delta.work == (20, 200)  # info and config|get are the bench's, not the store's
    both = delta + RedisStats(0.25, 5, {"evalsha": (1, 10), "zadd": (2, 4)})
    assert both.cpu == pytest.approx(0.75) and both.reads == 25
    assert both.work == (23, 214)


def test_node_runs_add_nodes_up_per_request() -> None:
    redis = RedisStats(0.2, 100, {"evalsha": (1300, 0), "zrangebyscore": (200, 0)})
    one = WrkRun(1000, 10.0, 100.0, 1.0, 2.0, server_cores=0.01)  # 100 µs/request
    two = WrkRun(3000, 10.0, 300.0, 1.0, 2.0, server_cores=0.06)  # 200 µs/request
    run = NodeRun((one, two), redis, events=16_000, rejected=0, seconds=10.0)
    assert run.requests == 4000
    assert run.node_us_per_request == pytest.approx(175.0)
    assert run.redis_us_per_request == pytest.approx(50.0)
    assert run.total_us_per_request == pytest.approx(225.0)
    assert run.events_per_redis_second == pytest.approx(80_000)
    assert run.commands_per_read == pytest.approx(15.0)
    assert trivial_pipeline([run]) == 15
    trivial = TrivialRun(10_000, RedisStats(0.01, 1000), 1.0, clients=4, pipeline=10)
    assert trivial.calls_per_redis_second == pytest.approx(1_000_000)
    assert trivial.commands_per_read == pytest.approx(10.0)


def test_video_major_batches_hold_every_view_once_on_its_videos() -> None:
    batches = list(video_major_batches(1003, 10, batch=300))
    events = [e for b in batches for e in b]
    assert len(events) == 1003
    assert len({e.view_id for e in events}) == 1003
    assert len({e.mux_viewer_id for e in events}) == 1003
    per_video: dict[str | None, int] = {}
    for event in events:
        per_video[event.video_id] = per_video.get(event.video_id, 0) + 1
        assert event.name == "viewstart" and event.source_url is not None
    assert sorted(per_video.values()) == [100] * 7 + [101] * 3
    assert all(len(b) >= 300 for b in batches[:-1])  # whole videos per batch


def test_memory_breakdown_scales_sampled_kinds() -> None:
    kinds = memory_breakdown(
        [
            ("all", [("listpack", 100, 5), ("listpack", 300, 7)], 1.0),
            ("sampled", [("hashtable", 50, 2)], 10.0),
        ],
        views=100,
    )
    assert (kinds[0].keys, kinds[0].bytes_per_view, kinds[0].entries) == (2, 4.0, 6)
    assert (kinds[1].keys, kinds[1].sampled, kinds[1].bytes_per_view) == (10, 1, 5.0)
    assert kinds[1].encodings == {"hashtable": 1}


def test_redis_server_starts_and_reads_its_counters(tmp_path: Path) -> None:
    with start_redis("smoke-redis", tmp_path / "redis", cpu="0") as server:
        before = server.stats()
        sha = server.client.script_load("return 1")
        for _ in range(5):
            assert server.client.evalsha(sha, 0) == 1
        delta = server.stats() - before
        assert delta.calls("evalsha") == 5
        assert delta.reads >= 5
        assert server.used_memory() > 0
    assert server.process.poll() is not None


def test_script_costs_model_a_known_view_and_one_op_per_counter_call(tmp_path: Path) -> None:
    """``bench.redis_script_cost`` on a tiny key space: each heartbeat write finds the state it
    names (its compare-and-set stores, three redis.calls), and each counter call is one op."""
    with start_redis("smoke-script-cost", tmp_path / "redis", cpu="0") as server:
        results = measure_script_costs(server.port, subkeys=16, calls=300, rounds=2)
    trivial, empty, write, counter = (results[name] for name in SCRIPT_CASES)
    assert all(len(runs) == 2 for runs in results.values())
    assert [r[1] for r in trivial] == [r[1] for r in empty] == [0.0, 0.0]
    assert [r[1] for r in write] == [3.0, 3.0]  # HGET, HSET, ZADD: never a moved view
    assert all(4.0 <= r[1] < 8.0 for r in counter)  # HMGET, the op, HINCRBY, HSET (+ TTLs)
    assert all(r[0] > 0 for runs in results.values() for r in runs)


def test_redis_memory_fills_a_tiny_population_and_reads_its_encodings(tmp_path: Path) -> None:
    memory = measure_memory(tmp_path, 2000, 20)  # raises unless every view is counted
    assert memory.views == 2000 and memory.per_view > 0
    kinds = {kind.name: kind for kind in memory.kinds}
    assert set(kinds["view state hashes (partition)"].encodings) == {"listpack"}
    assert kinds["video_id counter hashes"].keys > 0
    assert "zset-max-listpack-entries" in memory.limits


def test_history_bench_measures_a_tiny_window() -> None:
    from bench.history import HistoryOptions, run

    report = run(HistoryOptions(ids=5, retention=600.0))
    assert report.raw["held_bytes"] > 0
    assert [m.name for m in report.metrics] == [
        "history memory per id-minute",
        "history observe CPU",
    ]
