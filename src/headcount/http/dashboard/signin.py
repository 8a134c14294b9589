"""Signing in and out of the dashboard, and switching environment.

- ``GET /dashboard/sign-in`` — the form (access token id and secret), with a fresh nonce in
  its own cookie and in the form (login CSRF: another site cannot sign a person in as someone
  else).
- ``POST /dashboard/sign-in`` — a wrong id or secret answers 401 with the form again and a
  message that says what to check. A right one starts a session (or, if one is running, adds
  the token to it: one token per environment, at most ``MAX_TOKENS``; a token for an
  environment the session already holds replaces that one) and sends the person to
  ``/dashboard`` (to the signing keys if the token may not read counts). Every sign-in gets
  a new CSRF token.
- ``POST /dashboard/sign-out`` — ends the session (every environment in it).
- ``POST /dashboard/environment`` — makes another of the session's tokens the one in use.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from headcount.auth.access_tokens import verify_credentials
from headcount.errors import Unauthorized
from headcount.http.dashboard.gate import SIGN_IN_PATH, Gate, Viewer
from headcount.http.dashboard.keys import KEYS_PATH
from headcount.http.dashboard.session import (
    COOKIE,
    LIFETIME,
    MAX_TOKENS,
    SIGN_IN_COOKIE,
    SIGN_IN_LIFETIME,
    Session,
    clear_cookie,
    csrf_matches,
    new_nonce,
    set_cookie,
)
from headcount.http.dashboard.web import HEADERS, read_form
from headcount.stores.control import DATA_READ, AccessToken

__all__ = ["BAD_CREDENTIALS", "signin_routes"]

HOME = "/dashboard"
BAD_CREDENTIALS = (
    "Sign-in refused: that access token id and secret do not match a live access token. "
    "Check both (the secret is shown once, when the token is created); a revoked token "
    "cannot sign in. `headcount access-tokens create` makes a new one."
)
_MAX_FIELD = 256  # ids and secrets are under 50 characters


def _joined(viewer: Viewer | None, token: AccessToken) -> tuple[str, ...]:
    """The session's tokens once ``token`` signs in: it replaces a token of its own
    environment, the others stay (the oldest dropped past MAX_TOKENS)."""
    if viewer is None:
        return (token.id,)
    others = [
        token_id
        for token_id, environment in viewer.environments
        if environment.id != token.environment_id
    ]
    return (*others[-(MAX_TOKENS - 1) :], token.id)


def signin_routes(gate: Gate) -> list[BaseRoute]:
    templates = gate.templates
    control = gate.runtime.control

    def form(
        request: Request,
        viewer: Viewer | None,
        status: int = 200,
        error: str = "",
        token_id: str = "",
    ) -> Response:
        nonce = new_nonce()
        notice = ""
        if request.query_params.get("ended"):
            notice = "Your session ended (it expired, or its access token was revoked). "
            notice += "Sign in again."
        elif request.query_params.get("signed_out"):
            notice = "You are signed out."
        context = {
            "viewer": viewer,
            "title": "Sign in",
            "active": "sign-in",
            "nonce": nonce,
            "error": error,
            "notice": notice,
            "token_id": token_id,
        }
        response = templates.page("sign_in.html", context, status=status)
        set_cookie(response, request, SIGN_IN_COOKIE, nonce, SIGN_IN_LIFETIME)
        return response

    async def sign_in_page(request: Request) -> Response:
        return form(request, await gate.viewer(request))

    async def sign_in(request: Request) -> Response:
        viewer = await gate.viewer(request)
        fields = await read_form(request)
        nonce = request.cookies.get(SIGN_IN_COOKIE)
        if nonce is None or not csrf_matches(nonce, fields.get("nonce")):
            return gate.refused(viewer)
        token_id = fields.get("token_id", "").strip()[:_MAX_FIELD]
        secret = fields.get("token_secret", "").strip()[:_MAX_FIELD]
        try:
            if not token_id or not secret:
                raise Unauthorized()
            token = await run_in_threadpool(verify_credentials, control, token_id, secret)
        except Unauthorized:
            return form(request, viewer, status=401, error=BAD_CREDENTIALS, token_id=token_id)
        session = Session(_joined(viewer, token), token.id, new_nonce())
        cookie = await run_in_threadpool(gate.codec.encode, session, gate.runtime.clock())
        # A token that may not read counts lands where it can do something: its keys.
        target = HOME if DATA_READ in token.permissions else KEYS_PATH
        response = RedirectResponse(target, status_code=303, headers=HEADERS)
        set_cookie(response, request, COOKIE, cookie, LIFETIME)
        clear_cookie(response, request, SIGN_IN_COOKIE)
        return response

    async def sign_out(request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
        response = RedirectResponse(f"{SIGN_IN_PATH}?signed_out=1", status_code=303)
        clear_cookie(response, request, COOKIE)
        return response

    async def switch(request: Request, viewer: Viewer, fields: dict[str, str]) -> Response:
        wanted = fields.get("token", "")
        if wanted not in viewer.session.token_ids:
            return gate.refused(viewer)
        session = Session(viewer.session.token_ids, wanted, viewer.session.csrf)
        cookie = await run_in_threadpool(gate.codec.encode, session, gate.runtime.clock())
        response = RedirectResponse(HOME, status_code=303, headers=HEADERS)
        set_cookie(response, request, COOKIE, cookie, LIFETIME)
        return response

    return [
        Route(SIGN_IN_PATH, sign_in_page, methods=["GET"]),
        Route(SIGN_IN_PATH, sign_in, methods=["POST"]),
        Route("/dashboard/sign-out", gate.form(sign_out), methods=["POST"]),
        Route("/dashboard/environment", gate.form(switch), methods=["POST"]),
    ]
