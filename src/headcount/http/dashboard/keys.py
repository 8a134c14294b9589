"""The signing keys of the environment in use: list, create, delete (with a confirmation step).

The same operations as the System API (``http/system.py``), through the same functions of
``auth/signing_keys.py`` and the same permissions: listing needs ``system:read``, creating and
deleting ``system:write``. A new key's private key is in the answer to the create form and
nowhere else: the page is ``no-store`` and the key is never stored or logged; reloading the
page does not show it again (the form answers with the page itself, not a redirect, so there
is no URL that shows it).
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from headcount.auth.signing_keys import (
    create_signing_key,
    delete_signing_key,
    visible_signing_key,
)
from headcount.errors import NotFound
from headcount.http.dashboard.gate import Gate, Viewer
from headcount.http.dashboard.web import HEADERS
from headcount.http.system import audit_key_change, page_number
from headcount.stores.control import SYSTEM_READ, SYSTEM_WRITE

__all__ = ["KEYS_PATH", "PAGE_SIZE", "key_routes"]

KEYS_PATH = "/dashboard/signing-keys"
PAGE_SIZE = 25
_MAX_PAGE = 10**6
_MAX_KEY_ID_LENGTH = 128


def _page_number(request: Request) -> int:
    value = page_number(request.query_params.get("page", "1"))
    if value is None:
        return 1
    return min(value, _MAX_PAGE) if value > 0 else 1


def key_routes(gate: Gate) -> list[BaseRoute]:
    templates = gate.templates
    control = gate.runtime.control

    def now() -> int:
        return int(gate.runtime.clock())

    async def listing(
        request: Request, viewer: Viewer, created: tuple[str, str] | None = None
    ) -> Response:
        context = {"viewer": viewer, "title": "Signing keys", "active": "keys", "created": created}
        if not viewer.can(SYSTEM_READ):
            context["message"] = (
                "This access token cannot see signing keys: that needs the System permission "
                "(system:read to list them, system:write to create and delete)."
            )
            return templates.page("message.html", context, status=403)
        page = _page_number(request)
        keys = await run_in_threadpool(
            control.list_signing_keys,
            viewer.environment.id,
            PAGE_SIZE + 1,  # one more says whether there is a next page
            (page - 1) * PAGE_SIZE,
        )
        context |= {
            "keys": keys[:PAGE_SIZE],
            "page": page,
            "has_next": len(keys) > PAGE_SIZE,
            "can_write": viewer.can(SYSTEM_WRITE),
            "deleted": request.query_params.get("deleted", "")[:_MAX_KEY_ID_LENGTH],
        }
        return templates.page("keys.html", context, status=201 if created else 200)

    async def show(request: Request, viewer: Viewer) -> Response:
        return await listing(request, viewer)

    async def create(request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
        if not viewer.can(SYSTEM_WRITE):
            return _no_write(viewer)
        at = now()
        issued = await run_in_threadpool(create_signing_key, control, viewer.environment.id, at)
        audit_key_change("signing_key.create", request, viewer.token, issued.key.id, at)
        return await listing(request, viewer, created=(issued.key.id, issued.private_key))

    def _no_write(viewer: Viewer) -> Response:
        message = "This access token cannot change signing keys: that needs system:write."
        context = {"viewer": viewer, "title": "Signing keys", "active": "keys", "message": message}
        return templates.page("message.html", context, status=403)

    def _key_id(request: Request) -> str:
        key_id: str = request.path_params["key_id"]
        if len(key_id) > _MAX_KEY_ID_LENGTH:
            raise NotFound()
        return key_id

    async def confirm(request: Request, viewer: Viewer) -> Response:
        if not viewer.can(SYSTEM_WRITE):
            return _no_write(viewer)
        key = await run_in_threadpool(
            visible_signing_key, control, viewer.environment.id, _key_id(request)
        )
        context = {"viewer": viewer, "title": "Delete a signing key", "active": "keys", "key": key}
        return templates.page("key_delete.html", context)

    async def delete(request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
        if not viewer.can(SYSTEM_WRITE):
            return _no_write(viewer)
        key_id = _key_id(request)
        at = now()
        await run_in_threadpool(delete_signing_key, control, viewer.environment.id, key_id, at)
        audit_key_change("signing_key.delete", request, viewer.token, key_id, at)
        gate.runtime.signing_key_deleted(key_id)  # this process's caches forget it now
        return RedirectResponse(f"{KEYS_PATH}?deleted={key_id}", status_code=303, headers=HEADERS)

    return [
        Route(KEYS_PATH, gate.page(show), methods=["GET"]),
        Route(KEYS_PATH, gate.form(create), methods=["POST"]),
        Route(KEYS_PATH + "/{key_id}/delete", gate.page(confirm), methods=["GET"]),
        Route(KEYS_PATH + "/{key_id}/delete", gate.form(delete), methods=["POST"]),
    ]
