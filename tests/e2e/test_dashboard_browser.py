"""The dashboard in headless Debian Chromium, against a real ``headcount serve``: a bad secret
is refused with a clear message; a person signs in with the access token ``headcount init``
printed, sees an id appear and its count move while beacons arrive (posted one by one, and
sent by ``headcount simulate`` playing an audience), opens its chart, creates
a signing key (copied with the button), deletes it after the confirmation step, and signs out;
on a phone-width screen nothing spills sideways and the keyboard reaches the content first.

Screenshots go to ``test-artifacts/dashboard/`` at the repository root (git-ignored), one PNG
per step, overwritten by the next run.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from headcount.core.keys import abbreviate_key
from tests.e2e import widget_kit
from tests.e2e.conftest import HEADCOUNT, LiveServer

pytestmark = pytest.mark.slow

# The widget tests' fixtures: one `headcount serve` and one Chromium for the module.
server, browser, context = widget_kit.server, widget_kit.browser, widget_kit.context

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
UPDATE_TIMEOUT = 15_000  # ms: the page polls every 5 s
_sequence = itertools.count(1)


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _watch(server: LiveServer, video_id: str, view_id: str, viewer: str) -> None:
    """One view starting to play ``video_id`` (what mux-embed's first beacon says)."""
    event = {
        "e": "viewstart",
        "ake": server.env_key,
        "xid": view_id,
        "xsqno": next(_sequence),
        abbreviate_key("video_id"): video_id,
        abbreviate_key("mux_viewer_id"): viewer,
    }
    answer = httpx.post(f"{server.base_url}/", content=json.dumps({"events": [event]}), timeout=10)
    assert answer.status_code == 200, answer.text


def _sign_in(page: Page, server: LiveServer, secret: str) -> None:
    page.goto(f"{server.base_url}/dashboard")
    assert page.url.endswith("/dashboard/sign-in")
    page.get_by_label("Access token id").fill(server.token_id)
    page.get_by_label("Access token secret").fill(secret)
    page.get_by_role("button", name="Sign in").click()


def _cell(page: Page, video_id: str, field: str) -> Locator:
    # Locators, not wait_for_function: the page's CSP (script-src 'self') forbids the eval
    # that a function given as a string needs.
    return page.locator(f"[data-row='video_id/{video_id}'] [data-field={field}]")


def test_a_bad_secret_is_refused_with_a_clear_message(
    context: BrowserContext, server: LiveServer
) -> None:
    assert f"Dashboard: {server.base_url}/dashboard" in server.log()  # what make run prints
    page = context.new_page()
    _sign_in(page, server, "not-the-secret")
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert "Sign-in refused" in alert.inner_text()
    assert page.url.endswith("/dashboard/sign-in")
    _shot(page, "0-bad-secret")


def test_sign_in_watch_an_id_move_manage_a_key_and_sign_out(
    context: BrowserContext, server: LiveServer
) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=server.base_url)
    page = context.new_page()
    _sign_in(page, server, server.token_secret)
    page.get_by_role("heading", name="Live in default").wait_for()
    _shot(page, "1-signed-in")

    _watch(server, "dash-video", "view-a", "viewer-a")
    expect(_cell(page, "dash-video", "views")).to_have_text("1", timeout=UPDATE_TIMEOUT)
    _watch(server, "dash-video", "view-b", "viewer-b")
    expect(_cell(page, "dash-video", "views")).to_have_text("2", timeout=UPDATE_TIMEOUT)
    expect(_cell(page, "dash-video", "peak_views")).to_have_text("2")
    expect(page.locator("[data-row='video_id/dash-video'] .uplot canvas")).to_have_count(1)
    _shot(page, "2-live-id-moved")

    page.get_by_role("link", name="dash-video").click()
    page.get_by_role("heading", name="video_id dash-video").wait_for()
    page.locator("#chart .uplot canvas").wait_for(timeout=UPDATE_TIMEOUT)
    assert page.locator("[data-field=views]").inner_text() == "2"
    _shot(page, "3-id-chart")

    page.get_by_role("link", name="Signing keys").click()
    page.get_by_role("button", name="Create a signing key").click()
    private_key = page.get_by_label("Private key").input_value()
    assert len(private_key) > 1000
    page.get_by_role("button", name="Copy the private key").click()
    page.get_by_text("Copied.").wait_for()
    assert page.evaluate("navigator.clipboard.readText()") == private_key
    key_id = page.locator("section.created h2").inner_text().split()[1]
    _shot(page, "4-key-created")
    page.reload()  # the private key is never shown again
    assert page.get_by_label("Private key").count() == 0

    page.get_by_role("link", name=f"Delete key {key_id}").click()
    page.get_by_role("button", name=f"Delete key {key_id}").wait_for()
    _shot(page, "5-key-delete-confirmation")
    page.get_by_role("button", name=f"Delete key {key_id}").click()
    page.get_by_text(f"Key {key_id} deleted").wait_for()
    keys = httpx.get(f"{server.base_url}/system/v1/signing-keys", auth=server.auth, timeout=10)
    assert key_id not in {k["id"] for k in keys.json()["data"]}
    _shot(page, "6-key-deleted")

    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for()
    page.goto(f"{server.base_url}/dashboard/signing-keys")
    assert page.url.endswith("/dashboard/sign-in")
    _shot(page, "7-signed-out")


def test_an_id_the_simulator_plays_appears_and_its_count_moves(
    context: BrowserContext, server: LiveServer
) -> None:
    page = context.new_page()
    _sign_in(page, server, server.token_secret)
    page.get_by_role("heading", name="Live in default").wait_for()
    # A real-time audience (speed 1) whose 16 viewers arrive over its 25 seconds: the count
    # of its one video climbs while the page polls every 5 s.
    audience = ["--viewers", "16", "--videos", "1", "--duration", "25", "--speed", "1"]
    audience += ["--mean-watch", "600", "--seed", "5", "--video-prefix", "dash-sim-", "--json"]
    simulator = subprocess.Popen(
        [HEADCOUNT, "simulate", "--url", server.base_url, "--env-key", server.env_key, *audience],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        views = _cell(page, "dash-sim-1", "views")
        expect(views).to_have_text(re.compile(r"^[1-9][0-9]*$"), timeout=UPDATE_TIMEOUT)
        first = views.inner_text()
        expect(views).not_to_have_text(first, timeout=2 * UPDATE_TIMEOUT)
        _shot(page, "8-simulated-audience")
    finally:
        simulator.kill()
        simulator.wait(10)


def test_on_a_phone_nothing_spills_sideways_and_the_keyboard_skips_to_the_content(
    browser: object, server: LiveServer
) -> None:
    phone = browser.new_context(viewport={"width": 375, "height": 740})  # type: ignore[attr-defined]
    try:
        page = phone.new_page()
        _watch(server, "dash-phone-video-with-a-rather-long-id", "view-p", "viewer-p")
        _sign_in(page, server, server.token_secret)
        page.locator("#top .uplot canvas").first.wait_for(timeout=UPDATE_TIMEOUT)
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        id_cell = page.locator("#top th[scope=row]").first.bounding_box()
        assert id_cell is not None and id_cell["width"] >= 90  # an id stays readable
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        _shot(page, "8-phone")
    finally:
        phone.close()
