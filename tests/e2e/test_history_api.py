"""History over a real ``headcount serve`` (memory store, then Redis): ``/system/v1/live``
and the Monitoring API subset, read with httpx, mux-python's ``MonitoringApi`` and mux-node's
``data.monitoring`` (both unmodified)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import mux_python
import pytest
from mux_python.exceptions import ApiException, ForbiddenException

from tests.e2e.conftest import HEADCOUNT, LiveServer, run_headcount, start_server
from tests.e2e.scale_kit import beacon
from tests.redis_servers import RedisServer, new_key_prefix

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
LIVE = "/system/v1/live"
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
T = 30  # mux-python's per-call timeout


@pytest.fixture(scope="module", params=["memory", "redis"])
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    directory = tmp_path_factory.mktemp(f"history-{request.param}")
    overrides: dict[str, Any] = {}
    if request.param == "redis":
        redis: RedisServer = request.getfixturevalue("redis_standalone")
        overrides["live_url"] = f"{redis.url}?prefix={new_key_prefix()}"
    live = start_server(directory, **overrides)
    try:
        yield live
    finally:
        live.kill()


def _start(view: str, video: str, viewer: str) -> dict[str, Any]:
    return {
        "event": "viewstart",
        "view_id": view,
        "view_sequence_number": 1,
        "video_id": video,
        "viewer_user_id": viewer,
    }


def _post(server: LiveServer, *events: dict[str, Any]) -> None:
    answer = httpx.post(f"{server.base_url}/collect", content=beacon(server.env_key, *events))
    assert answer.status_code == 200, answer.text


def _until(server: LiveServer, check: Any, path: str, timeout: float = 10) -> Any:
    """The answer to ``path`` once ``check(data)`` holds (Redis records at each sweep, 1/s)."""
    deadline = time.monotonic() + timeout
    while True:
        data = httpx.get(f"{server.base_url}{path}", auth=server.auth).json()["data"]
        if check(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.1)


@pytest.fixture(scope="module")
def watched(server: LiveServer) -> LiveServer:
    """Two viewers on hist-a (one of them twice), one on hist-b; then one hist-a view ends."""
    _post(
        server,
        _start("h1", "hist-a", "ann"),
        _start("h2", "hist-a", "bob"),
        _start("h3", "hist-a", "bob"),
        _start("h4", "hist-b", "cid"),
    )
    _until(server, lambda d: d and d[0]["views"] == 3, LIVE)
    _post(server, {"event": "viewend", "view_id": "h3", "view_sequence_number": 2})
    _until(server, lambda d: d and d[0]["views"] == 2, LIVE)
    return server


def test_top_lists_ids_by_views_now_with_their_peaks(watched: LiveServer) -> None:
    top = httpx.get(f"{watched.base_url}{LIVE}", auth=watched.auth).json()["data"]
    assert [(e["id_type"], e["id"], e["views"], e["viewers"]) for e in top] == [
        ("video_id", "hist-a", 2, 2),
        ("video_id", "hist-b", 1, 1),
    ]
    first = top[0]
    assert (first["peak_views"], first["peak_viewers"]) == (3, 2)
    assert ISO.match(first["peak_views_at"]) and ISO.match(first["peak_viewers_at"])
    assert set(first) == {
        "id_type", "id", "views", "viewers", "peak_views", "peak_viewers",
        "peak_views_at", "peak_viewers_at",
    }  # fmt: skip
    # Pages like the signing-keys list, empty past the end; id_type narrows.
    page = lambda q: httpx.get(f"{watched.base_url}{LIVE}?{q}", auth=watched.auth).json()["data"]  # noqa: E731
    assert [e["id"] for e in page("limit=1&page=2")] == ["hist-b"]
    assert page("limit=1&page=3") == []
    assert page("id_type=asset_id") == []


def test_one_id_has_now_its_peak_and_its_minutes(watched: LiveServer) -> None:
    detail = httpx.get(f"{watched.base_url}{LIVE}/video_id/hist-a", auth=watched.auth).json()
    data = detail["data"]
    assert (data["id_type"], data["id"], data["views"], data["viewers"]) == (
        "video_id", "hist-a", 2, 2,
    )  # fmt: skip
    assert ISO.match(data["updated_at"])
    assert (data["peak"]["views"], data["peak"]["viewers"]) == (3, 2)
    last = data["series"][-1]
    assert set(last) == {"minute", "views", "viewers", "max_views", "max_viewers"}
    assert last["minute"].endswith(":00Z") and last["views"] == 2
    assert max(m["max_views"] for m in data["series"]) == 3
    nobody = httpx.get(f"{watched.base_url}{LIVE}/video_id/nobody", auth=watched.auth).json()
    assert nobody["data"]["views"] == 0 and nobody["data"]["series"] == []
    environment = httpx.get(f"{watched.base_url}{LIVE}/environment", auth=watched.auth).json()
    assert (environment["data"]["views"], environment["data"]["peak"]["views"]) == (3, 4)


def test_bad_requests_get_mux_envelopes(watched: LiveServer) -> None:
    base = watched.base_url
    answer = httpx.get(f"{base}{LIVE}?id_type=title", auth=watched.auth)
    assert answer.status_code == 400 and answer.json()["error"]["type"] == "invalid_parameters"
    assert httpx.get(f"{base}{LIVE}?limit=101", auth=watched.auth).status_code == 400
    assert httpx.get(f"{base}{LIVE}/title/x", auth=watched.auth).status_code == 404
    answer = httpx.get(f"{base}{LIVE}")
    assert answer.status_code == 401 and answer.json()["error"]["type"] == "unauthorized"
    # A System-only token reads no data (as on Mux, where Data needs its own permission).
    created = json.loads(
        run_headcount(
            "access-tokens",
            "create",
            "--environment",
            watched.environment_id,
            "--permission",
            "system:write",
            "--json",
            "--database",
            watched.database_url,
        )
    )
    system_only = (created["id"], created["secret"])
    for path in (LIVE, "/data/v1/monitoring/metrics"):
        answer = httpx.get(f"{base}{path}", auth=system_only)
        assert answer.status_code == 403 and answer.json()["error"]["type"] == "forbidden"


def _monitoring(server: LiveServer, auth: tuple[str, str] | None = None) -> Any:
    username, password = auth or server.auth
    configuration = mux_python.Configuration(
        host=server.base_url, username=username, password=password
    )
    return mux_python.MonitoringApi(mux_python.ApiClient(configuration))


def test_mux_python_reads_the_monitoring_api(watched: LiveServer) -> None:
    api = _monitoring(watched)
    metric = "current-concurrent-viewers"
    metrics = api.list_monitoring_metrics(_request_timeout=T)
    assert [m.name for m in metrics.data] == [metric]
    dimensions = api.list_monitoring_dimensions(_request_timeout=T)
    assert [d.name for d in dimensions.data] == [
        "video_id", "asset_id", "playback_id", "live_stream_id",
    ]  # fmt: skip
    series = api.get_monitoring_timeseries(metric, _request_timeout=T)
    assert series.data[-1].concurrent_viewers == 3 and ISO.match(series.data[-1].date)
    assert len(series.timeframe) == 2
    one = api.get_monitoring_timeseries(metric, filters=["video_id:hist-a"], _request_timeout=T)
    assert one.data[-1].value == 2.0
    rows = api.get_monitoring_breakdown(metric, dimension="video_id", _request_timeout=T)
    assert [(r.value, r.concurrent_viewers) for r in rows.data] == [("hist-a", 2), ("hist-b", 1)]
    ascending = api.get_monitoring_breakdown(
        metric, dimension="video_id", order_direction="asc", _request_timeout=T
    )
    assert [r.value for r in ascending.data] == ["hist-b", "hist-a"]
    timeline = api.get_monitoring_breakdown_timeseries(
        metric, dimension="video_id", limit=1, _request_timeout=T
    )
    assert [v.value for v in timeline.data[-1].values] == ["hist-a"]
    with pytest.raises(ApiException) as refused:
        api.get_monitoring_breakdown(metric, dimension="country", _request_timeout=T)
    assert refused.value.status == 400
    assert json.loads(refused.value.body)["error"]["type"] == "invalid_parameters"
    created = json.loads(
        run_headcount(
            "access-tokens",
            "create",
            "--environment",
            watched.environment_id,
            "--permission",
            "system:read",
            "--json",
            "--database",
            watched.database_url,
        )
    )
    with pytest.raises(ForbiddenException):
        _monitoring(watched, (created["id"], created["secret"])).list_monitoring_metrics(
            _request_timeout=T
        )


def test_mux_node_reads_the_monitoring_api(watched: LiveServer) -> None:
    node = shutil.which("node")
    assert node, "node is required for the mux-node SDK test"
    environment = {
        **os.environ,
        "MUX_BASE_URL": watched.base_url,
        "MUX_TOKEN_ID": watched.token_id,
        "MUX_TOKEN_SECRET": watched.token_secret,
    }
    done = subprocess.run(
        [node, "data_monitoring.mjs", "hist-b"],
        cwd=CLIENTS,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert [m["name"] for m in result["metrics"]["data"]] == ["current-concurrent-viewers"]
    assert len(result["dimensions"]["data"]) == 4
    assert result["timeseries"]["data"][-1]["concurrent_viewers"] == 3
    assert result["filtered"]["data"][-1]["concurrent_viewers"] == 1
    assert [r["value"] for r in result["breakdown"]["data"]] == ["hist-a", "hist-b"]
    assert result["breakdown"]["total_row_count"] == 2
    assert result["breakdownTimeseries"]["data"][-1]["values"][0]["value"] == "hist-a"
    unserved = result["unserved"]
    assert (unserved["name"], unserved["status"]) == ("BadRequestError", 400)


def test_headcount_top_once_prints_the_table(watched: LiveServer) -> None:
    out = run_headcount(
        "top", "--once", "--url", watched.base_url, "--access-token-id", watched.token_id,
        "--access-token-secret", watched.token_secret,
    )  # fmt: skip
    rows = [line for line in out.splitlines() if "hist-" in line]
    assert [re.findall(r"hist-\w|\b\d+\b", row)[:5] for row in rows] == [
        ["1", "hist-a", "2", "2", "3"],
        ["2", "hist-b", "1", "1", "1"],
    ]
    # From Mux's variables, and a wrong secret says what the server said.
    environment = {
        **os.environ,
        "MUX_BASE_URL": watched.base_url,
        "MUX_TOKEN_ID": watched.token_id,
        "MUX_TOKEN_SECRET": "wrong",
    }
    done = subprocess.run(
        [str(Path(HEADCOUNT)), "top", "--once"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "401 unauthorized: Unauthorized request" in done.stderr
