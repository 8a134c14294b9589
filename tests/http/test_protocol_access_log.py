"""The access log over real sockets (``access_log`` on): one line per request, whichever way
it was answered (the hot path in the parser callback, its awaited twin with Redis, or the
ASGI way), in request order, and never a secret in it."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator

import pytest

from headcount.http.access_log import redact_target, redact_uvicorn_access
from headcount.http.protocol_access import AccessLoggedProtocol
from headcount.log_config import JsonFormatter
from tests.http.protocol_kit import request
from tests.http.protocol_site import (
    Site,
    assert_accepted,
    collect_request,
    counts_request,
    new_video,
    start_site,
    views,
)
from tests.redis_servers import new_key_prefix


@pytest.fixture(scope="module", params=["memory", "redis"])
def logged_site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    live_url = "memory://"
    if request.param == "redis":
        live_url = f"{request.getfixturevalue('redis_standalone').url}?prefix={new_key_prefix()}"
    site = start_site(
        tmp_path_factory.mktemp("access-log"),
        live_url,
        settings={"access_log": True},
        http=AccessLoggedProtocol,
    )
    try:
        yield site
    finally:
        site.server.stop()


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO, logger="headcount.access"):
        caplog.clear()
        yield caplog


def records(lines: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in lines.records if r.name == "headcount.access"]


def access(lines: pytest.LogCaptureFixture) -> list[tuple[str, str, int]]:
    return [(r.method, r.path, r.status) for r in records(lines)]  # type: ignore[attr-defined]


def test_hot_answers_are_logged_in_request_order_with_the_token_redacted(
    logged_site: Site, lines: pytest.LogCaptureFixture
) -> None:
    token = logged_site.token(new_video())
    with logged_site.connect() as connection:
        # Pipelined: a count, a beacon, a HEAD, a preflight, a refused token; one write.
        connection.send(
            counts_request(token)
            + collect_request(logged_site.beacon("v"))
            + counts_request(token, method="HEAD")
            + request("OPTIONS", "/counts")
            + counts_request("not.a.jwt")
        )
        assert views(connection.read_response()) == (0, 0)
        assert_accepted(connection.read_response())
        assert connection.read_response(head=True).status == 200
        assert connection.read_response().status == 204
        assert connection.read_response().status == 403
    assert access(lines) == [
        ("GET", "/counts?token=REDACTED", 200),
        ("POST", "/collect", 200),
        ("HEAD", "/counts?token=REDACTED", 200),
        ("OPTIONS", "/counts", 204),
        ("GET", "/counts?token=REDACTED", 403),
    ]
    (first, *_) = records(lines)
    assert first.client.startswith("127.0.0.1:")  # type: ignore[attr-defined]
    assert first.getMessage().endswith('"GET /counts?token=REDACTED HTTP/1.1" 200')


def test_a_request_handed_to_the_asgi_way_is_logged_once(
    logged_site: Site, lines: pytest.LogCaptureFixture
) -> None:
    # A key this server never saw: the hot path hands the request over (it needs the store).
    token = logged_site.token(new_video(), key=logged_site.new_signing_key())
    with logged_site.connect() as connection:
        assert connection.exchange(counts_request(token)).status == 200
        # A path spelled another way is never the hot path's.
        assert connection.exchange(request("GET", f"/%63ounts?token={token}")).status == 200
        assert connection.exchange(request("GET", "/healthz")).status == 200
    assert access(lines) == [
        ("GET", "/counts?token=REDACTED", 200),
        ("GET", "/%63ounts?token=REDACTED", 200),
        ("GET", "/healthz", 200),
    ]


def test_a_stream_is_logged_when_it_opens(
    logged_site: Site, lines: pytest.LogCaptureFixture
) -> None:
    token = logged_site.token(new_video())
    with logged_site.connect() as connection:
        connection.send(request("GET", f"/counts/stream?token={token}&token={token}"))
        assert connection.read_head().status == 200
        connection.read_event()
        # The line is written just after the head, in the same callback: once the loop has
        # answered another request, it is there.
        with logged_site.connect() as other:
            assert other.exchange(request("GET", "/healthz")).status == 200
    assert access(lines)[:1] == [("GET", "/counts/stream?token=REDACTED&token=REDACTED", 200)]


def test_no_secret_reaches_the_log(logged_site: Site, lines: pytest.LogCaptureFixture) -> None:
    """A viewer token, a Basic auth header, an access token secret and a new private key go
    through the server; none of them is in any line it logs (access, audit, anything), as
    text or as JSON. The key's creation and deletion are audited, with who did it."""
    lines.set_level(logging.INFO)  # every logger, not only the access log
    token = logged_site.token(new_video())
    auth = logged_site.basic_auth()
    credentials = auth[1].removeprefix("Basic ")
    with logged_site.connect() as connection:
        assert connection.exchange(counts_request(token)).status == 200
        created = connection.exchange(request("POST", "/system/v1/signing-keys", [auth]))
        assert created.status == 201
        key_id = created.json()["data"]["id"]
        private_key = created.json()["data"]["private_key"]
        pem = base64.b64decode(private_key).decode()
        secret_query = f"/system/v1/signing-keys?secret={logged_site.token_secret}"
        assert connection.exchange(request("GET", secret_query, [auth])).status == 200
        deleted = connection.exchange(
            request("DELETE", f"/system/v1/signing-keys/{key_id}", [auth])
        )
        assert deleted.status == 204
    # uvicorn's own access log is off, as in `headcount serve` (pytest still hands the test
    # its records: it attaches to loggers that do not propagate). tests/e2e/test_observe.py
    # reads what a real `headcount serve` prints.
    everything = [r for r in lines.records if r.name != "uvicorn.access"]
    written = "\n".join(
        [r.getMessage() for r in everything] + [JsonFormatter().format(r) for r in everything]
    )
    assert '"POST /system/v1/signing-keys HTTP/1.1" 201' in written
    assert "/system/v1/signing-keys?secret=REDACTED" in written
    pem_body = pem.splitlines()[1]  # a line of the key's base64, not the BEGIN line
    for leaked in (token, logged_site.token_secret, credentials, private_key, pem_body):
        assert leaked not in written
    audited = [
        (r.action, r.subject, r.environment_id, r.actor)  # type: ignore[attr-defined]
        for r in everything
        if r.name == "headcount.audit"
    ]
    actor = f"access_token:{logged_site.token_id}"
    environment = logged_site.environment.id
    assert audited == [
        ("signing_key.create", key_id, environment, actor),
        ("signing_key.delete", key_id, environment, actor),
    ]


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        (b"/counts?token=abc", "/counts?token=REDACTED"),
        (b"/counts?TOKEN=abc&x=1", "/counts?TOKEN=REDACTED&x=1"),
        (b"/counts?%74oken=abc", "/counts?%74oken=REDACTED"),
        (
            b"/x?access_token=a&private_key=b&page=2",
            "/x?access_token=REDACTED&private_key=REDACTED&page=2",
        ),
        (b"/x?api+key=a", "/x?api+key=REDACTED"),
        (b"/x?limit=5", "/x?limit=5"),
        (b"/x", "/x"),
    ],
)
def test_secret_query_parameters_are_redacted(target: bytes, logged: str) -> None:
    assert redact_target(target) == logged


def test_uvicorns_own_access_lines_are_redacted_too() -> None:
    """Stock uvicorn serving create_app logs every request by default: the filter
    create_app installs redacts its lines (their arguments: UVICORN_INTERNALS)."""
    redact_uvicorn_access()
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/counts?token=eyJhbGciOi.x.y", "1.1", 200),
        None,
    )
    assert all(f.filter(record) for f in logging.getLogger("uvicorn.access").filters)
    assert record.getMessage() == '127.0.0.1:5 - "GET /counts?token=REDACTED HTTP/1.1" 200'
