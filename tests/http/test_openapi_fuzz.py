"""schemathesis against a live server (uvicorn with the hot-path protocol, real SQLite control
store, memory live store): for every operation of ``/openapi.json``, generated requests never
get a 5xx, and every answer has a documented status, content type, headers and body.

Requests carry valid credentials most of the time (an access token of the control store for
the System API, a signed viewer-counts token for ``/counts``), so the authenticated paths are
exercised and not only their 401/403. ``/counts/stream`` gets only generated tokens: a valid
one opens a stream that never ends. Bounded: at most 20 cases per operation, ~310 in all (~8 s).
"""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from headcount.http.openapi import openapi_document
from tests.http.protocol_site import Site

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
schema = schemathesis.openapi.from_dict(openapi_document())
# Three cases in four get valid credentials; the fourth keeps what was generated.
_turns = itertools.cycle([True, True, True, False])


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened


@schema.parametrize()
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same cases every run: a failure here is a bug, not bad luck
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_matches_the_document(
    case: schemathesis.Case, live_site: Site, session: requests.Session
) -> None:
    headers: dict[str, str] = {}
    valid = next(_turns)
    if valid and case.operation.definition.raw.get("security"):
        secret = f"{live_site.token_id}:{live_site.token_secret}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(secret).decode()
    if valid and case.path == "/counts" and case.method == "GET":
        case.query = {**(case.query or {}), "token": live_site.token("schemathesis-video")}
    case.call_and_validate(
        base_url=f"http://127.0.0.1:{live_site.server.port}",
        session=session,
        headers=headers,
        checks=CHECKS,
        timeout=5,
        allow_redirects=False,
    )
