"""schemathesis against a live server (uvicorn with the hot-path protocol, real SQLite control
store, memory live store): for every operation of ``/openapi.json``, generated requests never
get a 5xx, and every answer has a documented status, content type, headers and body.

Requests carry valid credentials most of the time (an access token of the control store for
the System, live and Monitoring APIs, a signed viewer-counts token for ``/counts``, a signed-in
dashboard session with its CSRF token in every form, the sign-in nonce in cookie and form), so
the authenticated paths are exercised and not only their 401/403/303. ``/counts/stream`` gets
only generated tokens: a valid one opens a stream that never ends. Bounded: at most 15 generated
cases per operation (4 for the three that make an RSA key), plus schemathesis's own coverage
cases (other methods, edge values), ~1,300 in all (~10 s).
"""

from __future__ import annotations

import base64
import itertools
import re
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

from headcount.http.dashboard.session import COOKIE, SIGN_IN_COOKIE
from headcount.http.openapi import openapi_document
from headcount.http.openapi_operations import BASIC_AUTH, SESSION
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


_SIGN_IN = "/dashboard/sign-in"


@pytest.fixture(scope="module")
def dashboard(live_site: Site) -> tuple[str, str]:
    """A signed-in dashboard session of the site's access token: its cookie and CSRF token."""
    base = f"http://127.0.0.1:{live_site.server.port}"
    with requests.Session() as browser:
        form = browser.get(base + _SIGN_IN, timeout=5).text
        nonce = re.search(r'name="nonce" value="([^"]*)"', form)
        assert nonce is not None
        fields = {"nonce": nonce.group(1), "token_id": live_site.token_id}
        fields["token_secret"] = live_site.token_secret
        signed_in = browser.post(base + _SIGN_IN, data=fields, allow_redirects=False, timeout=5)
        assert signed_in.status_code == 303
        page = browser.get(base + "/dashboard/signing-keys", timeout=5).text
        csrf = re.search(r'name="csrf" value="([^"]*)"', page)
        assert csrf is not None
        return browser.cookies[COOKIE], csrf.group(1)


def _credentials(case: schemathesis.Case, site: Site, dashboard: tuple[str, str]) -> None:
    """Valid credentials for the case's operation, in place of what was generated."""
    security = case.operation.definition.raw.get("security") or [{}]
    if BASIC_AUTH in security[0]:
        secret = f"{site.token_id}:{site.token_secret}".encode()
        case.headers = {**(case.headers or {})}
        case.headers["Authorization"] = "Basic " + base64.b64encode(secret).decode()
    form = case.body if isinstance(case.body, dict) else None
    if SESSION in security[0]:
        case.cookies = {**(case.cookies or {}), COOKIE: dashboard[0]}
        if form is not None:
            form["csrf"] = dashboard[1]
    if case.path == _SIGN_IN and case.method == "POST" and form is not None:
        case.cookies = {**(case.cookies or {}), SIGN_IN_COOKIE: "fuzz-nonce"}
        form["nonce"] = "fuzz-nonce"
    if case.path == "/counts" and case.method == "GET":
        case.query = {**(case.query or {}), "token": site.token("schemathesis-video")}


def _exercise(
    case: schemathesis.Case, site: Site, session: requests.Session, dashboard: tuple[str, str]
) -> None:
    session.cookies.clear()  # only the cookies the case carries
    if next(_turns):
        _credentials(case, site, dashboard)
    case.call_and_validate(
        base_url=f"http://127.0.0.1:{site.server.port}",
        session=session,
        checks=CHECKS,
        timeout=5,
        allow_redirects=False,
    )


# Each of these makes a 2048-bit RSA key (most of this test's time) and reads nothing of the
# request but its credentials: a few cases say as much as many.
_MAKE_KEYS = ["createSigningKey", "createSigningKeyLegacy", "dashboardCreateSigningKey"]
_SETTINGS = {
    "deadline": None,
    "derandomize": True,  # the same cases every run: a failure here is a bug, not bad luck
    "suppress_health_check": list(HealthCheck),
}


@schema.exclude(operation_id=_MAKE_KEYS).parametrize()
@settings(max_examples=15, **_SETTINGS)
def test_every_answer_matches_the_document(
    case: schemathesis.Case,
    live_site: Site,
    session: requests.Session,
    dashboard: tuple[str, str],
) -> None:
    _exercise(case, live_site, session, dashboard)


@schema.include(operation_id=_MAKE_KEYS).parametrize()
@settings(max_examples=4, **_SETTINGS)
def test_every_answer_of_key_creation_matches_the_document(
    case: schemathesis.Case,
    live_site: Site,
    session: requests.Session,
    dashboard: tuple[str, str],
) -> None:
    _exercise(case, live_site, session, dashboard)
