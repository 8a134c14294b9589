"""HotPathProtocol over real sockets, one connection's requests: keep-alive and pipelining
(answers in request order, cold and waiting requests included), the way out when an answer
needs the store, and closing (``Connection: close``, HTTP/1.0).
"""

from __future__ import annotations

import re
import time

from headcount.stores.environment_cache import MISS
from tests.http.protocol_kit import request
from tests.http.protocol_site import (
    Site,
    assert_accepted,
    assert_envelope,
    collect_request,
    counts_request,
    new_video,
    views,
)

UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


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
