"""The ``stream`` benchmark's pure parts on tiny inputs, and its client against the bare SSE
floor over real sockets (50 subscribers, in a second or two)."""

from __future__ import annotations

import asyncio
import math
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from bench.bare import BareStreamProtocol, StreamHub
from bench.sse import Dechunker, EventReader, parse_head, quick_views, views_of
from bench.stream import (
    FD_MARGIN,
    Change,
    fanout_latencies,
    plan_fds,
    quantile,
    report,
    source_addresses,
    split_clients,
    summarize,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_fd_limit_clamps_the_subscribers_and_says_why() -> None:
    clamped = plan_fds(50_000, 1024, 20_000)
    assert clamped.subscribers == 20_000 - FD_MARGIN
    assert clamped.clamped
    assert "20,000" in clamped.reason() and "cannot be measured" in clamped.reason()
    roomy = plan_fds(300, 1024, 20_000)
    assert (roomy.subscribers, roomy.clamped) == (300, False)
    assert plan_fds(50_000, 1024, -1).subscribers == 50_000  # RLIM_INFINITY


def test_clients_share_the_connections_and_get_their_own_addresses() -> None:
    assert split_clients(19_744, 10_000) == [9872, 9872]
    assert split_clients(5, 10) == [5]
    assert split_clients(7, 3) == [3, 2, 2]
    assert split_clients(0, 10) == []
    assert source_addresses(0, 2) == ["127.0.0.2", "127.0.0.3"]
    assert source_addresses(249, 2) == ["127.0.0.251", "127.0.1.2"]


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def test_chunks_and_events_are_read_across_any_split() -> None:
    body = b"retry: 3000\nid: 1\ndata: " + b'{"data":[{"views":3,"viewers":2}]}' + b"\n\n"
    wire = chunk(body) + chunk(b": keep-alive\n\n") + chunk(b"id: 2\r\ndata: x\r\n\r\n")
    for size in (1, 2, 7, len(wire)):
        dechunker, reader = Dechunker(), EventReader()
        events = []
        for start in range(0, len(wire), size):
            events += reader.feed(dechunker.feed(wire[start : start + size]))
        assert [(e.retry, e.event_id, e.comment) for e in events] == [
            (3000, b"1", False),
            (None, None, True),
            (None, b"2", False),
        ]
        assert events[0].data is not None and views_of(events[0].data) == 3
        assert events[2].data == b"x"
    assert quick_views(b'id: 5\ndata: {"data":[{"views":7,"viewers":7}]}\n\n') == 7
    assert quick_views(b"event: counts-1\nid: 5\ndata: {}\n\n") is None
    assert quick_views(b"id: 5\ndata: a\ndata: b\n\n") is None
    last = Dechunker()
    assert last.feed(b"0\r\n\r\n") == b"" and last.done


def test_response_heads_parse_and_refuse_garbage() -> None:
    status, headers = parse_head(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream")
    assert (status, headers["content-type"]) == (200, "text/event-stream")
    with pytest.raises(ValueError):
        parse_head(b"garbage")


def test_fanout_latencies_take_the_first_matching_event_after_each_post() -> None:
    changes = [Change(1, sent=10.0, acked=10.1), Change(0, sent=20.0, acked=20.2)]
    events = [
        [(1.0, 0), (10.3, 1), (20.5, 0)],
        [(1.0, 0), (10.9, 1)],  # never saw the second change
        [],  # never held: left out
    ]
    latencies = fanout_latencies(events, changes)
    assert latencies[0] == [pytest.approx(0.2), pytest.approx(0.8)]
    assert latencies[1][0] == pytest.approx(0.3) and latencies[1][1] == math.inf
    summary = summarize(latencies)
    assert summary.samples == 4 and summary.within_target == 0.75
    assert summary.p99 == math.inf and summary.max == math.inf
    assert quantile([0.1, 0.2, 0.3, 0.4], 0.5) == pytest.approx(0.25)


def _result(kind: str, held: int, per_sub: float, p99: float) -> dict[str, Any]:
    fanout = {"samples": held, "p50": p99 / 2, "p99": p99, "max": p99, "within_target": 1.0}
    return {
        "kind": kind,
        "run": 1,
        "held": held,
        "open_at_end": held,
        "connect_s": 1.0,
        "clients": [held],
        "rss_before": 2**20,
        "bytes_per_subscriber": per_sub,
        "kernel_tcp_bytes_per_subscriber": 0.0,
        "cpu_us_per_frame": 20.0,
        "client_cpu_us_per_frame": 5.0,
        "others_cores": 0.0,
        "fanout": fanout,
        "per_change": [fanout | {"views": 1}],
        "retry_3000": held,
    }


def test_the_report_says_when_the_target_count_cannot_be_measured() -> None:
    plan = plan_fds(50_000, 1024, 20_000)
    held = plan.subscribers
    results = [_result("bare", held, 2048.0, 0.4), _result("headcount", held, 4096.0, 0.6)]
    made = report(plan, results)
    verdicts = {m.name.split(" (")[0]: m for m in made.metrics}
    subscribers = verdicts["stream: subscribers held by one headcount serve process"]
    assert subscribers.passed is None and "NOT MEASURED at 50,000" in subscribers.measured
    memory = next(m for m in made.metrics if m.name.startswith("stream: server memory"))
    assert memory.passed is True and "4.00 KiB" in memory.measured
    assert "2.00x" in next(m for m in made.metrics if "floor (same run)" in m.name).measured
    assert "| headcount serve | 19,744 of 19,744 |" in made.details


def test_the_client_holds_bare_streams_and_reports_each_change(tmp_path: Path) -> None:
    async def exchange(tmp: Path) -> tuple[dict[str, Any], int, dict[str, Any]]:
        loop = asyncio.get_running_loop()
        hub = BareStreamProtocol.hub = StreamHub()
        server = await loop.create_server(BareStreamProtocol, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        argv = [sys.executable, "-m", "bench.stream_client", "--port", str(port)]
        argv += ["--path", "/counts/stream?token=t", "--count", "50", "--rate", "500"]
        argv += ["--sources", "127.0.0.2,127.0.0.3", "--timeout", "5", "--lifetime", "30"]
        client = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, cwd=ROOT
        )
        assert client.stdin is not None and client.stdout is not None
        try:
            ready = orjson.loads(await asyncio.wait_for(client.stdout.readline(), 20))
            hub.change(1)
            count = 0
            for _ in range(100):
                client.stdin.write(b"count 1\n")
                count = orjson.loads(await asyncio.wait_for(client.stdout.readline(), 5))["count"]
                if count == 50:
                    break
                await asyncio.sleep(0.02)
            client.stdin.write(f"dump {tmp / 'dump.json'}\n".encode())
            await asyncio.wait_for(client.stdout.readline(), 5)
            client.stdin.write(b"quit\n")
            await asyncio.wait_for(client.wait(), 10)
        finally:
            if client.returncode is None:
                client.kill()
                await client.wait()
            server.close()
        return ready, count, orjson.loads((tmp / "dump.json").read_bytes())

    ready, count, dump = asyncio.run(exchange(tmp_path))
    assert (ready["ready"], ready["tried"], ready["failures"]) == (50, 50, {})
    assert count == 50
    assert dump["open"] == 50 and dump["retries"] == {"3000": 50}
    assert all([v for _, v in events] == [0, 1] for events in dump["events"])
