"""What the control-plane commands share (:mod:`headcount.cli.control`,
:mod:`headcount.cli.signing_keys`): the ``--database``, ``--environment`` and ``--json``
options, the control store they open, and how they print.

The database is the one the server uses: ``--database``, else ``HEADCOUNT_DATABASE_URL``, else
the SQLite file under ``./.headcount/`` of the current directory (where ``make run`` and
``headcount serve`` keep it). A SQLite file that does not exist is refused with what to do,
never silently created empty, except by ``headcount init``.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from headcount.errors import HeadcountError
from headcount.log_config import configure_cli_logging
from headcount.settings import load_settings
from headcount.stores.control import ControlStore
from headcount.stores.sql import open_control_store, sql_url

__all__ = [
    "LIST_PAGE",
    "database_option",
    "echo_json",
    "environment_id",
    "environment_option",
    "explain",
    "json_option",
    "now",
    "open_store",
    "show",
    "table",
]

LIST_PAGE = 100


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


def _missing_sqlite_file(url: str) -> str | None:
    """The path of a SQLite database URL whose file does not exist, else None."""
    if not url.startswith("sqlite:"):
        return None
    path = sql_url(url).database
    if not path or path == ":memory:" or Path(path).exists():
        return None
    return path


def environment_option(*, required: bool = True) -> Callable[..., Any]:
    return click.option(
        "--environment",
        "environment",
        required=required,
        default=None,
        metavar="ID|NAME",
        help="The environment, by its id or by its name.",
    )


def environment_id(control: ControlStore, wanted: str) -> str:
    """The id of the environment ``wanted`` names: an id, else a name that only one has."""
    if control.get_environment(wanted) is not None:
        return wanted
    named = [e for e in control.list_environments() if e.name == wanted]
    if len(named) == 1:
        return named[0].id
    if not named:
        raise click.ClickException(
            f"no environment {wanted!r} (by id or by name): `headcount environments list` "
            "shows them."
        )
    raise click.ClickException(
        f"{len(named)} environments are named {wanted!r}; give one of their ids: "
        + ", ".join(e.id for e in named)
    )


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
def open_store(database: str | None, *, create: bool = False) -> Iterator[ControlStore]:
    """The control store the server uses (``--database``, else ``HEADCOUNT_DATABASE_URL``,
    else the SQLite file under ``./.headcount/``). A SQLite file that does not exist is
    refused, not made empty, unless ``create`` (``headcount init``)."""
    settings = load_settings({"database_url": database})
    configure_cli_logging(settings)  # the audit lines of what the command changes
    url = settings.database_url
    missing = _missing_sqlite_file(url)
    if missing is not None and not create:
        raise click.ClickException(
            f"there is no database at {missing}: run this where the server runs (its "
            "./.headcount/), or point --database / HEADCOUNT_DATABASE_URL at the server's; "
            "`headcount init` (or the first `headcount serve`) creates one."
        )
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


def now() -> int:
    return int(time.time())


def echo_json(document: object) -> None:
    click.echo(json.dumps(document))


def table(*columns: str) -> Table:
    table = Table(show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def show(renderable: object) -> None:
    Console(highlight=False).print(renderable)
