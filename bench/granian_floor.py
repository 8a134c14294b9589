"""The server's own floor: the smallest RSGI app granian can serve, doing what ``bench.bare``
does (a constant counts body for ``GET``; read the body, ``orjson.loads`` it, answer for
``POST``). Headcount runs on granian, so the distance between this row and the bare ceiling is
granian's, and the distance between this row and Headcount's is Headcount's own code.

Served by: ``granian --interface rsgi --workers 1 bench.granian_floor:app``.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from bench.bare import COLLECT_BODY, COUNTS_BODY
from bench.servers import BENCH_DIR, ServerProcess, start_server

__all__ = ["FLOOR_LABEL_GET", "FLOOR_LABEL_POST", "FloorApp", "app", "serve_floor"]

FLOOR_LABEL_GET = "granian RSGI, constant answer (granian's floor)"
FLOOR_LABEL_POST = "granian RSGI, orjson.loads and answer (granian's floor)"

_GET_HEADERS = [
    ("content-type", "application/json"),
    ("access-control-allow-origin", "*"),
    ("cache-control", "public, max-age=1"),
]
_POST_HEADERS = [("content-type", "application/json"), ("access-control-allow-origin", "*")]


class FloorApp:
    async def __rsgi__(self, scope: Any, proto: Any) -> None:
        if scope.proto != "http":
            return
        if scope.method == "POST":
            try:
                orjson.loads(await proto())
            except orjson.JSONDecodeError:
                proto.response_bytes(400, _POST_HEADERS, b'{"error":{"type":"invalid"}}')
                return
            proto.response_bytes(200, _POST_HEADERS, COLLECT_BODY)
            return
        proto.response_bytes(200, _GET_HEADERS, COUNTS_BODY)


app = FloorApp()


@contextlib.contextmanager
def serve_floor(port: int) -> Iterator[ServerProcess]:
    """The floor app under granian's CLI, with the settings ``headcount serve`` passes."""
    root = BENCH_DIR.parent
    argv = [
        str(Path(sys.executable).with_name("granian")),
        "--interface",
        "rsgi",
        "--workers",
        "1",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "bench.granian_floor:app",
    ]
    env = {**os.environ, "PYTHONPATH": str(root)}
    with start_server("granian-floor", argv, port, env=env, cwd=root) as server:
        yield server
