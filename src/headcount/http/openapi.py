"""``GET /openapi.json`` (OpenAPI 3.1) and ``GET /docs/api`` (the same document, for people).

The document is built once from :data:`~headcount.http.openapi_paths.PATHS` and
:data:`~headcount.http.openapi_schemas.SCHEMAS`; the page is rendered on the server from it,
plain HTML with a little inline CSS and no script, so it needs nothing from another host.
*Decision:* the document describes every surface whatever this node's ``--role``; a path of a
surface the node does not serve answers 404 (the description says so).
"""

from __future__ import annotations

import html
import json
import re
from functools import cache
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from headcount import __version__
from headcount.http.openapi_operations import BASIC_AUTH, SECURITY_SCHEMES
from headcount.http.openapi_paths import PATHS, TAGS
from headcount.http.openapi_schemas import SCHEMAS

__all__ = [
    "DOCUMENT_PATH",
    "GET_WITHOUT_HEAD",
    "PAGE_PATH",
    "openapi_document",
    "openapi_page",
    "openapi_routes",
]

DOCUMENT_PATH = "/openapi.json"
PAGE_PATH = "/docs/api"
METHODS: Final = ("get", "post", "put", "patch", "delete", "options")
# GET paths that do not answer HEAD (a stream has no length to announce); every other GET does.
GET_WITHOUT_HEAD: Final = ("/counts/stream",)

_DESCRIPTION = (
    "Headcount is a self-hosted, wire-compatible implementation of Mux's Engagement Counts.\n"
    'Every error is Mux\'s envelope `{"error":{"type":...,"messages":[...]}}`. `HEAD` is '
    "answered wherever `GET` is, except "
    + ", ".join(f"`{path}`" for path in GET_WITHOUT_HEAD)
    + " (answered 405). Any other method on `/counts`, `/counts/stream`, `/` or `/collect` "
    "answers `405 method_not_allowed` with `Allow`. A node started with `--role` serves only "
    "its surfaces; the others answer 404. On every path a request target longer than "
    "`max_url_bytes` answers `414 uri_too_long`, headers past `max_header_bytes` or "
    "`max_headers` `431 headers_too_large`; the operations that take parameters list 414.\n"
)


@cache
def openapi_document() -> dict[str, Any]:
    """The whole description (built once; callers must not change it)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Headcount",
            "version": __version__,
            "description": _DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "tags": TAGS,
        "paths": PATHS,
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


@cache
def _document_bytes() -> bytes:
    return json.dumps(openapi_document(), separators=(",", ":")).encode()


_STYLE = """\
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;
color:#1b1b1b}code,pre{font:13px ui-monospace,monospace}pre{background:#f4f4f4;padding:.6rem;
overflow:auto}section.op{border-top:1px solid #ddd;padding:.4rem 0}.m{display:inline-block;
min-width:6.5rem;font-weight:700;text-transform:uppercase}.dep{color:#a00}table{border-collapse:
collapse}td,th{border:1px solid #ddd;padding:.2rem .5rem;text-align:left;vertical-align:top}"""


_CODE_SPAN: Final = re.compile(r"`([^`]+)`")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _text(text: str) -> str:
    """Prose of the document: escaped, with its `code spans` set as code."""
    return _CODE_SPAN.sub(r"<code>\1</code>", _e(text))


def _schema_name(schema: dict[str, Any]) -> str:
    target = schema.get("$ref", "")
    if target.startswith("#/components/schemas/"):
        name = target.rsplit("/", 1)[1]
        return f'<a href="#schema-{_e(name)}">{_e(name)}</a>'
    return f"<code>{_e(json.dumps(schema))}</code>"


def _content(content: dict[str, Any]) -> str:
    return "; ".join(
        f"<code>{_e(media)}</code> {_schema_name(spec.get('schema', {}))}"
        for media, spec in content.items()
    )


def _operation(method: str, path: str, op: dict[str, Any]) -> str:
    parts = [
        f'<section class="op" id="{_e(op["operationId"])}"><h3><span class="m">{_e(method)}'
        f"</span><code>{_e(path)}</code> — {_e(op['summary'])}"
        + (' <span class="dep">(deprecated)</span>' if op.get("deprecated") else "")
        + "</h3>",
        f"<p>{_text(op['description'])}</p>",
    ]
    for requirement in op.get("security", ()):
        for scheme in requirement:
            cookie = SECURITY_SCHEMES[scheme].get("name", "")
            how = (
                "HTTP Basic with an access token"
                if scheme == BASIC_AUTH
                else f"the dashboard's session cookie <code>{_e(cookie)}</code>"
            )
            parts.append(f"<p>Authentication: {how}.</p>")
    if op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{_e(p['name'])}</code></td><td>{_e(p['in'])}</td>"
            f"<td>{'yes' if p.get('required') else 'no'}</td>"
            f"<td><code>{_e(json.dumps(p['schema']))}</code></td>"
            f"<td>{_text(p.get('description', ''))}</td></tr>"
            for p in op["parameters"]
        )
        parts.append(
            "<table><tr><th>parameter</th><th>in</th><th>required</th><th>schema</th>"
            f"<th></th></tr>{rows}</table>"
        )
    if "requestBody" in op:
        body = op["requestBody"]
        parts.append(
            f"<p>Body: {_content(body['content'])}. {_text(body.get('description', ''))}</p>"
        )
    rows = "".join(
        f"<tr><td>{_e(status)}</td><td>{_text(answer['description'])}</td>"
        f"<td>{_content(answer.get('content', {}))}</td></tr>"
        for status, answer in op["responses"].items()
    )
    parts.append(f"<table><tr><th>status</th><th></th><th>body</th></tr>{rows}</table></section>")
    return "".join(parts)


@cache
def openapi_page() -> bytes:
    """``/docs/api``: every operation by tag, then every schema."""
    document = openapi_document()
    info = document["info"]
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        f"<title>{_e(info['title'])} API</title><style>{_STYLE}</style></head><body>",
        f"<h1>{_e(info['title'])} API <small>{_e(info['version'])}</small></h1>",
        f"<p>{_text(info['description'])}</p>",
        f'<p>Machine-readable: <a href="{DOCUMENT_PATH}">{DOCUMENT_PATH}</a> (OpenAPI '
        f"{_e(document['openapi'])}).</p>",
    ]
    for tag in document["tags"]:
        parts.append(f"<h2>{_e(tag['name'])}</h2><p>{_text(tag['description'])}</p>")
        for path, item in document["paths"].items():
            for method in METHODS:
                op = item.get(method)
                if op is not None and op["tags"][0] == tag["name"]:
                    parts.append(_operation(method, path, op))
    parts.append("<h2>Schemas</h2>")
    for name, schema in document["components"]["schemas"].items():
        parts.append(
            f'<h3 id="schema-{_e(name)}">{_e(name)}</h3>'
            f"<pre>{_e(json.dumps(schema, indent=1))}</pre>"
        )
    parts.append("</body></html>")
    return "".join(parts).encode()


def openapi_routes() -> list[BaseRoute]:
    async def document(request: Request) -> Response:
        return Response(
            _document_bytes(),
            media_type="application/json",
            headers={"access-control-allow-origin": "*", "cache-control": "public, max-age=300"},
        )

    async def page(request: Request) -> Response:
        return Response(
            openapi_page(),
            media_type="text/html; charset=utf-8",
            headers={"cache-control": "public, max-age=300"},
        )

    return [
        Route(DOCUMENT_PATH, document, methods=["GET"]),
        Route(PAGE_PATH, page, methods=["GET"]),
    ]
