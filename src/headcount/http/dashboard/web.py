"""What every dashboard page shares: the templates (package data, autoescaped), the headers
of an answer, form bodies, and the static files (``http/static/``, no CDN, no build step).

Every answer is ``no-store`` (pages show per-environment data, one shows a private key once)
and carries a Content-Security-Policy that allows scripts, styles and fetches from this origin
only: the pages have no inline script, chart data arrives as JSON from the same origin.
"""

from __future__ import annotations

import datetime
from importlib import resources
from typing import Any
from urllib.parse import parse_qsl

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from headcount.errors import BadRequest, NotFound, PayloadTooLarge

__all__ = ["HEADERS", "MAX_FORM_BYTES", "STATIC_PREFIX", "Templates", "read_form", "static_routes"]

STATIC_PREFIX = "/dashboard/static"
MAX_FORM_BYTES = 8 * 1024  # the largest form is a sign-in: two ids, a nonce
HEADERS = {
    "cache-control": "no-store",
    "content-security-policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
_FORM_TYPE = "application/x-www-form-urlencoded"

# name -> (media type, path under http/static/)
_STATIC = {
    "dashboard.css": ("text/css; charset=utf-8", "dashboard.css"),
    "dashboard.js": ("text/javascript; charset=utf-8", "dashboard.js"),
    "uPlot.iife.min.js": ("text/javascript; charset=utf-8", "vendor/uPlot.iife.min.js"),
    "uPlot.min.css": ("text/css; charset=utf-8", "vendor/uPlot.min.css"),
    "LICENSE.uplot": ("text/plain; charset=utf-8", "vendor/LICENSE.uplot"),
}


def _time(epoch: float | None) -> str:
    if epoch is None:
        return "—"
    moment = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


class Templates:
    def __init__(self) -> None:
        self.environment = jinja2.Environment(
            loader=jinja2.PackageLoader("headcount.http.dashboard", "templates"),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.filters["time"] = _time
        self.environment.globals["static"] = STATIC_PREFIX

    def page(
        self,
        name: str,
        context: dict[str, Any],
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> Response:
        body = self.environment.get_template(name).render(**context)
        return Response(
            body,
            status_code=status,
            media_type="text/html; charset=utf-8",
            headers={**HEADERS, **(headers or {})},
        )


async def read_form(request: Request) -> dict[str, str]:
    """A small urlencoded form (the only kind the pages post); repeated fields keep the last."""
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type != _FORM_TYPE:
        raise BadRequest(f"Dashboard forms are posted as {_FORM_TYPE}.")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise PayloadTooLarge(f"A dashboard form is at most {MAX_FORM_BYTES} bytes.")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except UnicodeDecodeError:
        raise BadRequest("The form is not UTF-8.") from None


def static_routes() -> list[BaseRoute]:
    files = {
        name: (media_type, (resources.files("headcount.http") / "static" / path).read_bytes())
        for name, (media_type, path) in _STATIC.items()
    }

    async def asset(request: Request) -> Response:
        found = files.get(request.path_params["name"])
        if found is None:
            raise NotFound()
        media_type, body = found
        headers = {"cache-control": "public, max-age=3600", "x-content-type-options": "nosniff"}
        return Response(body, media_type=media_type, headers=headers)

    return [Route(STATIC_PREFIX + "/{name}", asset, methods=["GET"])]
