"""``headcount serve``: migrate, bootstrap on first start, then serve the app with uvicorn.

Every setting in :data:`headcount.settings.SETTINGS` is a flag here, generated from the
declaration (and a ``HEADCOUNT_*`` variable, read by the same parsers).

The server is uvicorn (httptools parser, uvloop) with
:class:`~headcount.http.protocol.HotPathProtocol`, which answers the hot paths in the parser's
callback and hands everything else to the ASGI app; see that module for why and how.

``--workers N`` runs N such processes sharing the port (uvicorn's own supervisor; each worker
builds its app from the same ``HEADCOUNT_*`` settings). It needs a shared live store: the memory
live store lives in one process's memory, so a second worker would keep a second, disjoint set
of views and each would answer /counts with part of the truth; ``--workers`` above 1 with
``memory://`` is refused. With Redis, any number of processes on any number of machines serve
one set of counts (docs/deployment.md).
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import signal
import socket
import time
from collections.abc import Callable
from types import FrameType
from typing import Any

import click

from headcount.auth.access_tokens import IssuedAccessToken
from headcount.auth.environments import DEFAULT_ENVIRONMENT_NAME, initialize
from headcount.bootstrap import check_live_url, is_memory_url
from headcount.cli import main
from headcount.cli.claim import bind_listener, lock_state_file
from headcount.cli.common import explain
from headcount.cli.configure import setting_options, settings_from_flags
from headcount.cli.control import audit_token_created
from headcount.cli.credentials import (
    credentials_text,
    overwrite_option,
    refuse_existing,
    write_credentials_file,
)
from headcount.errors import HeadcountError
from headcount.log_config import configure_cli_logging, uvicorn_log_config
from headcount.settings import SETTINGS, Settings
from headcount.settings_sources import masked
from headcount.stores.control import Environment
from headcount.stores.sql import open_control_store

__all__ = ["serve", "settings_environment"]


def settings_environment(settings: Settings) -> dict[str, str]:
    """The ``HEADCOUNT_*`` variables that make ``load_settings()`` return ``settings``."""
    variables: dict[str, str] = {}
    for setting in SETTINGS:
        value = getattr(settings, setting.name)
        if isinstance(value, bool):
            variables[setting.env_var] = "true" if value else "false"
        else:
            variables[setting.env_var] = str(value)
    return variables


def public_url(settings: Settings) -> str:
    """Where a client on this machine reaches the server (a wildcard bind is reached locally)."""
    host = settings.host
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "[::1]"
    elif ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{settings.port}"


def demo_url(settings: Settings) -> str | None:
    """Where ``/demo`` opens, or None when this process does not serve it. On a loopback
    address it is ``localhost``: mux-embed posts over plain http only to a bare localhost."""
    if not (settings.demo and settings.serves("collector") and settings.serves("counts")):
        return None
    url = public_url(settings)
    for loopback in ("//127.0.0.1:", "//[::1]:"):
        url = url.replace(loopback, "//localhost:")
    return f"{url}/demo"


def demo_line(settings: Settings) -> str:
    url = demo_url(settings)
    return f"Demo: {url} (a video counted live beside <headcount-viewers>)" if url else ""


def dashboard_url(settings: Settings) -> str | None:
    """Where ``/dashboard`` opens, or None when this process does not serve it (it is served
    with the System API, role ``system``)."""
    return f"{public_url(settings)}/dashboard" if settings.serves("system") else None


def dashboard_line(settings: Settings) -> str:
    url = dashboard_url(settings)
    return f"Dashboard: {url} (sign in with an access token id and secret)" if url else ""


def bootstrap_text(
    url: str, environment: Environment, issued: IssuedAccessToken, credentials_file: str = ""
) -> str:
    """The first-start block. Plain lines, never wrapped or cut: the commands are pasted. With
    a credentials file, the secret is in the file only (kept logs never see it)."""
    token_id, secret = issued.token.id, issued.secret
    bold = functools.partial(click.style, bold=True)
    if credentials_file:
        heading = f"first start: the credentials are in {credentials_file}, owner-only"
        secret_line = f"(in {credentials_file}: MUX_TOKEN_SECRET)"
        curl = [
            f"  set -a; . {credentials_file}; set +a",
            f'  curl -X POST -u "$MUX_TOKEN_ID:$MUX_TOKEN_SECRET" {url}/system/v1/signing-keys',
        ]
    else:
        heading = "first start: these credentials are shown once"
        secret_line = secret
        curl = [f"  curl -X POST -u {token_id}:{secret} {url}/system/v1/signing-keys"]
    return "\n".join(
        [
            bold(f"Headcount is up at {url} ({heading})"),
            "",
            f"  Environment          {environment.name} (id {environment.id})",
            f"  Env key              {environment.env_key}   (mux-embed's data.env_key)",
            f"  Access token id      {token_id}",
            f"  Access token secret  {secret_line}",
            "",
            bold("1. Create a signing key") + " (its private_key is returned once):",
            *curl,
            bold("2. Sign a viewer-counts token") + " with the key's id and private_key:",
            "  headcount token sign --id VIDEO_ID --type video_id --key-id KEY_ID "
            "--private-key PRIVATE_KEY",
            "  (or mux-node's mux.jwt.signViewerCounts, or headcount.sign_viewer_counts)",
            bold("3. Read the counts:"),
            f'  curl "{url}/counts?token=TOKEN"',
            bold("4. Watch them move") + ": in another terminal, play an audience against it:",
            f"  headcount simulate --url {url} --env-key {environment.env_key} "
            "--viewers 20 --videos 3 --duration 120",
            "",
            "More: docs/system-api.md (signing keys, access tokens), docs/configuration.md.",
            "",
        ]
    )


def _bootstrap_if_first_start(
    settings: Settings, before: Callable[[], None]
) -> tuple[Environment, IssuedAccessToken] | None:
    """Migrate the control store; on a store with no environment yet, call ``before`` (which
    may refuse), then create the default environment and an access token with every
    permission (the only time that secret is shown)."""
    control = open_control_store(settings.database_url)
    try:
        if control.list_environments():
            return None
        before()
        made = initialize(control, DEFAULT_ENVIRONMENT_NAME, int(time.time()))
    finally:
        control.close()
    configure_cli_logging(settings)  # uvicorn's logging is not set up yet
    audit_token_created(made[1])
    return made


@main.command("serve")
@setting_options
@click.option("--json", "as_json", is_flag=True, help="Print the start-up information as JSON.")
@overwrite_option
def serve(
    as_json: bool, overwrite_credentials: bool, config: str | None, **raw: str | None
) -> None:
    """Run the server: collector, counts API and System API (uvicorn)."""
    settings = settings_from_flags(raw, config)
    log_level = settings.log_level  # one of the choices, lower case (settings.py checks)
    _check_live_store(settings)
    if settings.database_url.startswith("memory://"):
        # The CLI bootstraps through its own connection to the control store; a memory store
        # would be a second, empty one: the credentials printed would not exist in the server.
        raise click.BadParameter(
            "memory:// keeps nothing between processes; serve needs sqlite:/// or postgresql://",
            param_hint="--database",
        )

    # Claimed before anything is touched (cli/claim.py): a second server on this port or this
    # state file stops here, and the one already running keeps its database and its state.
    # Both are held while this function runs, which is the life of the server.
    listener = bind_listener(settings.host, settings.port)
    state_lock = lock_state_file(settings.state_file) if is_memory_url(settings.live_url) else None
    credentials = settings.credentials_file

    def check_credentials_file() -> None:
        if credentials:
            refuse_existing(credentials, overwrite_credentials)

    try:
        first_start = _bootstrap_if_first_start(settings, check_credentials_file)
    except (HeadcountError, ValueError) as exc:
        raise click.ClickException(explain(exc)) from exc
    url = public_url(settings)
    if first_start is not None and credentials:
        try:
            text = credentials_text(*first_start, f"the first `headcount serve` at {url}")
            write_credentials_file(credentials, text, overwrite_credentials)
        except OSError as exc:
            click.echo(bootstrap_text(url, *first_start))  # shown once rather than lost
            raise click.ClickException(
                f"could not write the credentials file {credentials} ({exc.strerror}); "
                "they are printed above, this once."
            ) from exc
    if as_json:
        bootstrap: dict[str, Any] | None = None
        if first_start is not None:
            environment, issued = first_start
            bootstrap = {
                "environment": {
                    "id": environment.id,
                    "name": environment.name,
                    "env_key": environment.env_key,
                },
                "access_token": {"id": issued.token.id, "secret": issued.secret},
            }
            if credentials:  # the secret is in the file only
                bootstrap["access_token"]["secret"] = None
                bootstrap["credentials_file"] = credentials
        document = {
            "url": url,
            "demo_url": demo_url(settings),
            "dashboard_url": dashboard_url(settings),
            "bootstrap": bootstrap,
        }
        click.echo(json.dumps(document), nl=True)
    else:
        if first_start is not None:
            click.echo(bootstrap_text(url, *first_start, credentials))
        else:
            click.echo(
                f"Headcount listening on {url} "
                f"(database {masked('database_url', settings.database_url)}).\n"
                "Credentials: `headcount init` creates an environment and an access token; "
                "`headcount access-tokens create --environment ID` adds a token to one."
            )
        for line in (dashboard_line(settings), demo_line(settings)):
            if line:
                click.echo(line)

    _run_uvicorn(_with_session_secret(_with_descriptor_room(settings)), log_level, listener)
    if state_lock is not None:
        state_lock.close()


def _with_session_secret(settings: Settings) -> Settings:
    """``settings`` with a ``dashboard_session_secret``: the one given, else a random one made
    now, which the workers get with the other settings (their environment)."""
    if settings.dashboard_session_secret:
        return settings
    return settings.replace(dashboard_session_secret=secrets.token_urlsafe(32))


def _with_descriptor_room(settings: Settings) -> Settings:
    """``settings`` with ``max_connections`` lowered to what the descriptor limit leaves room
    for (http/limits.py), saying so when it is."""
    from headcount.http.limits import RESERVED_DESCRIPTORS, descriptor_room

    room = descriptor_room(settings.max_connections)
    if room == settings.max_connections:
        return settings
    click.echo(
        f"Holding at most {room} connections, not {settings.max_connections}: the descriptor "
        f"limit (ulimit -n) is {room + RESERVED_DESCRIPTORS} and {RESERVED_DESCRIPTORS} are "
        "kept for the stores. Raise it to hold more.",
        err=True,
    )
    return settings.replace(max_connections=room)


def _check_live_store(settings: Settings) -> None:
    try:
        check_live_url(settings.live_url)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--live") from exc
    if settings.workers > 1 and is_memory_url(settings.live_url):
        raise click.BadParameter(
            f"{settings.workers} workers with the memory live store would each count only the "
            "views they received (the store lives in one process). Share one live store: "
            "--live redis://HOST:PORT/0 (see docs/deployment.md), or run --workers 1.",
            param_hint="--workers",
        )


def _run_uvicorn(settings: Settings, log_level: str, listener: socket.socket) -> None:
    import uvicorn

    from headcount.bootstrap import build_runtime
    from headcount.http.app import HeadcountApp
    from headcount.http.protocol import HotPathProtocol
    from headcount.http.protocol_access import AccessLoggedProtocol

    # Headcount's own loggers go where uvicorn's do, in the chosen format (log_config.py).
    log_config = uvicorn_log_config(settings)
    options: dict[str, Any] = {}
    if settings.workers > 1:
        # Each worker process builds its own app from the HEADCOUNT_* variables (the app
        # object cannot cross a process boundary); the parent only supervises.
        os.environ.update(settings_environment(settings))
        app: Any = "headcount.http.app:create_served_app"
        options = {"factory": True, "workers": settings.workers}
    else:
        app = HeadcountApp(build_runtime(settings), freeze_after_start=True)
    config = uvicorn.Config(
        app,
        **options,
        host=settings.host,
        port=settings.port,
        # With the access log on, the hot paths log their answers too (http/access_log.py).
        http=AccessLoggedProtocol if settings.access_log else HotPathProtocol,
        loop="uvloop",
        lifespan="on",
        ws="none",
        log_level=log_level,
        log_config=log_config,
        access_log=False,
        # Typed int by uvicorn, used as a call_later delay: a fraction of a second works.
        timeout_keep_alive=settings.keep_alive_timeout,  # type: ignore[arg-type]
        # The hot paths answer in the parser callback, so the app must be ours, unwrapped.
        proxy_headers=False,
        server_header=False,
    )
    # uvicorn stops gracefully on SIGINT/SIGTERM (the lifespan saves the live state), then
    # raises the signal again for the handler it found installed: this one, so that a clean
    # stop exits 0 rather than dying of the signal, and a signal during start-up stops too.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _exit_cleanly)
    if settings.workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[listener]).run()
        return
    uvicorn.Server(config).run(sockets=[listener])


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)
