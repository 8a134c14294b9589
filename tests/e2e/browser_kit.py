"""What a real-browser test needs: Debian's Chromium with this machine's flags, the pages of
``browser/`` (and mux-embed's own build as ``/mux.js``) on their own 127.0.0.1 origin, ``/counts``
readings, and bounded polling. Never a downloaded browser: ``executable_path`` is the binary
Debian installs, and a missing one fails the test with the command that installs it."""

from __future__ import annotations

import functools
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.e2e.conftest import LiveServer

__all__ = [
    "CHROMIUM_FLAGS",
    "MUX_EMBED",
    "PAGE_DIR",
    "chromium_executable",
    "read_counts",
    "static_site",
    "wait_for",
]

HERE = Path(__file__).parent
PAGE_DIR = HERE / "browser"
MUX_EMBED = HERE.parent / "clients" / "node_modules" / "mux-embed" / "dist" / "mux.js"
# How this machine runs Chromium: no sandbox as root, no GPU, and no background traffic (the
# network is closed: Chromium's own connections would only fail). Muted autoplay is allowed
# anyway; the policy flag only removes a dependency on Chromium's media-engagement heuristics.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]

T = TypeVar("T")


def chromium_executable() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.fail(
            "Debian's chromium is not installed; the browser tests need it: "
            "`apt-get install -y chromium` (.ci/run installs it when missing)."
        )
    if not MUX_EMBED.is_file():
        pytest.fail("mux-embed is missing: `cd tests/clients && npm ci` (make test does it).")
    return path


class _PageHandler(SimpleHTTPRequestHandler):
    """The pages and the clip from ``browser/``, and mux-embed's build as ``/mux.js``."""

    def translate_path(self, path: str) -> str:
        if path.split("?", 1)[0] == "/mux.js":
            return str(MUX_EMBED)
        return super().translate_path(path)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output quiet


@contextmanager
def static_site() -> Iterator[str]:
    """The pages on their own origin (another port than the collector), so every beacon is
    cross-origin, as in production."""
    handler = functools.partial(_PageHandler, directory=str(PAGE_DIR))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def read_counts(server: LiveServer, token: str) -> tuple[int, int]:
    answer = httpx.get(f"{server.base_url}/counts", params={"token": token}, timeout=10)
    assert answer.status_code == 200, answer.text
    row = answer.json()["data"][0]
    return row["views"], row["viewers"]


def wait_for(read: Callable[[], T], wanted: T, timeout: float, what: str) -> None:
    """Poll ``read`` (bounded in time) until it returns ``wanted``; fail with the last value."""
    deadline = time.monotonic() + timeout
    last = read()
    while last != wanted and time.monotonic() < deadline:
        time.sleep(0.2)
        last = read()
    assert last == wanted, f"{what}: still {last!r} after {timeout}s (wanted {wanted!r})"
