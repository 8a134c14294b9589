"""The System API: signing keys, wire-compatible with Mux's ``/system/v1/signing-keys``.

Also served at the legacy ``/video/v1/signing-keys`` (mux-node 7 and mux-python's deprecated
``URLSigningKeysApi``) with the same behaviour. Exactly what Mux's SDKs rely on
(``shared reference: mux-api.md``):

- create → **201** (mux-python picks its response model by status and returns ``None`` on 200);
- list pages with ``limit`` (1..100, default 25) and ``page`` (≥ 1, default 1), and answers
  ``{"data":[]}`` past the end (mux-node's ``for await`` stops only on an empty page);
- ``created_at`` is a string of epoch seconds; ``private_key`` only in the create answer;
- delete → **204** without a body; a client error is never 409 (the SDKs retry 409).

And ``GET /system/v1/whoami`` (mux-node's ``system.utilities.whoami()``; Mux's CLI calls it in
``mux login`` and before ``signing-keys create``): what the calling access token is, for every
access token whatever its permissions, as Mux answers it. *Decisions*, for what Headcount does
not have: an access token has no name, so ``access_token_name`` is its id; environments have no
type, so ``environment_type`` is ``production``; there are no organizations, so one deployment
is one organization, ``organization_id`` :data:`ORGANIZATION_ID` named
:data:`ORGANIZATION_NAME`.

Every call authenticates with an access token (:mod:`headcount.auth.access_tokens`) and sees
only the signing keys of that token's environment. The store is synchronous, so its calls run
in the thread pool, off the event loop. No CORS headers: like Mux's API, this is for servers.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from headcount.audit import audit, token_actor
from headcount.auth.access_tokens import authenticate, require_permission
from headcount.auth.signing_keys import (
    create_signing_key,
    delete_signing_key,
    visible_signing_key,
)
from headcount.errors import BadRequest, NotFound, Unauthorized, error_response
from headcount.runtime import Runtime
from headcount.stores.control import (
    SYSTEM_READ,
    SYSTEM_WRITE,
    AccessToken,
    ControlStore,
    SigningKey,
)

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "MAX_OFFSET",
    "PREFIXES",
    "WHOAMI_PATH",
    "audit_key_change",
    "caller",
    "json_answer",
    "page_number",
    "page_parameter",
    "system_routes",
    "with_challenge",
]

PREFIXES = ("/system/v1/signing-keys", "/video/v1/signing-keys")
WHOAMI_PATH = "/system/v1/whoami"
ORGANIZATION_ID = "headcount"
ORGANIZATION_NAME = "Headcount"
ENVIRONMENT_TYPE = "production"

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
# Ids Headcount issues are 43 characters; anything much longer is not worth a database trip.
_MAX_KEY_ID_LENGTH = 128
# Past this offset no environment has keys; it also keeps the offset inside a 64-bit integer.
MAX_OFFSET = 2**53

# System API answers hold secrets (the private key) or per-account data: never cached.
_HEADERS = {"cache-control": "no-store"}

Handler = Callable[[Request], Awaitable[Response]]


def json_answer(status: int, document: dict[str, Any]) -> Response:
    body = json.dumps(document, separators=(",", ":")).encode()
    return Response(body, status_code=status, media_type="application/json", headers=_HEADERS)


def _key(key: SigningKey) -> dict[str, str]:
    return {"id": key.id, "created_at": str(key.created_at)}


def page_number(raw: str) -> int | None:
    """A page (or limit) as sent, or None when it is not ASCII digits. Past 18 digits it is
    :data:`MAX_OFFSET`: a huge page is simply past the end (and ``int()`` of thousands of
    digits raises)."""
    if not (raw.isascii() and raw.isdigit()):
        return None
    return int(raw) if len(raw) <= 18 else MAX_OFFSET


def page_parameter(params: QueryParams, name: str, default: int, maximum: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    bounds = f"from 1 to {maximum}" if maximum < MAX_OFFSET else "of at least 1"
    value = page_number(raw)
    if value is None or not 1 <= value <= maximum:
        raise BadRequest(f"{name} must be an integer {bounds}; got {raw[:40]!r}.")
    return value


async def caller(control: ControlStore, request: Request, permission: str) -> AccessToken:
    """The request's access token, if it has ``permission`` (401 / 403 otherwise)."""
    token = await run_in_threadpool(authenticate, control, request.headers.get("authorization"))
    require_permission(token, permission)
    return token


class SigningKeysApi:
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.control = runtime.control

    def _now(self) -> int:
        return int(self.runtime.clock())

    async def _caller(self, request: Request, permission: str) -> AccessToken:
        return await caller(self.control, request, permission)

    async def create(self, request: Request) -> Response:
        # Mux's SDKs send no body (old docs add `?product=data`): the body and any query
        # parameters are ignored, there is nothing to configure on a key.
        token = await self._caller(request, SYSTEM_WRITE)
        now = self._now()
        issued = await run_in_threadpool(
            create_signing_key, self.control, token.environment_id, now
        )
        audit_key_change("signing_key.create", request, token, issued.key.id, now)
        return json_answer(201, {"data": {**_key(issued.key), "private_key": issued.private_key}})

    async def list_keys(self, request: Request) -> Response:
        token = await self._caller(request, SYSTEM_READ)
        limit = page_parameter(request.query_params, "limit", DEFAULT_LIMIT, MAX_LIMIT)
        page = page_parameter(request.query_params, "page", 1, MAX_OFFSET)
        offset = (page - 1) * limit
        keys: list[SigningKey] = []
        if offset < MAX_OFFSET:
            keys = await run_in_threadpool(
                self.control.list_signing_keys, token.environment_id, limit, offset
            )
        return json_answer(200, {"data": [_key(k) for k in keys]})

    async def retrieve(self, request: Request) -> Response:
        token = await self._caller(request, SYSTEM_READ)
        key_id = self._key_id(request)
        key = await run_in_threadpool(
            visible_signing_key, self.control, token.environment_id, key_id
        )
        return json_answer(200, {"data": _key(key)})

    async def delete(self, request: Request) -> Response:
        token = await self._caller(request, SYSTEM_WRITE)
        key_id = self._key_id(request)
        now = self._now()
        await run_in_threadpool(delete_signing_key, self.control, token.environment_id, key_id, now)
        audit_key_change("signing_key.delete", request, token, key_id, now)
        # Token caches in this process forget the key now; other nodes poll the store.
        self.runtime.signing_key_deleted(key_id)
        return Response(status_code=204, headers=_HEADERS)

    async def whoami(self, request: Request) -> Response:
        token = await run_in_threadpool(
            authenticate, self.control, request.headers.get("authorization")
        )
        environment = await run_in_threadpool(self.control.get_environment, token.environment_id)
        if environment is None:  # its environment went away under it
            raise Unauthorized()
        data = {
            "access_token_name": token.id,
            "environment_id": environment.id,
            "environment_name": environment.name,
            "environment_type": ENVIRONMENT_TYPE,
            "organization_id": ORGANIZATION_ID,
            "organization_name": ORGANIZATION_NAME,
            "permissions": sorted(token.permissions),
        }
        return json_answer(200, {"data": data})

    @staticmethod
    def _key_id(request: Request) -> str:
        key_id: str = request.path_params["key_id"]
        if len(key_id) > _MAX_KEY_ID_LENGTH:
            raise NotFound()
        return key_id


def audit_key_change(
    action: str, request: Request, token: AccessToken, key_id: str, now: int
) -> None:
    """The audit line of a signing-key change made with ``token`` (System API, dashboard)."""
    client = request.client
    audit(
        action,
        actor=token_actor(token.id),
        subject=key_id,
        environment_id=token.environment_id,
        at=now,
        client=f"{client.host}:{client.port}" if client else None,
    )


def with_challenge(handler: Handler) -> Handler:
    """A 401 carries ``WWW-Authenticate`` (RFC 9110); every other error goes to the app's one
    HeadcountError handler (``http/cold.py``)."""

    async def handle(request: Request) -> Response:
        try:
            return await handler(request)
        except Unauthorized as exc:
            status, body = error_response(exc)
            headers = {**_HEADERS, "www-authenticate": 'Basic realm="Headcount System API"'}
            return Response(
                body, status_code=status, media_type="application/json", headers=headers
            )

    return handle


def system_routes(runtime: Runtime) -> list[BaseRoute]:
    api = SigningKeysApi(runtime)

    async def collection(request: Request) -> Response:
        if request.method == "POST":
            return await api.create(request)
        return await api.list_keys(request)

    async def item(request: Request) -> Response:
        if request.method == "DELETE":
            return await api.delete(request)
        return await api.retrieve(request)

    routes: list[BaseRoute] = [Route(WHOAMI_PATH, with_challenge(api.whoami), methods=["GET"])]
    for prefix in PREFIXES:
        routes.append(Route(prefix, with_challenge(collection), methods=["GET", "POST"]))
        routes.append(Route(prefix + "/{key_id}", with_challenge(item), methods=["GET", "DELETE"]))
    return routes
