"""Observing a real ``headcount serve``: JSON logs, the access log, audit lines and
``/metrics`` behind a token, over real sockets, read from what the process printed."""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from headcount.sdk.signing import sign_viewer_counts
from tests.e2e.conftest import start_server

METRICS_TOKEN = "metrics-bearer-0123456789"


def test_a_served_node_logs_json_without_secrets_and_guards_its_metrics(tmp_path: Path) -> None:
    audit_file = tmp_path / "audit.jsonl"
    server = start_server(
        tmp_path,
        log_format="json",
        access_log=True,
        audit_log=str(audit_file),
        metrics_token=METRICS_TOKEN,
    )
    try:
        with httpx.Client(base_url=server.base_url, timeout=30) as client:
            assert client.get("/metrics").status_code == 401
            wrong = client.get("/metrics", headers={"authorization": "Bearer nope"})
            assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "unauthorized"
            key_id, private_key = server.create_signing_key()
            token = sign_viewer_counts("observed", key_id=key_id, private_key=private_key)
            for _ in range(2):  # the hot path answers both (the key is in memory by now)
                assert client.get("/counts", params={"token": token}).status_code == 200
            assert client.get("/counts", params={"token": "x.y.z"}).status_code == 403
            page = client.get("/metrics", headers={"authorization": f"Bearer {METRICS_TOKEN}"})
            assert page.status_code == 200
            deleted = client.delete(f"/system/v1/signing-keys/{key_id}", auth=server.auth)
            assert deleted.status_code == 204
    finally:
        assert server.stop() == 0
    log = server.log()

    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page.text)
        for s in family.samples
    }
    assert samples[("headcount_counts_requests_total", (("outcome", "ok"),))] == 2
    assert samples[("headcount_counts_requests_total", (("outcome", "invalid_token"),))] == 1
    # Printed with 6 significant digits, as it once was, this read up to ~4,700 s off.
    assert abs(samples[("headcount_live_updated_at_seconds", ())] - time.time()) < 60
    assert (
        "headcount_store_duration_seconds_count",
        (("backend", "sqlite"), ("store", "control")),
    ) in samples

    # Every log line is one JSON object (the start-up banner before them is the CLI's own).
    records: list[dict[str, Any]] = []
    for line in log.splitlines():
        if line.startswith("{"):
            records.append(json.loads(line))
        else:
            assert not records, f"a line that is not JSON among the log lines: {line!r}"
    assert {r["logger"] for r in records} >= {
        "uvicorn.error",
        "headcount.access",
        "headcount.audit",
    }
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    access = [
        (r["method"], r["path"], r["status"]) for r in records if r["logger"] == "headcount.access"
    ]
    assert ("POST", "/system/v1/signing-keys", 201) in access
    assert access.count(("GET", "/counts?token=REDACTED", 200)) == 2
    assert ("GET", "/counts?token=REDACTED", 403) in access
    assert ("GET", "/metrics", 401) in access

    audited = [json.loads(line) for line in audit_file.read_text().splitlines()]
    assert [(a["action"], a["subject"], a["actor"]) for a in audited] == [
        ("signing_key.create", key_id, f"access_token:{server.token_id}"),
        ("signing_key.delete", key_id, f"access_token:{server.token_id}"),
    ]
    assert all(a["environment_id"] == server.environment_id for a in audited)
    assert all(a["client"].startswith("127.0.0.1:") for a in audited)

    basic = base64.b64encode(f"{server.token_id}:{server.token_secret}".encode()).decode()
    pem_line = base64.b64decode(private_key).decode().splitlines()[1]
    for secret in (token, server.token_secret, basic, private_key, pem_line, METRICS_TOKEN):
        assert secret not in log
        assert secret not in audit_file.read_text()
