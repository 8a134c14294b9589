"""The path items of the dashboard (:mod:`headcount.http.dashboard`, docs/dashboard.md): pages
for people, described as pages (``text/html``), the forms they post, and the two JSON reads
the live pages poll. Part of :data:`~headcount.http.openapi_paths.PATHS`.

What every page shares: without a session (or with one that ended) the answer is 303 to the
sign-in page; a form whose CSRF token is not the session's is refused 403 and changes nothing;
an error met while answering is a page with the APIs' status. A form body that is not
``application/x-www-form-urlencoded`` UTF-8, or one over ``MAX_FORM_BYTES``, is refused before
anything else with the API's envelope (400, 413).
"""

from __future__ import annotations

from typing import Any, Final

from headcount.core.ids import ID_TYPES
from headcount.http.dashboard import DASHBOARD_PATH
from headcount.http.dashboard.gate import SIGN_IN_PATH
from headcount.http.dashboard.keys import KEYS_PATH, PAGE_SIZE
from headcount.http.dashboard.session import SIGN_IN_COOKIE
from headcount.http.dashboard.web import MAX_FORM_BYTES, STATIC_PREFIX
from headcount.http.openapi_operations import SESSION, Operation, error, ok, operation
from headcount.http.openapi_schemas import ref

__all__ = ["DASHBOARD_PATHS", "DASHBOARD_TAG"]

DASHBOARD_TAG: Final = "Dashboard"

_HTML: Final = {"type": "string"}
_LOCATION: Final = {"Location": {"required": True, "schema": {"type": "string"}}}
_FORM_TYPE: Final = "application/x-www-form-urlencoded"


def _page(description: str) -> dict[str, Any]:
    return ok(description, "text/html", _HTML)


def _redirect(description: str) -> dict[str, Any]:
    return {"description": description, "headers": _LOCATION}


_TO_SIGN_IN: Final = _redirect(
    f"No session, or one that ended: to `{SIGN_IN_PATH}` (`?ended=1`, and the cookie dropped, "
    "when there was one)."
)
_UNAVAILABLE: Final = {
    "description": "A store does not answer: a page, or the envelope when the session could "
    "not be checked.",
    "content": {
        "text/html": {"schema": _HTML},
        "application/json": {"schema": ref("Error")},
    },
}
_REFUSED_FORM: Final = _page(
    "The form did not carry this session's CSRF token (or, signing in, the sign-in nonce): "
    "refused, nothing changed."
)
_BAD_FORM: Final = {
    400: error(400, description=f"The body is not a UTF-8 `{_FORM_TYPE}` form."),
    413: error(413, description=f"The form is larger than {MAX_FORM_BYTES} bytes."),
}


def _form(fields: dict[str, str]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            _FORM_TYPE: {
                "schema": {
                    "type": "object",
                    "properties": {
                        name: {"type": "string", "description": text}
                        for name, text in fields.items()
                    },
                }
            }
        },
    }


_CSRF: Final = {"csrf": "The session's CSRF token (in every page's forms)."}


def _get(
    operation_id: str,
    summary: str,
    description: str,
    answers: dict[int, dict[str, Any]],
    parameters: list[dict[str, Any]] | None = None,
) -> Operation:
    return operation(
        operation_id,
        DASHBOARD_TAG,
        summary,
        description,
        {**answers, 303: _TO_SIGN_IN, 503: _UNAVAILABLE},
        parameters=parameters,
        security=SESSION,
    )


def _post(
    operation_id: str,
    summary: str,
    description: str,
    answers: dict[int, dict[str, Any]],
    fields: dict[str, str],
    parameters: list[dict[str, Any]] | None = None,
) -> Operation:
    found = operation(
        operation_id,
        DASHBOARD_TAG,
        summary,
        description,
        {403: _REFUSED_FORM, **answers, **_BAD_FORM, 503: _UNAVAILABLE},
        parameters=parameters,
        body=_form({**_CSRF, **fields}),
        security=SESSION,
    )
    return found


def _path(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string"},
    }


_NO_DATA_READ: Final = "The access token in use lacks `data:read`"
_ID_TYPE_QUERY: Final = {
    "name": "id_type",
    "in": "query",
    "description": f"Only ids of this type ({', '.join(ID_TYPES)}); anything else: every type.",
    "schema": {"type": "string"},
}
_ID: Final = [
    {**_path("id_type", "One of the four id types; another answers 404."), "example": "video_id"},
    _path("id", "The id (it may hold `/`; at most 512 characters, longer answers 404)."),
]
_KEY_ID: Final = [_path("key_id", "A signing key of the environment in use.")]
_NOT_WRITE: Final = "The access token in use lacks `system:write`, or the form was refused."
_POLLED: Final = " Polled by the page every 5 seconds; `no-store`."

DASHBOARD_PATHS: Final[dict[str, dict[str, Operation]]] = {
    DASHBOARD_PATH: {
        "get": _get(
            "dashboardLive",
            "The live page",
            "The environment's views and viewers now and their peaks, then the 20 ids with "
            "most views now, each with a sparkline of its last hour.",
            {200: _page("The page."), 403: _page(_NO_DATA_READ + ": a page that says so.")},
            [_ID_TYPE_QUERY],
        )
    },
    DASHBOARD_PATH + "/": {
        "get": operation(
            "dashboardSlash",
            DASHBOARD_TAG,
            "The live page, with a slash",
            f"Redirects to `{DASHBOARD_PATH}`.",
            {308: _redirect(f"To `{DASHBOARD_PATH}`.")},
        )
    },
    DASHBOARD_PATH + "/live.json": {
        "get": _get(
            "dashboardLiveData",
            "The live page's numbers",
            "What the live page shows, as JSON (times in epoch seconds)." + _POLLED,
            {
                200: ok("The numbers.", "application/json", ref("DashboardLive")),
                403: error(403, description=_NO_DATA_READ + "."),
            },
            [_ID_TYPE_QUERY],
        )
    },
    DASHBOARD_PATH + "/ids/{id_type}/{id}": {
        "get": _get(
            "dashboardId",
            "One id's page",
            "Views and viewers now, the peaks with their times, and a chart and a table of "
            "every minute within `history_retention`.",
            {
                200: _page("The page."),
                403: _page(_NO_DATA_READ + ": a page that says so."),
                404: _page("No such id type: a page that says so."),
            },
            _ID,
        )
    },
    DASHBOARD_PATH + "/data/{id_type}/{id}": {
        "get": _get(
            "dashboardIdData",
            "One id's numbers",
            "What the id's page shows, as JSON (times in epoch seconds)." + _POLLED,
            {
                200: ok("The numbers.", "application/json", ref("DashboardDetail")),
                403: error(403, description=_NO_DATA_READ + "."),
                404: error(404, description="No such id type."),
            },
            _ID,
        )
    },
    SIGN_IN_PATH: {
        "get": operation(
            "dashboardSignInPage",
            DASHBOARD_TAG,
            "The sign-in page",
            "The form (access token id and secret), with a fresh nonce in the form and in the "
            f"`{SIGN_IN_COOKIE}` cookie (`SameSite=Strict`, short-lived). `?ended=1` and "
            "`?signed_out=1` add a notice.",
            {200: _page("The form."), 503: _UNAVAILABLE},
        ),
        "post": operation(
            "dashboardSignIn",
            DASHBOARD_TAG,
            "Sign in",
            "Checks the access token as the System API does. A right one starts the session "
            "(or adds its environment to the running one) and sets the session cookie.",
            {
                303: _redirect(
                    f"Signed in: to `{DASHBOARD_PATH}`, or to `{KEYS_PATH}` for a token "
                    "without `data:read`; sets the session cookie."
                ),
                401: _page("A wrong id or secret: the form again, with what to check."),
                403: _REFUSED_FORM,
                **_BAD_FORM,
                503: _UNAVAILABLE,
            },
            body=_form(
                {
                    "nonce": f"The nonce of the form, equal to the `{SIGN_IN_COOKIE}` cookie.",
                    "token_id": "The access token id.",
                    "token_secret": "Its secret.",
                }
            ),
        ),
    },
    DASHBOARD_PATH + "/sign-out": {
        "post": _post(
            "dashboardSignOut",
            "Sign out",
            "Ends the session (every environment in it) in this browser.",
            {
                303: _redirect(
                    f"To `{SIGN_IN_PATH}?signed_out=1`, the cookie dropped (without a session: "
                    "to the sign-in page)."
                )
            },
            {},
        )
    },
    DASHBOARD_PATH + "/environment": {
        "post": _post(
            "dashboardSwitchEnvironment",
            "Switch environment",
            "Makes another of the session's access tokens (and its environment) the one in use.",
            {
                303: _redirect(
                    f"Switched: to `{DASHBOARD_PATH}`. Without a session: to `{SIGN_IN_PATH}`."
                ),
                403: _page("The token is not one of the session's, or the form was refused."),
            },
            {"token": "An access token id of the session."},
        )
    },
    KEYS_PATH: {
        "get": _get(
            "dashboardSigningKeys",
            "The signing keys page",
            f"The environment's signing keys, oldest first, {PAGE_SIZE} a page. Needs "
            "`system:read`.",
            {200: _page("The page."), 403: _page("The access token lacks `system:read`.")},
            [
                {
                    "name": "page",
                    "in": "query",
                    "description": "Page number (anything but a positive integer: 1).",
                    "schema": {"type": "string"},
                },
                {
                    "name": "deleted",
                    "in": "query",
                    "description": "The id of a key just deleted (a notice).",
                    "schema": {"type": "string"},
                },
            ],
        ),
        "post": _post(
            "dashboardCreateSigningKey",
            "Create a signing key",
            "Answers the keys page with the new key's private key, shown this once (never "
            "stored; the page is `no-store` and no URL shows it again). Needs `system:write`.",
            {
                201: _page("The keys page, with the new private key."),
                303: _TO_SIGN_IN,
                403: _page(_NOT_WRITE),
            },
            {},
        ),
    },
    KEYS_PATH + "/{key_id}/delete": {
        "get": _get(
            "dashboardConfirmDelete",
            "Confirm deleting a signing key",
            "A page that asks to confirm. Needs `system:write`.",
            {
                200: _page("The confirmation."),
                403: _page("The access token lacks `system:write`."),
                404: _page("No such key in the environment."),
            },
            _KEY_ID,
        ),
        "post": _post(
            "dashboardDeleteSigningKey",
            "Delete a signing key",
            "Deletes it: every token it signed is refused from then on. Needs `system:write`.",
            {
                303: _redirect(
                    f"Deleted: to `{KEYS_PATH}?deleted=KEY_ID`. Without a session: to "
                    f"`{SIGN_IN_PATH}`."
                ),
                403: _page(_NOT_WRITE),
                404: _page("No such key in the environment."),
            },
            {},
            _KEY_ID,
        ),
    },
    STATIC_PREFIX + "/{name}": {
        "get": operation(
            "dashboardStatic",
            DASHBOARD_TAG,
            "The dashboard's static files",
            "`dashboard.css`, `dashboard.js`, the vendored uPlot (`uPlot.iife.min.js`, "
            "`uPlot.min.css`) and its licence (`LICENSE.uplot`); cached an hour.",
            {
                200: {
                    "description": "The file.",
                    "content": {
                        media_type: {"schema": _HTML}
                        for media_type in ("text/css", "text/javascript", "text/plain")
                    },
                }
            },
            errors=(404,),
            parameters=[{**_path("name", "The file's name."), "example": "dashboard.css"}],
        ),
    },
}
