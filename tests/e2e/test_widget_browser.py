"""``<headcount-viewers>`` in headless Debian Chromium, against a real ``headcount serve``: the
element on a customer's page (its own origin, ``browser/widget.html``) counts a second page
playing the video with mux-embed (``browser/watch.html``) — over ``/counts/stream``, and with
streams blocked over polling ``/counts`` — asks for a new token when its token expires, and
stops when its signing key is deleted; the ``/demo`` page counts itself.

Screenshots of the elements are saved to ``test-artifacts/widget/`` at the repository root
(git-ignored; see tests/e2e/widget_kit.py), one PNG per step.
"""

from __future__ import annotations

import itertools
import json

import httpx
import pytest
from playwright.sync_api import BrowserContext, Request

from tests.e2e import widget_kit
from tests.e2e.browser_kit import wait_for
from tests.e2e.conftest import LiveServer
from tests.e2e.widget_kit import ARTIFACTS, Counters, play, token_for

pytestmark = pytest.mark.slow

# The module's fixtures (one server, one Chromium for all these tests; a context per test).
server, site, browser, context = (
    widget_kit.server,
    widget_kit.site,
    widget_kit.browser,
    widget_kit.context,
)

PLAY_TIMEOUT = 20.0  # s: first play, viewstart flush, the next event
UNLOAD_TIMEOUT = 10.0  # s: well under the 60 s liveness window, so only `viewend` explains 0
POLL = 15  # s: the smallest poll interval the element allows (Mux's rule)


def test_over_the_stream_one_connection_carries_every_counter(
    context: BrowserContext, site: str, server: LiveServer
) -> None:
    key = server.create_signing_key()
    watched = token_for(server, "widget-stream-video", key)
    other = token_for(server, "widget-stream-other", key)
    counters = Counters.open(context, site, server, [watched, other])
    wait_for(counters.text, "0", 10, "the counter before anyone plays")
    assert counters.transport() == "stream"
    counters.screenshot("stream-0-before")

    player = play(context, site, server, "widget-stream-video", "widget-viewer-1")
    wait_for(counters.text, "1", PLAY_TIMEOUT, "the counter while the video plays")
    assert counters.text(1) == "0"  # the other video's counter
    counters.screenshot("stream-1-playing")

    player.close(run_before_unload=True)
    wait_for(counters.text, "0", UNLOAD_TIMEOUT, "the counter after the player closed")
    counters.screenshot("stream-2-closed")

    assert counters.transport() == "stream" and counters.transport(1) == "stream"
    (stream,) = counters.paths("/counts/stream")  # one EventSource for both elements
    assert stream[1]["token"] == [watched, other]
    assert counters.paths("/counts") == []  # nothing polled
    changes = [e["detail"] for e in counters.events("change") if e["counter"] == 0]
    assert changes == [0, 1, 0]  # detail = views, as Mux's element; one event per change


def test_after_a_server_restart_it_reconnects_by_itself(
    context: BrowserContext, site: str, server: LiveServer
) -> None:
    counters = Counters.open(context, site, server, [token_for(server, "widget-restart")])
    wait_for(counters.text, "0", 10, "the counter before the restart")
    server.restart()  # the stream ends; the browser reconnects (retry: 3000, Last-Event-ID)
    player = play(context, site, server, "widget-restart", "widget-viewer-3")
    wait_for(counters.text, "1", PLAY_TIMEOUT, "the counter after the restart")
    assert counters.transport() == "stream"
    assert len(counters.paths("/counts/stream")) >= 2  # it came back on a new stream
    player.close(run_before_unload=True)


def test_with_streams_blocked_it_polls_counts_no_faster_than_every_15_seconds(
    context: BrowserContext, site: str, server: LiveServer
) -> None:
    token = token_for(server, "widget-poll-video")
    context.route("**/counts/stream*", lambda route: route.abort())  # a proxy refusing streams
    counters = Counters.open(context, site, server, [token], poll=POLL)
    wait_for(counters.text, "0", 10, "the counter before anyone plays")
    wait_for(counters.transport, "poll", 10, "the element giving up on the stream")

    player = play(context, site, server, "widget-poll-video", "widget-viewer-2")
    wait_for(counters.text, "1", POLL + PLAY_TIMEOUT, "the polled counter while the video plays")
    counters.screenshot("poll-1-playing")
    player.close(run_before_unload=True)
    wait_for(counters.text, "0", POLL + UNLOAD_TIMEOUT, "the polled counter after the close")
    counters.screenshot("poll-2-closed")

    # Two tries of the stream, each checked with one /counts; then a poll every 15 s, no faster.
    assert len(counters.paths("/counts/stream")) == 2
    polls = [at for at, _ in counters.paths("/counts")]
    assert len(polls) >= 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(polls[1:])]
    assert min(gaps) >= POLL - 0.5, gaps


def test_without_eventsource_it_polls_at_once_and_never_under_15_seconds(
    context: BrowserContext, site: str, server: LiveServer
) -> None:
    context.add_init_script("delete window.EventSource")
    counters = Counters.open(context, site, server, [token_for(server, "widget-no-es")], poll=5)
    wait_for(counters.text, "0", 10, "the polled counter")
    assert counters.transport() == "poll"
    assert counters.element(0, "e => e.pollInterval") == POLL
    assert any("poll-interval 5 raised to 15" in line for line in counters.console)
    assert counters.paths("/counts/stream") == []
    assert len(counters.paths("/counts")) == 1


def test_compact_locale_aware_numbers_and_a_quiet_live_region(
    context: BrowserContext, site: str, server: LiveServer
) -> None:
    context.add_init_script("delete window.EventSource")
    body = '{"data":[{"views":1234567,"viewers":1234,"updated_at":"2026-01-01T00:00:00Z"}]}'
    context.route(
        "**/counts?*",
        lambda route: route.fulfill(
            body=body, content_type="application/json", headers={"access-control-allow-origin": "*"}
        ),
    )
    token = "any.token.here"  # the answer is the route's
    english = Counters.open(context, site, server, [token, token], show="viewers")
    wait_for(english.text, "1.2K", 10, "viewers, compact, in English")
    assert english.element(0, "e => [e.views, e.viewers]") == [1234567, 1234]
    status = "e => e.shadowRoot.querySelector('[role=status]')"
    assert english.element(0, f"e => ({status})(e).textContent") == "Viewer Count 1,234"
    assert english.element(0, f"e => ({status})(e).getAttribute('aria-live')") == "polite"
    assert english.element(0, "e => e.shadowRoot.querySelector('[part=count]').ariaHidden")
    english.screenshot("format-en-viewers")

    german = Counters.open(context, site, server, [token], lang="de")
    wait_for(german.text, "1,2\u00a0Mio.", 10, "views, compact, in German")
    german.screenshot("format-de-views")


def test_an_expired_token_makes_it_ask_the_page_for_a_new_one(
    context: BrowserContext, site: str, server: LiveServer
) -> None:
    key = server.create_signing_key()
    short = token_for(server, "widget-expiry-video", key, expires_in=4)
    fresh = token_for(server, "widget-expiry-video", key)
    counters = Counters.open(context, site, server, [short])
    counters.page.evaluate("token => window.nextTokens.push(token)", fresh)
    wait_for(counters.text, "0", 10, "the counter with a token about to expire")

    wait_for(lambda: len(counters.events("tokenexpired")), 1, 15, "the tokenexpired event")
    (asked,) = counters.events("tokenexpired")
    assert asked["detail"]["token"] == short
    assert asked["detail"]["error"]["type"] == "expired_token"
    (error,) = counters.events("error")
    assert error["detail"]["type"] == "expired_token"  # the envelope's error object

    # The page answered with a new token: the element streams again with it.
    wait_for(counters.transport, "stream", 10, "the element after the new token")
    wait_for(
        lambda: [q["token"] for _, q in counters.paths("/counts/stream")][-1:],
        [[fresh]],
        10,
        "the stream reopened with the new token",
    )
    assert counters.text() == "0"
    counters.screenshot("expired-then-refreshed")


def test_a_plain_eventsource_stops_for_good_once_its_token_expired(
    context: BrowserContext, site: str, server: LiveServer
) -> None:
    # The stream's side of the expiry, without the element (which closes its EventSource
    # itself on the `error` event): the browser's own reconnect is refused (403 + envelope)
    # and EventSource gives up, with no retry loop.
    token = token_for(server, "widget-plain-es", expires_in=3)
    counters = Counters.open(context, site, server, [])
    counters.page.evaluate(
        """([host, token]) => {
            window.seen = [];
            const url = `${host}/counts/stream?token=${token}`;
            const source = (window.source = new EventSource(url));
            source.onmessage = (e) => window.seen.push(["message", JSON.parse(e.data)]);
            source.addEventListener("error", (e) => window.seen.push(["error", e.data ?? null]));
        }""",
        [server.base_url, token],
    )
    wait_for(lambda: counters.page.evaluate("window.source.readyState"), 2, 20, "EventSource")
    seen = counters.page.evaluate("window.seen")
    assert seen[0][0] == "message" and seen[0][1]["data"][0]["views"] == 0
    server_errors = [json.loads(data) for kind, data in seen if kind == "error" and data]
    assert [e["error"]["type"] for e in server_errors] == ["expired_token"]
    tries = len(counters.paths("/counts/stream"))
    assert tries == 2  # the stream, then one reconnect answered 403
    counters.page.wait_for_timeout(4000)  # longer than the stream's retry: 3000
    assert len(counters.paths("/counts/stream")) == tries


def test_a_deleted_signing_key_stops_its_counter_for_good_and_only_that_one(
    context: BrowserContext, site: str, server: LiveServer
) -> None:
    key = server.create_signing_key()
    tokens = [token_for(server, "widget-deleted", key), token_for(server, "widget-kept")]
    counters = Counters.open(context, site, server, tokens)
    wait_for(counters.text, "0", 10, "the counter before the key is deleted")

    deleted = httpx.delete(
        f"{server.base_url}/system/v1/signing-keys/{key[0]}", auth=server.auth, timeout=10
    )
    assert deleted.status_code == 204
    wait_for(counters.transport, "stopped", 10, "the element after its key was deleted")
    (error,) = counters.events("error")
    assert error["detail"]["type"] == "unknown_key"
    assert error["counter"] == 0
    assert counters.events("tokenexpired") == []
    assert counters.transport(1) == "stream" and counters.text(1) == "0"
    counters.screenshot("deleted-key-stopped")

    # Stopped means stopped: no poll, no retry (until the token changes); the other counter
    # keeps the stream it shares (`error-0` ended only the first token's part of it).
    # (The page's own timer, not time.sleep: playwright hands request events to the listener
    # only while a call into it runs, so a sleep would see none whatever the page did.)
    made = len(counters.paths("/counts")) + len(counters.paths("/counts/stream"))
    counters.page.wait_for_timeout(4000)
    assert len(counters.paths("/counts")) + len(counters.paths("/counts/stream")) == made
    assert len(counters.paths("/counts/stream")) == 1 and counters.paths("/counts") == []
    assert counters.transport(0) == "stopped" and counters.transport(1) == "stream"


def test_the_demo_page_counts_its_own_video(context: BrowserContext, server: LiveServer) -> None:
    page = context.new_page()
    origins: set[str] = set()

    def seen(request: Request) -> None:
        origins.add(request.url.split("/")[2])

    page.on("request", seen)
    assert f"Demo: http://localhost:{server.port}/demo" in server.log()  # what make run prints
    # 127.0.0.1 is sent to localhost, the one host mux-embed posts to over plain http.
    page.goto(f"http://127.0.0.1:{server.port}/demo")
    assert page.url == f"http://localhost:{server.port}/demo"

    def count(element_id: str) -> str:
        return str(
            page.locator(f"#{element_id}").evaluate(
                "e => e.shadowRoot.querySelector('[part=count]').textContent"
            )
        )

    wait_for(lambda: count("views"), "1", PLAY_TIMEOUT, "the demo's views")
    assert count("viewers") == "1"
    assert page.locator("#views").evaluate("e => e.transport") == "stream"
    assert page.locator("#warning").is_hidden()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo.png"))
    # Everything the demo loads comes from Headcount itself.
    assert origins <= {f"127.0.0.1:{server.port}", f"localhost:{server.port}"}, origins

    # A restart deletes the demo's key (its tokens now answer unknown_key); the page asks the
    # new process for a token of its new key and counts on.
    views = page.locator("#views")
    views.evaluate(
        """e => { window.demoErrors = [];
                  e.addEventListener("error", (event) => demoErrors.push(event.detail.type)); }"""
    )
    old_token = views.evaluate("e => e.token")
    server.restart()
    wait_for(lambda: "unknown_key" in page.evaluate("demoErrors"), True, 15, "the old key's end")
    wait_for(lambda: views.evaluate("e => e.transport"), "stream", 15, "the demo's new token")
    assert views.evaluate("e => e.token") != old_token
    wait_for(lambda: count("views"), "1", PLAY_TIMEOUT, "the demo's views after a restart")
