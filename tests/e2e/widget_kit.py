"""What the ``<headcount-viewers>`` browser tests share: one ``headcount serve`` and one
headless Debian Chromium per module, a page of counters (``browser/widget.html``) on its own
origin, a player page (``browser/watch.html``), the requests a page makes, and screenshots.

Screenshots go to ``test-artifacts/widget/`` at the repository root (git-ignored), one PNG per
test step, overwritten by the next run: CI keeps that folder as the run's artefacts.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Request, sync_playwright

from headcount import sign_viewer_counts
from tests.e2e.browser_kit import CHROMIUM_FLAGS, chromium_executable, static_site
from tests.e2e.conftest import LiveServer, start_server

__all__ = [
    "ARTIFACTS",
    "Counters",
    "browser",
    "context",
    "play",
    "server",
    "site",
    "token_for",
]

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "widget"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    # No leeway on `exp`, so a token signed to expire in a few seconds does.
    live = start_server(tmp_path_factory.mktemp("widget-server"), token_leeway=0)
    try:
        yield live
    finally:
        live.kill()


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with static_site() as origin:
        yield origin


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_executable()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_FLAGS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    fresh = browser.new_context()
    try:
        yield fresh
    finally:
        fresh.close()


def token_for(
    server: LiveServer, video_id: str, key: tuple[str, str] | None = None, expires_in: float = 3600
) -> str:
    key_id, private_key = key or server.create_signing_key()
    return sign_viewer_counts(
        video_id, key_id=key_id, private_key=private_key, expires_in=expires_in
    )


@dataclass
class Counters:
    """A page of ``<headcount-viewers>`` (``counter-0``, ``counter-1``...) and every request
    it made to the Headcount server, with its time."""

    page: Page
    server: LiveServer
    requests: list[tuple[float, str]] = field(default_factory=list)  # read through paths()
    console: list[str] = field(default_factory=list)

    @classmethod
    def open(
        cls,
        context: BrowserContext,
        site: str,
        server: LiveServer,
        tokens: list[str],
        **attributes: Any,
    ) -> Counters:
        page = context.new_page()
        counters = cls(page, server)

        def seen(request: Request) -> None:
            if request.url.startswith(server.base_url):
                counters.requests.append((time.monotonic(), request.url))

        page.on("request", seen)
        page.on("console", lambda message: counters.console.append(message.text))
        query = urlencode(
            [("headcount", server.base_url), *(("token", t) for t in tokens), *attributes.items()]
        )
        page.goto(f"{site}/widget.html?{query}")
        page.wait_for_function("window.ready === true", timeout=10_000)
        return counters

    def element(self, index: int, script: str) -> Any:
        """``script`` (a function of the element) evaluated on ``counter-<index>``."""
        return self.page.locator(f"#counter-{index}").evaluate(script)

    def text(self, index: int = 0) -> str:
        return str(
            self.element(index, "e => e.shadowRoot.querySelector('[part=count]').textContent")
        )

    def transport(self, index: int = 0) -> str:
        return str(self.element(index, "e => e.transport"))

    def events(self, type: str | None = None) -> list[dict[str, Any]]:
        recorded: list[dict[str, Any]] = self.page.evaluate("window.events")
        return [e for e in recorded if type is None or e["type"] == type]

    def paths(self, path: str) -> list[tuple[float, dict[str, list[str]]]]:
        """(time, query) of each request to ``path``. Playwright's sync API hands events to
        their listeners only while a call into it runs: one round trip first, so a wait that
        polls this sees requests made meanwhile (without it a poll could wait for ever)."""
        self.page.evaluate("0")
        found = []
        for at, url in self.requests:
            parts = urlsplit(url)
            if parts.path == path:
                found.append((at, parse_qs(parts.query)))
        return found

    def screenshot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.page.locator("#counters").screenshot(path=str(path))
        return path


def play(
    context: BrowserContext, site: str, server: LiveServer, video_id: str, viewer: str
) -> Page:
    """A second page playing ``video_id`` with mux-embed into ``server`` (watch.html)."""
    query = urlencode(
        {
            "collector": f"localhost:{server.port}",
            "env_key": server.env_key,
            "video_id": video_id,
            "viewer": viewer,
        }
    )
    page = context.new_page()
    page.goto(f"{site}/watch.html?{query}")
    assert page.evaluate("window.playStarted") == "playing"
    return page
