"""Pages for people: the ``<headcount-viewers>`` element at ``/widget/`` and the ``/demo``.

The element (``static/headcount-viewers.js``, docs/widget.md) is served twice:

- ``/widget/headcount-viewers.js``, cached for :data:`SHORT_CACHE` seconds: a page that links it
  gets a new version of Headcount's element within minutes of an upgrade;
- ``/widget/<version>/headcount-viewers.js``, ``immutable`` for a year, where ``<version>`` is
  the start of the script's SHA-256: a page that pins it never changes under its feet (an
  upgrade answers the old version 404). ``/widget/headcount-viewers.json`` names the current
  versioned URL and its ``integrity`` (subresource integrity) for pages that pin.

Both have ``Access-Control-Allow-Origin: *`` (or the page's origin, with ``cors_origins``): a
module script from another origin needs CORS.

``/demo`` (setting ``demo``) plays a clip monitored by the real mux-embed (vendored, MIT) into
this server's collector, beside the element counting it. Its tokens come from a signing key of
the process's own (:class:`~headcount.http.demo_key.DemoKey`).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from importlib import resources

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from headcount.errors import NotFound
from headcount.http.demo_key import DEMO_VIDEO_ID, DemoKey
from headcount.http.reply import CORS
from headcount.runtime import Runtime

__all__ = ["SHORT_CACHE", "WIDGET_NAME", "Widget", "page_routes"]

WIDGET_NAME = "headcount-viewers.js"
SHORT_CACHE = 300  # s: the unversioned URL follows upgrades within minutes
_IMMUTABLE = "public, max-age=31536000, immutable"
_JAVASCRIPT = "text/javascript; charset=utf-8"
_CORS = dict(CORS)  # the one CORS header (http/reply.py), set per Origin by cors_origins
# Hosts mux-embed would post to over https although the page came over http: the demo sends
# them to the one spelling it posts to over http, a bare localhost.
_LOOPBACK_NAMES = frozenset({"127.0.0.1", "::1"})


def _asset(name: str) -> bytes:
    return (resources.files("headcount.http") / "static" / name).read_bytes()


@dataclass(frozen=True, slots=True)
class Widget:
    body: bytes
    version: str  # the first 16 hex digits of the script's SHA-256
    integrity: str  # "sha384-<base64>", for <script integrity>

    @classmethod
    def load(cls) -> Widget:
        body = _asset(WIDGET_NAME)
        sha384 = base64.b64encode(hashlib.sha384(body).digest()).decode("ascii")
        return cls(body, hashlib.sha256(body).hexdigest()[:16], f"sha384-{sha384}")

    @property
    def path(self) -> str:
        return f"/widget/{self.version}/{WIDGET_NAME}"


def _script(widget: Widget, cache_control: str) -> Response:
    headers = {**_CORS, "cache-control": cache_control, "x-content-type-options": "nosniff"}
    return Response(widget.body, media_type=_JAVASCRIPT, headers=headers)


def widget_routes(widget: Widget) -> list[BaseRoute]:
    async def latest(request: Request) -> Response:
        return _script(widget, f"public, max-age={SHORT_CACHE}")

    async def pinned(request: Request) -> Response:
        if request.path_params["version"] != widget.version:
            raise NotFound(
                "No such version of the element on this server: "
                f"/widget/{WIDGET_NAME.removesuffix('.js')}.json names the current one."
            )
        return _script(widget, _IMMUTABLE)

    async def manifest(request: Request) -> Response:
        document = {"url": widget.path, "version": widget.version, "integrity": widget.integrity}
        headers = {**_CORS, "cache-control": f"public, max-age={SHORT_CACHE}"}
        return JSONResponse(document, headers=headers)

    return [
        Route(f"/widget/{WIDGET_NAME}", latest, methods=["GET"]),
        Route(f"/widget/{{version}}/{WIDGET_NAME}", pinned, methods=["GET"]),
        Route(f"/widget/{WIDGET_NAME.removesuffix('.js')}.json", manifest, methods=["GET"]),
    ]


def demo_routes(runtime: Runtime, widget: Widget) -> list[BaseRoute]:
    demo_key = DemoKey(runtime)
    template = _asset("demo.html").decode("utf-8")
    assets = {
        "video.webm": ("video/webm", _asset("video.webm")),
        "vendor/mux-embed.js": (_JAVASCRIPT, _asset("vendor/mux-embed.js")),
        "vendor/LICENSE.mux-embed": (
            "text/plain; charset=utf-8",
            _asset("vendor/LICENSE.mux-embed"),
        ),
    }

    async def page(request: Request) -> Response:
        if request.url.hostname in _LOOPBACK_NAMES:
            port = request.url.port or 80
            return RedirectResponse(f"http://localhost:{port}/demo", status_code=302)
        environment = await demo_key.environment()
        config = {
            "env_key": environment.env_key if environment is not None else None,
            "video_id": DEMO_VIDEO_ID,
        }
        # JSON inside <script>: "<" escaped so no value can close the element.
        encoded = json.dumps(config).replace("<", "\\u003c")
        html = template.replace("__DEMO_CONFIG__", encoded).replace("__WIDGET_URL__", widget.path)
        return Response(
            html, media_type="text/html; charset=utf-8", headers={"cache-control": "no-store"}
        )

    async def token(request: Request) -> Response:
        issued = await demo_key.token()
        document = {"token": issued.token, "expires_at": issued.expires_at, "id": DEMO_VIDEO_ID}
        # Same-origin only (no CORS): other sites' pages cannot fetch tokens from here.
        return JSONResponse(document, headers={"cache-control": "no-store"})

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            raise NotFound()
        media_type, body = found
        return Response(
            body, media_type=media_type, headers={"cache-control": "public, max-age=3600"}
        )

    return [
        Route("/demo", page, methods=["GET"]),
        Route("/demo/token", token, methods=["GET"]),
        Route("/demo/{name:path}", asset, methods=["GET"]),
    ]


def page_routes(runtime: Runtime) -> list[BaseRoute]:
    """The element always; the demo when the ``demo`` setting is on and this node both
    collects and counts (the page posts beacons and reads counts back from its own host)."""
    widget = Widget.load()
    routes = widget_routes(widget)
    settings = runtime.settings
    if settings.demo and settings.serves("collector") and settings.serves("counts"):
        routes += demo_routes(runtime, widget)
    return routes
