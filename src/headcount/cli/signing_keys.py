"""``headcount signing-keys``: create, list, get and delete signing keys on the control store,
through the same functions the System API uses. A private key is printed once, by ``create``.
"""

from __future__ import annotations

from typing import Any

import click

from headcount.audit import audit, cli_actor
from headcount.auth.signing_keys import create_signing_key
from headcount.cli import main
from headcount.cli.common import (
    LIST_PAGE,
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
from headcount.stores.control import SigningKey

__all__ = ["signing_keys"]


def _key_json(key: SigningKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "environment_id": key.environment_id,
        "created_at": key.created_at,
        "deleted_at": key.deleted_at,
    }


# -- signing keys ----------------------------------------------------------------------------


@main.group("signing-keys")
def signing_keys() -> None:
    """Signing keys: RSA keys whose private half signs viewer-count tokens."""


@signing_keys.command("create")
@environment_option()
@database_option
@json_option
def signing_keys_create(environment: str, database: str | None, as_json: bool) -> None:
    """Create a signing key; its private key (base64 of a PEM) is printed once."""
    with open_store(database) as control:
        at = now()
        issued = create_signing_key(control, environment_id(control, environment), at)
    audit(
        "signing_key.create",
        actor=cli_actor(),
        subject=issued.key.id,
        environment_id=issued.key.environment_id,
        at=at,
    )
    if as_json:
        echo_json({**_key_json(issued.key), "private_key": issued.private_key})
        return
    show(f"Signing key id  {issued.key.id}")
    show("Private key (base64 of a PEM; shown only now, Headcount does not keep it):")
    # Plain echo: the key must come out as one unbroken line, ready to paste.
    click.echo(issued.private_key)


@signing_keys.command("list")
@environment_option()
@database_option
@json_option
def signing_keys_list(environment: str, database: str | None, as_json: bool) -> None:
    """List the signing keys of an environment (deleted ones are left out)."""
    found: list[SigningKey] = []
    with open_store(database) as control:
        env_id = environment_id(control, environment)
        while True:
            page = control.list_signing_keys(env_id, LIST_PAGE, len(found))
            found += page
            if len(page) < LIST_PAGE:
                break
    if as_json:
        echo_json([_key_json(k) for k in found])
        return
    rows = table("id", "created at")
    for k in found:
        rows.add_row(k.id, str(k.created_at))
    show(rows)


@signing_keys.command("get")
@click.argument("key_id", metavar="ID")
@database_option
@json_option
def signing_keys_get(key_id: str, database: str | None, as_json: bool) -> None:
    """Show a signing key, deleted or not, with its public key."""
    with open_store(database) as control:
        key = control.get_signing_key(key_id)
    if key is None:
        raise click.ClickException(f"no signing key {key_id!r}")
    public_key = key.public_key_pem.decode("ascii")
    if as_json:
        echo_json({**_key_json(key), "public_key": public_key})
        return
    show(f"id           {key.id}")
    show(f"environment  {key.environment_id}")
    show(f"created at   {key.created_at}")
    show(f"deleted at   {key.deleted_at if key.deleted_at is not None else '-'}")
    click.echo(public_key, nl=False)


@signing_keys.command("delete")
@click.argument("key_id", metavar="ID")
@database_option
@json_option
def signing_keys_delete(key_id: str, database: str | None, as_json: bool) -> None:
    """Delete a signing key: tokens it signed stop working (running servers notice within
    their revocation poll)."""
    with open_store(database) as control:
        key = control.get_signing_key(key_id)
        at = now()
        if key is None or not control.delete_signing_key(key_id, at):
            raise click.ClickException(f"no signing key {key_id!r} (or it is already deleted)")
    audit(
        "signing_key.delete",
        actor=cli_actor(),
        subject=key_id,
        environment_id=key.environment_id,
        at=at,
    )
    if as_json:
        echo_json({"id": key_id, "deleted": True})
        return
    show(f"Deleted signing key {key_id}")
