"""Reading ``/openapi.json`` against the app: the routes it serves, and answers checked against
the document's schemas with ``jsonschema`` (Draft 2020-12, what OpenAPI 3.1 uses)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import orjson
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Mount, Route

from headcount.http.app import HeadcountApp
from headcount.http.openapi import METHODS, openapi_document
from tests.http.protocol_site import Site, start_site

__all__ = ["check_answer", "documented_operations", "live_site", "served_operations"]

_BASE = "urn:headcount:openapi"
_CONVERTER = re.compile(r"\{(\w+):\w+\}")  # Starlette's {name:path} is OpenAPI's {name}


@pytest.fixture(scope="module")
def live_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A server as ``headcount serve`` runs it, over a real SQLite control store and the
    memory live store, with an access token and a signing key (one per test module)."""
    running = start_site(tmp_path_factory.mktemp("openapi"))
    try:
        yield running
    finally:
        running.server.stop()


def documented_operations() -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every operation in the document."""
    return {
        (method.upper(), path)
        for path, item in openapi_document()["paths"].items()
        for method in METHODS
        if method in item
    }


def _cold_routes(routes: list[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Route):
            path = _CONVERTER.sub(r"{\1}", prefix + route.path)
            found |= {(method, path) for method in route.methods or ()}
        elif isinstance(route, Mount) and route.routes:
            found |= _cold_routes(list(route.routes), prefix + route.path)
        else:
            raise AssertionError(f"cannot tell what {route!r} serves; teach openapi_kit")
    return found


def served_operations(app: HeadcountApp) -> set[tuple[str, str]]:
    """``(METHOD, path)`` of every route the app serves, from its routing tables: the hot
    routes (``HeadcountApp.hot_routes``, built from ``_route``) and the Starlette cold app,
    ``HEAD`` included."""
    hot = {
        (method.decode(), path.decode())
        for (method, path), route in app.hot_routes().items()
        # A 405 refusal is not an operation (the document's description says where they are).
        if route != "missing" and not route.startswith("not-allowed")
    }
    assert isinstance(app.cold, Starlette)
    return hot | _cold_routes(app.cold.routes)


def _registry() -> Registry:
    resource = Resource.from_contents(openapi_document(), default_specification=DRAFT202012)
    return Registry().with_resource(_BASE, resource)


_REGISTRY = _registry()


def _validate(instance: Any, schema: dict[str, Any], where: str) -> None:
    wrapper = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    if "$ref" in schema and schema["$ref"].startswith("#"):
        wrapper["$ref"] = _BASE + schema["$ref"]
    validator = jsonschema.Draft202012Validator(wrapper, registry=_REGISTRY)
    errors = sorted(validator.iter_errors(instance), key=lambda e: list(e.path))
    assert not errors, f"{where}: {errors[0].message} at {list(errors[0].path)}"


def check_answer(answer: httpx.Response, method: str, path: str) -> None:
    """The answer's status is documented for the operation, and its content type, body and
    required headers are those the document gives."""
    operation = openapi_document()["paths"][path][method.lower()]
    where = f"{method} {path} -> {answer.status_code}"
    documented = operation["responses"].get(str(answer.status_code))
    assert documented is not None, f"{where}: status not in {sorted(operation['responses'])}"
    for name, header in documented.get("headers", {}).items():
        value = answer.headers.get(name)
        if header.get("required"):
            assert value is not None, f"{where}: no {name} header"
        if value is not None:
            _validate(value, header["schema"], f"{where} header {name}")
    content = documented.get("content")
    if not content:
        assert answer.content == b"", f"{where}: a body where none is documented"
        return
    media_type = answer.headers.get("content-type", "").split(";")[0].strip()
    assert media_type in content, f"{where}: content-type {media_type!r} not in {list(content)}"
    body: Any = answer.text
    if media_type == "application/json":
        body = orjson.loads(answer.content)
    _validate(body, content[media_type]["schema"], where)
