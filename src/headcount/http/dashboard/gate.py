"""Who is looking: the signed-in person behind a dashboard request, and the one guard every
page and form goes through (:meth:`Gate.page` / :meth:`Gate.form`).

A request without a valid session is sent to the sign-in page (303). A form whose CSRF token
does not match its session is refused with 403 and changes nothing. The session cookie is
checked against the control store on every request (``session.py``), so a revoked access token
signs its sessions out at their next click, on every node.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from headcount.auth.access_tokens import require_permission
from headcount.errors import Forbidden, HeadcountError, status_and_type
from headcount.http.dashboard.session import (
    COOKIE,
    Session,
    SessionCodec,
    clear_cookie,
    csrf_matches,
)
from headcount.http.dashboard.web import HEADERS, Templates, read_form
from headcount.runtime import Runtime
from headcount.stores.control import AccessToken, Environment

__all__ = ["SIGN_IN_PATH", "FormHandler", "Gate", "PageHandler", "Viewer"]

SIGN_IN_PATH = "/dashboard/sign-in"


@dataclass(frozen=True, slots=True)
class Viewer:
    """A signed-in person: the session, the access token in use and its environment, and
    every (token id, environment) the session holds, for the environment picker."""

    session: Session
    token: AccessToken
    environment: Environment
    environments: list[tuple[str, Environment]]

    def can(self, permission: str) -> bool:
        try:
            require_permission(self.token, permission)
        except Forbidden:
            return False
        return True


PageHandler = Callable[[Request, Viewer], Awaitable[Response]]
FormHandler = Callable[[Request, Viewer, dict[str, str]], Awaitable[Response]]


class Gate:
    def __init__(self, runtime: Runtime, templates: Templates) -> None:
        self.runtime = runtime
        self.codec = SessionCodec(runtime.control, runtime.settings.dashboard_session_secret)
        self.templates = templates

    async def viewer(self, request: Request) -> Viewer | None:
        cookie = request.cookies.get(COOKIE)
        if cookie is None:
            return None
        return await run_in_threadpool(self._viewer, cookie, self.runtime.clock())

    def _viewer(self, cookie: str, now: float) -> Viewer | None:
        decoded = self.codec.decode(cookie, now)
        if decoded is None:
            return None
        session, tokens = decoded
        environments: list[tuple[str, Environment]] = []
        for token in tokens:
            environment = self.runtime.control.get_environment(token.environment_id)
            if environment is None:  # its environment went away under it
                return None
            environments.append((token.id, environment))
        environments.sort(key=lambda pair: (pair[1].name, pair[1].id))
        current = next(e for token_id, e in environments if token_id == session.current)
        return Viewer(session, tokens[0], current, environments)

    def page(self, handler: PageHandler) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            viewer = await self.viewer(request)
            if viewer is None:
                return self.to_sign_in(request)
            try:
                return await handler(request, viewer)
            except HeadcountError as exc:
                return self.failed(viewer, exc)

        return guarded

    def form(self, handler: FormHandler) -> Callable[[Request], Awaitable[Response]]:
        async def guarded(request: Request) -> Response:
            viewer = await self.viewer(request)
            if viewer is None:
                return self.to_sign_in(request)
            fields = await read_form(request)
            if not csrf_matches(viewer.session.csrf, fields.get("csrf")):
                return self.refused(viewer)
            try:
                return await handler(request, viewer, fields)
            except HeadcountError as exc:
                return self.failed(viewer, exc)

        return guarded

    def to_sign_in(self, request: Request) -> Response:
        """303 to the sign-in page; a cookie that no longer holds is dropped, and the page
        says why the person is there again."""
        had_session = COOKIE in request.cookies
        target = SIGN_IN_PATH + ("?ended=1" if had_session else "")
        response = RedirectResponse(target, status_code=303, headers=HEADERS)
        if had_session:
            clear_cookie(response, request, COOKIE)
        return response

    def failed(self, viewer: Viewer, exc: HeadcountError) -> Response:
        """An error met while answering a page: the same status as the APIs, as a page."""
        status, _ = status_and_type(exc)
        context = {"viewer": viewer, "title": "Not possible", "message": exc.message, "active": ""}
        return self.templates.page("message.html", context, status=status)

    def refused(self, viewer: Viewer | None) -> Response:
        message = (
            "This form was refused: it did not carry this session's security token. "
            "It may be from an old page or from another site. Reload the page and try again."
        )
        return self.templates.page(
            "message.html",
            {"viewer": viewer, "title": "Form refused", "message": message, "active": ""},
            status=403,
        )
