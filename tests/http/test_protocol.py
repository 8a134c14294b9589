"""HotPathProtocol over real sockets: raw HTTP/1.1 bytes to uvicorn configured as ``headcount
serve`` configures it, in-process, so the tests can also read the counters that tell which way
a request took (the keyring's ``store_lookups``, the verifier's ``rsa_verifications``, the
collector's env_key cache)."""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest

from headcount.auth.environments import initialize
from headcount.auth.signing_keys import create_signing_key
from headcount.bootstrap import build_runtime
from headcount.http.app import HeadcountApp
from headcount.http.reply import Reply
from headcount.runtime import Runtime
from headcount.sdk.signing import load_private_key, sign_viewer_counts
from headcount.settings import load_settings
from headcount.stores.control import Environment
from headcount.stores.environment_cache import MISS
from tests.http.protocol_kit import (
    TIMEOUT,
    Connection,
    Response,
    ThreadedServer,
    chunked,
    request,
)
from tests.redis_servers import new_key_prefix
from tests.token_kit import forge

MAX_BODY = 8192
# The first POST of a real mux-embed session (six events, viewstart last): one view starts.
CAPTURES = Path(__file__).parents[1] / "fixtures" / "beacons" / "A-video-element" / "raw"
(CAPTURE,) = CAPTURES.glob("001-POST-*viewstart.json")
CAPTURED_ENV_KEY = b"testenv123"
CAPTURED_VIDEO = b"my-video-id-1"
CAPTURED_VIEW = b"f68c3f23-2bed-4c92-9bb9-e81820a8a212"
EVENTS_IN_CAPTURE = 6
UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
PREFLIGHT_HEADERS = [
    "access-control-allow-origin",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-max-age",
]


@dataclass
class Site:
    """A running server and the credentials and counters a test needs."""

    server: ThreadedServer
    app: HeadcountApp
    runtime: Runtime
    environment: Environment
    token_id: str
    token_secret: str
    key_id: str
    private_key: str

    def connect(self) -> Connection:
        return self.server.connect()

    @property
    def store_lookups(self) -> int:
        assert self.app.counts is not None
        return self.app.counts.verifier.keyring.store_lookups

    @property
    def rsa_verifications(self) -> int:
        assert self.app.counts is not None
        return self.app.counts.verifier.rsa_verifications

    def basic_auth(self) -> tuple[str, str]:
        credentials = f"{self.token_id}:{self.token_secret}".encode()
        return "Authorization", "Basic " + base64.b64encode(credentials).decode()

    def token(self, video: str, key: tuple[str, str] | None = None) -> str:
        key_id, private_key = key or (self.key_id, self.private_key)
        return sign_viewer_counts(video, key_id=key_id, private_key=private_key)

    def new_signing_key(self, environment: Environment | None = None) -> tuple[str, str]:
        """A key in the store that this server has never seen."""
        issued = create_signing_key(
            self.runtime.control, (environment or self.environment).id, int(time.time())
        )
        return issued.key.id, issued.private_key

    def new_environment(self) -> Environment:
        environment, _ = initialize(self.runtime.control, f"env-{uuid.uuid4().hex[:8]}", 1)
        return environment

    def beacon(self, video: str, *, environment: Environment | None = None) -> bytes:
        """The captured body, for a new view of ``video`` in ``environment``."""
        env_key = (environment or self.environment).env_key
        return (
            CAPTURE.read_bytes()
            .replace(CAPTURED_ENV_KEY, env_key.encode())
            .replace(CAPTURED_VIDEO, video.encode())
            .replace(CAPTURED_VIEW, str(uuid.uuid4()).encode())
        )


def new_video() -> str:
    return f"video-{uuid.uuid4().hex}"


def counts_request(token: str, method: str = "GET", path: str = "/counts") -> bytes:
    return request(method, f"{path}?token={token}")


def collect_request(body: bytes, path: str = "/collect") -> bytes:
    return request("POST", path, [("Content-Type", "text/plain")], body)


def views(response: Response) -> tuple[int, int]:
    assert response.status == 200, response
    data = response.json()["data"][0]
    return data["views"], data["viewers"]


def assert_accepted(response: Response, events: int = EVENTS_IN_CAPTURE) -> None:
    assert response.status == 200, response
    assert response.json() == {"accepted": events, "rejected": []}
    assert response.header("access-control-allow-origin") == "*"


def assert_envelope(response: Response, status: int, error_type: str) -> None:
    assert response.status == status, response
    body = response.json()
    assert list(body) == ["error"]
    assert body["error"]["type"] == error_type
    assert isinstance(body["error"]["messages"], list) and body["error"]["messages"]
    assert all(isinstance(m, str) and m for m in body["error"]["messages"])
    assert response.header("access-control-allow-origin") == "*"
    assert response.header("cache-control") == "no-store"


def start_site(directory: Path, live_url: str = "memory://", **config: Any) -> Site:
    """A server over a fresh SQLite control store, with an environment, an access token and a
    signing key, whose key and env_key are already in memory (so hot requests stay hot)."""
    settings = load_settings(
        {
            "database_url": f"sqlite:///{directory / 'headcount.db'}",
            "state_file": "",
            "max_body_bytes": MAX_BODY,
            "live_url": live_url,
            # Counts read right after a beacon: no per-node read cache (Redis).
            "snapshot_interval": 0.0,
        },
        environ={},
    )
    runtime = build_runtime(settings)
    environment, issued = initialize(runtime.control, "protocol", int(time.time()))
    key = create_signing_key(runtime.control, environment.id, int(time.time()))
    app = HeadcountApp(runtime)
    server = ThreadedServer(app, **config).start()
    site = Site(
        server=server,
        app=app,
        runtime=runtime,
        environment=environment,
        token_id=issued.token.id,
        token_secret=issued.secret,
        key_id=key.key.id,
        private_key=key.private_key,
    )
    with site.connect() as warm:
        assert warm.exchange(counts_request(site.token("warm-up"))).status == 200
        assert_accepted(warm.exchange(collect_request(site.beacon("warm-up"))))
    return site


@pytest.fixture(scope="module", params=["memory", "redis"])
def site(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Site]:
    """Every test runs twice: with the memory live store (answered in the parser callback)
    and with Redis (answered from a task once the store replied: the awaited hot path)."""
    live_url = "memory://"
    if request.param == "redis":
        live_url = f"{request.getfixturevalue('redis_standalone').url}?prefix={new_key_prefix()}"
    running = start_site(tmp_path_factory.mktemp("protocol"), live_url)
    try:
        yield running
    finally:
        running.server.stop()


# -- keep-alive and pipelining ---------------------------------------------------------------


def test_counts_collect_and_counts_again_on_one_keep_alive_connection(site: Site) -> None:
    video = new_video()
    token = site.token(video)
    lookups, verifications = site.store_lookups, site.rsa_verifications
    with site.connect() as conn:
        first = conn.exchange(counts_request(token))
        assert first.status == 200
        assert first.header("content-type") == "application/json"
        assert first.header("access-control-allow-origin") == "*"
        body = first.json()
        assert list(body) == ["data"] and len(body["data"]) == 1
        assert list(body["data"][0]) == ["views", "viewers", "updated_at"]
        assert UTC_SECONDS.fullmatch(body["data"][0]["updated_at"])
        assert views(first) == (0, 0)
        assert_accepted(conn.exchange(collect_request(site.beacon(video))))
        assert views(conn.exchange(counts_request(token))) == (1, 1)
        for _ in range(20):
            assert views(conn.exchange(counts_request(token))) == (1, 1)
            assert_accepted(conn.exchange(collect_request(site.beacon(new_video()))))
    # All of it in memory: the token verified once, the store never asked.
    assert site.store_lookups == lookups
    assert site.rsa_verifications == verifications + 1


def test_pipelined_hot_requests_are_answered_in_request_order(site: Site) -> None:
    video = new_video()
    token = site.token(video)
    with site.connect() as conn:
        conn.send(
            counts_request(token)
            + collect_request(site.beacon(video))
            + counts_request(token)
            + request("OPTIONS", "/collect")
            + request("GET", "/counts")
            + counts_request(token, "HEAD")
            + counts_request("not.a.token")
            + counts_request(token)
        )
        assert views(conn.read_response()) == (0, 0)
        assert_accepted(conn.read_response())
        assert views(conn.read_response()) == (1, 1)
        assert conn.read_response().status == 204
        assert_envelope(conn.read_response(), 400, "invalid_parameters")
        head = conn.read_response(head=True)
        assert head.status == 200 and head.header("content-length") is not None
        assert_envelope(conn.read_response(), 403, "invalid_token")
        assert views(conn.read_response()) == (1, 1)
        assert conn.closed_by_server(0.2) is False


def test_a_cold_request_keeps_the_hot_requests_written_after_it_behind_it(site: Site) -> None:
    video = new_video()
    token = site.token(video)
    with site.connect() as conn:
        conn.send(
            request("GET", "/system/v1/signing-keys", [site.basic_auth()])
            + counts_request(token)
            + collect_request(site.beacon(video))
            + request("GET", "/healthz")
            + counts_request(token)
            + request("OPTIONS", "/counts")
        )
        keys = conn.read_response()
        assert keys.status == 200, keys
        assert site.key_id in [key["id"] for key in keys.json()["data"]]
        assert views(conn.read_response()) == (0, 0)
        assert_accepted(conn.read_response())
        health = conn.read_response()
        assert (health.status, health.json()) == (200, {"status": "ok"})
        assert views(conn.read_response()) == (1, 1)
        assert conn.read_response().status == 204
        # The connection is back on the hot way afterwards.
        assert views(conn.exchange(counts_request(token))) == (1, 1)


def test_a_request_waiting_for_the_store_keeps_later_pipelined_answers_behind_it(
    site: Site,
) -> None:
    key = site.new_signing_key()
    waiting, known = new_video(), new_video()
    with site.connect() as conn:
        conn.send(
            collect_request(site.beacon(known))
            + counts_request(site.token(waiting, key))  # its key must be read from the store
            + counts_request(site.token(known))
            + collect_request(site.beacon(waiting))
            + counts_request(site.token(waiting, key))
        )
        assert_accepted(conn.read_response())
        assert views(conn.read_response()) == (0, 0)
        assert views(conn.read_response()) == (1, 1)
        assert_accepted(conn.read_response())
        assert views(conn.read_response()) == (1, 1)


# -- the way out when the answer needs I/O ----------------------------------------------------


def test_first_token_of_a_key_not_in_memory_asks_the_store_once(site: Site) -> None:
    key = site.new_signing_key()
    lookups, verifications = site.store_lookups, site.rsa_verifications
    first, second = site.token(new_video(), key), site.token(new_video(), key)
    with site.connect() as conn:
        assert views(conn.exchange(counts_request(first))) == (0, 0)
        assert site.store_lookups == lookups + 1
        assert site.rsa_verifications == verifications + 1
        # The key is in memory now: a new token of it is verified without the store...
        assert views(conn.exchange(counts_request(second))) == (0, 0)
        assert site.store_lookups == lookups + 1
        assert site.rsa_verifications == verifications + 2
        # ...and a repeated one is not even verified again.
        for token in (first, second, first):
            assert views(conn.exchange(counts_request(token))) == (0, 0)
    assert site.store_lookups == lookups + 1
    assert site.rsa_verifications == verifications + 2


def test_first_beacon_of_an_env_key_not_cached_is_accepted(site: Site) -> None:
    environment = site.new_environment()
    key = site.new_signing_key(environment)
    assert site.app.collector is not None
    cache = site.app.collector.environments
    assert cache.cached(environment.env_key, time.time()) is MISS
    video = new_video()
    with site.connect() as conn:
        assert_accepted(conn.exchange(collect_request(site.beacon(video, environment=environment))))
        cached = cache.cached(environment.env_key, time.time())
        assert cached is not MISS and cached is not None and cached.id == environment.id
        assert_accepted(conn.exchange(collect_request(site.beacon(video, environment=environment))))
        assert views(conn.exchange(counts_request(site.token(video, key)))) == (2, 1)
        # The environment's own key reads its own counts, not the site environment's.
        assert views(conn.exchange(counts_request(site.token(video)))) == (0, 0)


# -- HEAD, OPTIONS ----------------------------------------------------------------------------


def test_head_counts_answers_the_get_headers_without_the_body(site: Site) -> None:
    token = site.token(new_video())
    with site.connect() as conn:
        # One write: body bytes after the HEAD answer would be read as the next status line.
        conn.send(counts_request(token) + counts_request(token, "HEAD") + counts_request(token))
        get = conn.read_response()
        head = conn.read_response(head=True)
        again = conn.read_response()
    assert get.status == head.status == again.status == 200
    without_date = [(n, v) for n, v in get.headers if n != "date"]
    assert [(n, v) for n, v in head.headers if n != "date"] == without_date
    assert head.header("content-length") == str(len(get.body))
    assert head.header("date") is not None
    assert again.body == get.body


@pytest.mark.parametrize(
    ("path", "methods"),
    [("/counts", "GET, OPTIONS"), ("/collect", "POST, OPTIONS"), ("/", "POST, OPTIONS")],
)
def test_preflight_is_204_with_cors_headers_and_no_content_length(
    site: Site, path: str, methods: str
) -> None:
    with site.connect() as conn:
        preflight = conn.exchange(
            request(
                "OPTIONS",
                path,
                [
                    ("Origin", "https://player.example"),
                    ("Access-Control-Request-Method", methods.split(",")[0]),
                    ("Access-Control-Request-Headers", "content-type"),
                ],
            )
        )
        assert preflight.status == 204
        assert preflight.header("access-control-allow-origin") == "*"
        assert preflight.header("access-control-allow-methods") == methods
        assert preflight.header("access-control-allow-headers") == "Content-Type, Authorization"
        assert preflight.header("access-control-max-age") == "86400"
        assert preflight.header("content-length") is None  # RFC 9110, 8.6
        assert preflight.header("transfer-encoding") is None
        assert preflight.body == b""
        # Nothing followed the empty line: the next answer on the socket is whole.
        assert views(conn.exchange(counts_request(site.token(new_video())))) == (0, 0)


# -- closing ----------------------------------------------------------------------------------


def test_connection_close_is_answered_with_close_then_the_socket_closes(site: Site) -> None:
    token = site.token(new_video())
    with site.connect() as conn:
        assert views(conn.exchange(counts_request(token))) == (0, 0)
        closing = conn.exchange(request("GET", f"/counts?token={token}", [("Connection", "close")]))
        assert views(closing) == (0, 0)
        assert closing.header("connection") == "close"
        assert conn.closed_by_server()
    with site.connect() as conn:
        posted = conn.exchange(
            request("POST", "/collect", [("Connection", "close")], site.beacon(new_video()))
        )
        assert_accepted(posted)
        assert posted.header("connection") == "close"
        assert conn.closed_by_server()


def test_http_1_0_request_is_answered_then_the_socket_closes(site: Site) -> None:
    with site.connect() as conn:
        answer = conn.exchange(
            request("GET", f"/counts?token={site.token(new_video())}", version="HTTP/1.0")
        )
        assert views(answer) == (0, 0)
        assert answer.header("connection") == "close"
        assert answer.header("content-length") == str(len(answer.body))
        assert conn.closed_by_server()


# -- bodies -----------------------------------------------------------------------------------


def test_chunked_beacon_sent_in_several_writes_is_accepted(site: Site) -> None:
    video = new_video()
    body = site.beacon(video)
    third = len(body) // 3
    parts = [body[:third], body[third : 2 * third], body[2 * third :]]
    with site.connect() as conn:
        conn.send(request("POST", "/collect", [("Transfer-Encoding", "chunked")]))
        for part in parts:
            conn.send(b"%x\r\n%b\r\n" % (len(part), part))
        conn.send(b"0\r\n\r\n")
        assert_accepted(conn.read_response())
        assert views(conn.exchange(counts_request(site.token(video)))) == (1, 1)


def test_a_body_of_exactly_the_limit_is_accepted(site: Site) -> None:
    video = new_video()
    body = site.beacon(video)
    padded = body + b" " * (MAX_BODY - len(body))  # JSON allows trailing whitespace
    assert len(padded) == MAX_BODY
    with site.connect() as conn:
        assert_accepted(conn.exchange(collect_request(padded)))
        assert views(conn.exchange(counts_request(site.token(video)))) == (1, 1)


def test_content_length_over_the_limit_is_413_and_the_connection_goes_on(site: Site) -> None:
    video = new_video()
    body = site.beacon(video)
    too_large = body + b" " * (MAX_BODY + 1 - len(body))
    with site.connect() as conn:
        assert_envelope(conn.exchange(collect_request(too_large)), 413, "payload_too_large")
        # Nothing of the refused body was applied, and its bytes were read away.
        assert views(conn.exchange(counts_request(site.token(video)))) == (0, 0)
        assert_accepted(conn.exchange(collect_request(body)))


def test_chunked_body_growing_over_the_limit_is_413(site: Site) -> None:
    video = new_video()
    with site.connect() as conn:
        conn.send(request("POST", "/collect", [("Transfer-Encoding", "chunked")]))
        conn.send(b"%x\r\n%b\r\n" % (MAX_BODY // 2, b" " * (MAX_BODY // 2)))
        conn.send(b"%x\r\n%b\r\n" % (MAX_BODY // 2, b" " * (MAX_BODY // 2)))
        conn.send(chunked(b"{}"))
        assert_envelope(conn.read_response(), 413, "payload_too_large")
        assert views(conn.exchange(counts_request(site.token(video)))) == (0, 0)
        assert_accepted(conn.exchange(collect_request(site.beacon(video))))
        assert views(conn.exchange(counts_request(site.token(video)))) == (1, 1)


def test_expect_100_continue_gets_100_then_the_answer(site: Site) -> None:
    video = new_video()
    body = site.beacon(video)
    with site.connect() as conn:
        conn.send(
            request(
                "POST",
                "/collect",
                [("Expect", "100-continue"), ("Content-Length", str(len(body)))],
                content_length=False,
            )
        )
        interim = conn.read_response()
        assert (interim.status, interim.headers, interim.body) == (100, [], b"")
        conn.send(body)
        assert_accepted(conn.read_response())
        assert views(conn.exchange(counts_request(site.token(video)))) == (1, 1)


# -- errors and the shared headers ------------------------------------------------------------


def test_refused_tokens_are_403_with_cors_and_no_store(site: Site) -> None:
    signing = load_private_key(site.private_key)
    expired = forge(
        {"alg": "RS256", "typ": "JWT"},
        {"kid": site.key_id, "sub": "v", "aud": "video_id", "exp": int(time.time()) - 3600},
        signing,
    )
    unknown_kid = forge(
        {"alg": "RS256", "typ": "JWT"},
        {"kid": "no-such-key", "sub": "v", "aud": "video_id", "exp": int(time.time()) + 60},
        signing,
    )
    with site.connect() as conn:
        assert_envelope(conn.exchange(counts_request(expired)), 403, "expired_token")
        assert_envelope(conn.exchange(counts_request("abc")), 403, "invalid_token")
        assert_envelope(conn.exchange(counts_request(unknown_kid)), 403, "unknown_key")
        assert_envelope(conn.exchange(counts_request(unknown_kid)), 403, "unknown_key")


def test_missing_token_is_400_invalid_parameters(site: Site) -> None:
    with site.connect() as conn:
        assert_envelope(conn.exchange(request("GET", "/counts")), 400, "invalid_parameters")
        assert_envelope(conn.exchange(request("GET", "/counts?other=1")), 400, "invalid_parameters")
        assert_envelope(conn.exchange(counts_request("")), 400, "invalid_parameters")


def test_hot_answers_carry_a_date_and_no_server_header(site: Site) -> None:
    token = site.token(new_video())
    with site.connect() as conn:
        answers = [
            conn.exchange(counts_request(token)),
            conn.exchange(counts_request(token, "HEAD"), head=True),
            conn.exchange(collect_request(site.beacon(new_video()))),
            conn.exchange(request("OPTIONS", "/counts")),
            conn.exchange(request("GET", "/counts")),
            conn.exchange(counts_request("abc")),
        ]
    for answer in answers:
        assert "server" not in answer.names(), answer
        date = answer.header("date")
        assert date is not None and date.endswith(" GMT"), answer
        assert abs(parsedate_to_datetime(date).timestamp() - time.time()) < 5


def test_malformed_request_line_is_400_and_closes_only_that_connection(site: Site) -> None:
    token = site.token(new_video())
    with site.connect() as bystander, site.connect() as bad:
        assert views(bystander.exchange(counts_request(token))) == (0, 0)
        answer = bad.exchange(b"GET /counts?token=x HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n")
        assert answer.status == 400
        assert answer.header("connection") == "close"
        assert bad.closed_by_server()
        assert views(bystander.exchange(counts_request(token))) == (0, 0)
        assert_accepted(bystander.exchange(collect_request(site.beacon(new_video()))))


def test_answers_to_good_requests_go_out_before_the_400_of_a_bad_one_behind_them(
    site: Site,
) -> None:
    # Hot answers wait in the loop's outbox until the round of I/O ends; the 400 uvicorn
    # writes at once for the bad request must not overtake (or drop) them.
    token = site.token(new_video())
    with site.connect() as conn:
        conn.send(
            counts_request(token)
            + request("OPTIONS", "/counts")
            + b"GET /counts?token=x HTTP/1.1 extra\r\nHost: 127.0.0.1\r\n\r\n"
        )
        assert views(conn.read_response()) == (0, 0)
        assert conn.read_response().status == 204
        assert conn.read_response().status == 400
        assert conn.closed_by_server()


def test_percent_encoded_paths_answer_like_the_canonical_ones(site: Site) -> None:
    video = new_video()
    token = site.token(video)
    with site.connect() as conn:
        assert_accepted(conn.exchange(collect_request(site.beacon(video), "/%63ollect")))
        spelled = conn.exchange(counts_request(token, path="/%63ounts"))
        canonical = conn.exchange(counts_request(token))
        assert views(spelled) == views(canonical) == (1, 1)
        assert spelled.body == canonical.body
        # Both ways frame an answer alike: a length, never chunks.
        assert spelled.header("content-length") == str(len(spelled.body))
        assert spelled.header("transfer-encoding") is None
        head = conn.exchange(counts_request(token, method="HEAD", path="/%63ounts"), head=True)
        assert head.body == b"" and head.header("content-length") == str(len(canonical.body))
        preflight = conn.exchange(request("OPTIONS", "/%63ounts"))
        assert preflight.status == 204
        assert [n for n in preflight.names() if n.startswith("access-control-")] == (
            PREFLIGHT_HEADERS
        )
        assert preflight.header("content-length") is None
        assert preflight.header("transfer-encoding") is None
        assert_envelope(conn.exchange(request("GET", "/%63ounts")), 400, "invalid_parameters")


# -- the connection's life: idle timer and shutdown --------------------------------------------


def test_idle_connection_closes_but_one_whose_request_is_arriving_stays_open(
    tmp_path: Path,
) -> None:
    site = start_site(tmp_path, timeout_keep_alive=1)
    try:
        video = new_video()
        post = collect_request(site.beacon(video))
        with site.connect() as idle, site.connect() as arriving:
            started = time.monotonic()
            assert views(idle.exchange(counts_request(site.token(video)))) == (0, 0)
            assert views(arriving.exchange(counts_request(site.token(video)))) == (0, 0)
            arriving.send(post[:-10])
            # One to two keep-alive periods for the idle one...
            assert idle.closed_by_server(timeout=3.0)
            assert 0.9 < time.monotonic() - started < 2.9
            # ...while the other, mid-body, is still open, and answered when the body ends.
            assert arriving.closed_by_server(timeout=0.3) is False
            arriving.send(post[-10:])
            assert_accepted(arriving.read_response())
    finally:
        site.server.stop()


@pytest.mark.parametrize(
    ("way", "close_within"),
    [
        ("hot", TIMEOUT),
        # The env_key is not cached: the POST falls back to uvicorn, which must still close
        # after it (not after its keep-alive timeout).
        ("asgi", 0.5),
    ],
)
def test_shutdown_answers_a_request_whose_body_is_arriving_then_closes(
    tmp_path: Path, way: str, close_within: float
) -> None:
    site = start_site(tmp_path)
    try:
        environment = site.new_environment() if way == "asgi" else None
        post = collect_request(site.beacon(new_video(), environment=environment))
        with site.connect() as idle, site.connect() as arriving:
            assert views(idle.exchange(counts_request(site.token(new_video())))) == (0, 0)
            arriving.send(post[:-10])
            site.server.server.should_exit = True
            # uvicorn asks every connection to shut down in one go: the idle one closes.
            assert idle.closed_by_server()
            arriving.send(post[-10:])
            answer = arriving.read_response()
            assert_accepted(answer)
            assert answer.header("connection") == "close"
            assert arriving.closed_by_server(timeout=close_within)
    finally:
        site.server.stop()


class _BrokenApp(HeadcountApp):
    """A handler with a bug: what the protocol answers when ``reply_now`` raises."""

    def reply_now(self, route: str, query_string: bytes, body: bytes) -> Reply | None:
        raise RuntimeError("a bug in a hot-path handler")


def test_a_failing_hot_handler_answers_a_500_envelope_and_closes(tmp_path: Path) -> None:
    settings = load_settings(
        {"database_url": f"sqlite:///{tmp_path / 'headcount.db'}", "state_file": ""},
        environ={},
    )
    server = ThreadedServer(_BrokenApp(build_runtime(settings))).start()
    try:
        with server.connect() as conn:
            answer = conn.exchange(request("GET", "/counts?token=x"))
            assert_envelope(answer, 500, "internal_error")
            assert answer.header("connection") == "close"
            assert conn.closed_by_server()  # and nothing after the announced length
        with server.connect() as conn:  # the server itself is fine
            assert conn.exchange(request("GET", "/healthz")).status == 200
    finally:
        server.stop()
