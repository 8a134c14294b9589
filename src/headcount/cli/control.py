"""The control-plane commands: ``init``, ``environments``, ``access-tokens``, ``signing-keys``.

They work directly on the control store named by ``--database`` (no server needed) through the
same functions the System API uses. Secrets (an access token's secret, a signing key's private
key) are printed once, by the command that creates them, and never again.

``--json`` prints one JSON document on stdout; times there are integer epoch seconds.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from headcount.auth.access_tokens import create_access_token
from headcount.auth.environments import DEFAULT_ENVIRONMENT_NAME, create_environment, initialize
from headcount.auth.signing_keys import create_signing_key
from headcount.cli import main
from headcount.errors import HeadcountError
from headcount.settings import load_settings
from headcount.stores.control import PERMISSIONS, AccessToken, ControlStore, Environment, SigningKey
from headcount.stores.sql import open_control_store

__all__ = ["database_option", "explain", "json_option"]

_LIST_PAGE = 100


def database_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--database",
        "database",
        default=None,
        metavar="URL",
        help="Control store URL (default: HEADCOUNT_DATABASE_URL, else the SQLite file "
        "under ./.headcount/).",
    )(command)


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON.")(command)


def explain(exc: Exception) -> str:
    """The message for a person at a terminal: unlike an HTTP client, they may see the cause
    (e.g. "connection refused") of an unavailable database."""
    message = exc.message if isinstance(exc, HeadcountError) else str(exc)
    cause = exc.__cause__
    if cause is not None:
        detail = str(getattr(cause, "orig", None) or cause).strip().splitlines()
        if detail:
            message += f" ({detail[0]})"
    return message


@contextlib.contextmanager
def _store(database: str | None) -> Iterator[ControlStore]:
    url = load_settings({"database_url": database}).database_url
    try:
        control = open_control_store(url)
    except (HeadcountError, ValueError) as exc:
        raise click.ClickException(explain(exc)) from exc
    try:
        yield control
    except HeadcountError as exc:
        raise click.ClickException(explain(exc)) from exc
    finally:
        control.close()


def _now() -> int:
    return int(time.time())


def _echo_json(document: object) -> None:
    click.echo(json.dumps(document))


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


def _key_json(key: SigningKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "environment_id": key.environment_id,
        "created_at": key.created_at,
        "deleted_at": key.deleted_at,
    }


def _table(*columns: str) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _print(renderable: object) -> None:
    Console(highlight=False).print(renderable)


# -- init ------------------------------------------------------------------------------------


@main.command("init")
@click.option("--name", default=DEFAULT_ENVIRONMENT_NAME, show_default=True, help="Its name.")
@database_option
@json_option
def init(name: str, database: str | None, as_json: bool) -> None:
    """Create an environment and an access token with the System permission."""
    with _store(database) as control:
        environment, issued = initialize(control, name, _now())
    if as_json:
        _echo_json(
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
    _print(grid)


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
    with _store(database) as control:
        environment = create_environment(control, name, _now())
    if as_json:
        _echo_json(_environment_json(environment))
        return
    _print(f"Created environment {environment.id} (env key {environment.env_key})")


@environments.command("list")
@database_option
@json_option
def environments_list(database: str | None, as_json: bool) -> None:
    """List every environment."""
    with _store(database) as control:
        found = control.list_environments()
    if as_json:
        _echo_json([_environment_json(e) for e in found])
        return
    table = _table("id", "name", "env key", "created at")
    for e in found:
        table.add_row(e.id, e.name, e.env_key, str(e.created_at))
    _print(table)


# -- access tokens ---------------------------------------------------------------------------


@main.group("access-tokens")
def access_tokens() -> None:
    """Access tokens: the id/secret pairs that call the System API."""


@access_tokens.command("create")
@click.option("--environment", "environment_id", required=True, metavar="ID")
@click.option(
    "--permission",
    "permissions",
    multiple=True,
    type=click.Choice(PERMISSIONS),
    help="Repeat for several; default: all (system:read and system:write).",
)
@database_option
@json_option
def access_tokens_create(
    environment_id: str, permissions: tuple[str, ...], database: str | None, as_json: bool
) -> None:
    """Create an access token; its secret is printed once."""
    with _store(database) as control:
        issued = create_access_token(control, environment_id, permissions or PERMISSIONS, _now())
    if as_json:
        _echo_json({**_token_json(issued.token), "secret": issued.secret})
        return
    _print(f"Access token id      {issued.token.id}")
    _print(f"Access token secret  {issued.secret}  <- shown only now")
    _print(f"Permissions          {' '.join(sorted(issued.token.permissions))}")


@access_tokens.command("list")
@click.option("--environment", "environment_id", default=None, metavar="ID")
@database_option
@json_option
def access_tokens_list(environment_id: str | None, database: str | None, as_json: bool) -> None:
    """List access tokens (never their secrets)."""
    with _store(database) as control:
        found = control.list_access_tokens(environment_id)
    if as_json:
        _echo_json([_token_json(t) for t in found])
        return
    table = _table("id", "environment", "permissions", "created at", "revoked")
    for t in found:
        table.add_row(
            t.id,
            t.environment_id,
            " ".join(sorted(t.permissions)),
            str(t.created_at),
            "yes" if t.revoked else "no",
        )
    _print(table)


@access_tokens.command("revoke")
@click.argument("token_id", metavar="ID")
@database_option
@json_option
def access_tokens_revoke(token_id: str, database: str | None, as_json: bool) -> None:
    """Revoke an access token: it authenticates nothing from now on."""
    with _store(database) as control:
        if not control.revoke_access_token(token_id):
            raise click.ClickException(f"no live access token {token_id!r}")
    if as_json:
        _echo_json({"id": token_id, "revoked": True})
        return
    _print(f"Revoked access token {token_id}")


# -- signing keys ----------------------------------------------------------------------------


@main.group("signing-keys")
def signing_keys() -> None:
    """Signing keys: RSA keys whose private half signs viewer-count tokens."""


@signing_keys.command("create")
@click.option("--environment", "environment_id", required=True, metavar="ID")
@database_option
@json_option
def signing_keys_create(environment_id: str, database: str | None, as_json: bool) -> None:
    """Create a signing key; its private key (base64 of a PEM) is printed once."""
    with _store(database) as control:
        issued = create_signing_key(control, environment_id, _now())
    if as_json:
        _echo_json({**_key_json(issued.key), "private_key": issued.private_key})
        return
    _print(f"Signing key id  {issued.key.id}")
    _print("Private key (base64 of a PEM; shown only now, Headcount does not keep it):")
    # Plain echo: the key must come out as one unbroken line, ready to paste.
    click.echo(issued.private_key)


@signing_keys.command("list")
@click.option("--environment", "environment_id", required=True, metavar="ID")
@database_option
@json_option
def signing_keys_list(environment_id: str, database: str | None, as_json: bool) -> None:
    """List the signing keys of an environment (deleted ones are left out)."""
    found: list[SigningKey] = []
    with _store(database) as control:
        while True:
            page = control.list_signing_keys(environment_id, _LIST_PAGE, len(found))
            found += page
            if len(page) < _LIST_PAGE:
                break
    if as_json:
        _echo_json([_key_json(k) for k in found])
        return
    table = _table("id", "created at")
    for k in found:
        table.add_row(k.id, str(k.created_at))
    _print(table)


@signing_keys.command("get")
@click.argument("key_id", metavar="ID")
@database_option
@json_option
def signing_keys_get(key_id: str, database: str | None, as_json: bool) -> None:
    """Show a signing key, deleted or not, with its public key."""
    with _store(database) as control:
        key = control.get_signing_key(key_id)
    if key is None:
        raise click.ClickException(f"no signing key {key_id!r}")
    public_key = key.public_key_pem.decode("ascii")
    if as_json:
        _echo_json({**_key_json(key), "public_key": public_key})
        return
    _print(f"id           {key.id}")
    _print(f"environment  {key.environment_id}")
    _print(f"created at   {key.created_at}")
    _print(f"deleted at   {key.deleted_at if key.deleted_at is not None else '-'}")
    click.echo(public_key, nl=False)


@signing_keys.command("delete")
@click.argument("key_id", metavar="ID")
@database_option
@json_option
def signing_keys_delete(key_id: str, database: str | None, as_json: bool) -> None:
    """Delete a signing key: tokens it signed stop working (running servers notice within
    their revocation poll)."""
    with _store(database) as control:
        if not control.delete_signing_key(key_id, _now()):
            raise click.ClickException(f"no signing key {key_id!r} (or it is already deleted)")
    if as_json:
        _echo_json({"id": key_id, "deleted": True})
        return
    _print(f"Deleted signing key {key_id}")
