"""The control-plane commands: ``init``, ``environments``, ``access-tokens`` (and, in
:mod:`headcount.cli.signing_keys`, ``signing-keys``).

They work directly on the control store named by ``--database`` (no server needed) through the
same functions the System API uses. Secrets (an access token's secret, a signing key's private
key) are printed once, by the command that creates them, and never again.

``--json`` prints one JSON document on stdout; times there are integer epoch seconds.
"""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from headcount.auth.access_tokens import create_access_token
from headcount.auth.environments import DEFAULT_ENVIRONMENT_NAME, create_environment, initialize
from headcount.cli import main
from headcount.cli.common import (
    database_option,
    echo_json,
    environment_id,
    environment_option,
    json_option,
    now,
    open_store,
    show,
    table,
)
from headcount.stores.control import PERMISSIONS, AccessToken, Environment

__all__ = ["access_tokens", "environments", "init"]


def _environment_json(environment: Environment) -> dict[str, Any]:
    return {
        "id": environment.id,
        "name": environment.name,
        "env_key": environment.env_key,
        "created_at": environment.created_at,
    }


def _token_json(token: AccessToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "environment_id": token.environment_id,
        "permissions": sorted(token.permissions),
        "created_at": token.created_at,
        "revoked": token.revoked,
    }


# -- init ------------------------------------------------------------------------------------


@main.command("init")
@click.option("--name", default=DEFAULT_ENVIRONMENT_NAME, show_default=True, help="Its name.")
@database_option
@json_option
def init(name: str, database: str | None, as_json: bool) -> None:
    """Create an environment and an access token with the System permission."""
    with open_store(database, create=True) as control:
        environment, issued = initialize(control, name, now())
    if as_json:
        echo_json(
            {
                "environment": {
                    "id": environment.id,
                    "name": environment.name,
                    "env_key": environment.env_key,
                },
                "access_token": {"id": issued.token.id, "secret": issued.secret},
            }
        )
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("Environment", f"{environment.name} (id {environment.id})")
    grid.add_row("Env key", environment.env_key)
    grid.add_row("Access token id", issued.token.id)
    grid.add_row("Access token secret", f"{issued.secret}  <- shown only now")
    show(grid)


# -- environments ----------------------------------------------------------------------------


@main.group("environments")
def environments() -> None:
    """Environments: each has its own env key, access tokens, signing keys and counts."""


@environments.command("create")
@click.argument("name")
@database_option
@json_option
def environments_create(name: str, database: str | None, as_json: bool) -> None:
    """Create an environment named NAME."""
    with open_store(database) as control:
        environment = create_environment(control, name, now())
    if as_json:
        echo_json(_environment_json(environment))
        return
    show(f"Created environment {environment.id} (env key {environment.env_key})")


@environments.command("list")
@database_option
@json_option
def environments_list(database: str | None, as_json: bool) -> None:
    """List every environment."""
    with open_store(database) as control:
        found = control.list_environments()
    if as_json:
        echo_json([_environment_json(e) for e in found])
        return
    rows = table("id", "name", "env key", "created at")
    for e in found:
        rows.add_row(e.id, e.name, e.env_key, str(e.created_at))
    show(rows)


# -- access tokens ---------------------------------------------------------------------------


@main.group("access-tokens")
def access_tokens() -> None:
    """Access tokens: the id/secret pairs that call the System API."""


@access_tokens.command("create")
@environment_option()
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    type=click.Choice(PERMISSIONS),
    help="Repeat for several; default: all (system:read, system:write and data:read).",
)
@database_option
@json_option
def access_tokens_create(
    environment: str, permissions: tuple[str, ...], database: str | None, as_json: bool
) -> None:
    """Create an access token; its secret is printed once."""
    with open_store(database) as control:
        env_id = environment_id(control, environment)
        issued = create_access_token(control, env_id, permissions or PERMISSIONS, now())
    if as_json:
        echo_json({**_token_json(issued.token), "secret": issued.secret})
        return
    show(f"Access token id      {issued.token.id}")
    show(f"Access token secret  {issued.secret}  <- shown only now")
    show(f"Permissions          {' '.join(sorted(issued.token.permissions))}")


@access_tokens.command("list")
@environment_option(required=False)
@database_option
@json_option
def access_tokens_list(environment: str | None, database: str | None, as_json: bool) -> None:
    """List access tokens (never their secrets)."""
    with open_store(database) as control:
        env_id = None if environment is None else environment_id(control, environment)
        found = control.list_access_tokens(env_id)
    if as_json:
        echo_json([_token_json(t) for t in found])
        return
    rows = table("id", "environment", "permissions", "created at", "revoked")
    for t in found:
        rows.add_row(
            t.id,
            t.environment_id,
            " ".join(sorted(t.permissions)),
            str(t.created_at),
            "yes" if t.revoked else "no",
        )
    show(rows)


@access_tokens.command("revoke")
@click.argument("token_id", metavar="ID")
@database_option
@json_option
def access_tokens_revoke(token_id: str, database: str | None, as_json: bool) -> None:
    """Revoke an access token: it authenticates nothing from now on."""
    with open_store(database) as control:
        if not control.revoke_access_token(token_id):
            raise click.ClickException(f"no live access token {token_id!r}")
    if as_json:
        echo_json({"id": token_id, "revoked": True})
        return
    show(f"Revoked access token {token_id}")
