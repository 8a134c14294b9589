"""``headcount token sign`` and ``headcount counts``: the SDK from a shell.

Both are thin shells over :func:`headcount.sdk.sign_viewer_counts` and
:class:`headcount.sdk.CountsClient`. The private key can come from a file, from standard input
(``-``), from ``MUX_PRIVATE_KEY`` (mux-node's variable) or, least safely, from the command line;
the key id likewise from ``MUX_SIGNING_KEY``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from headcount.cli import main
from headcount.core.ids import ID_TYPES, SHORT_ID_TYPES

if TYPE_CHECKING:
    from headcount.sdk import CountsClient, ViewerCounts

__all__ = ["counts_command", "token_group"]

_TYPES = [*ID_TYPES, *SHORT_ID_TYPES]


@main.group("token")
def token_group() -> None:
    """Sign viewer-count tokens for GET /counts."""


def _private_key_value(value: str) -> str:
    """A file path, ``-`` for stdin, or the key itself (base64 of a PEM, or a PEM)."""
    if value == "-":
        return sys.stdin.read()
    if value.lstrip().startswith("-----BEGIN"):
        return value
    try:
        path = Path(value).expanduser()
        if path.is_file():
            return path.read_text()
    except OSError:  # e.g. a base64 key is longer than any file name may be
        pass
    return value


@token_group.command("sign")
@click.option("--id", "id_", required=True, help="The id to count (the token's sub).")
@click.option(
    "--type",
    "type_",
    type=click.Choice(_TYPES),
    default="video_id",
    show_default=True,
    help="The id's type (the token's aud); mux-node's short names work too.",
)
@click.option(
    "--key-id",
    envvar="MUX_SIGNING_KEY",
    required=True,
    help="The signing key's id (or set MUX_SIGNING_KEY).",
)
@click.option(
    "--private-key",
    envvar="MUX_PRIVATE_KEY",
    required=True,
    help="A file holding the private key, '-' to read it from stdin, or the key itself as the "
    "System API returned it (base64 of a PEM); or set MUX_PRIVATE_KEY.",
)
@click.option(
    "--expires",
    default="7d",
    show_default=True,
    help="Lifetime: seconds, or a number with a unit (s, m, h, d, w, y), e.g. 1h.",
)
def sign_command(id_: str, type_: str, key_id: str, private_key: str, expires: str) -> None:
    """Print a signed viewer-counts token (RS256, like mux-node's signViewerCounts)."""
    from headcount.sdk import sign_viewer_counts  # imported on use: keeps `headcount` quick

    try:
        token = sign_viewer_counts(
            id_,
            type=type_,
            key_id=key_id,
            private_key=_private_key_value(private_key),
            expires_in=expires,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(token)


def _as_json(counts: ViewerCounts) -> str:
    return json.dumps(
        {
            "views": counts.views,
            "viewers": counts.viewers,
            "updated_at": counts.updated_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        },
        separators=(",", ":"),
    )


def _as_text(counts: ViewerCounts) -> str:
    return (
        f"views       {counts.views}\n"
        f"viewers     {counts.viewers}\n"
        f"updated_at  {counts.updated_at.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    )


def _table(url: str, counts: ViewerCounts | None, problem: str | None, polls: int) -> Table:
    table = Table(title=f"Headcount {url}", show_header=False, min_width=44)
    table.add_column(style="bold")
    table.add_column(justify="right")
    if counts is not None:
        table.add_row("views", f"{counts.views:,}")
        table.add_row("viewers", f"{counts.viewers:,}")
        table.add_row("updated_at", counts.updated_at.strftime("%Y-%m-%d %H:%M:%S UTC"))
    table.add_row("polls", str(polls))
    if problem:
        table.add_row("[red]last error", f"[red]{problem}")
    table.caption = "Ctrl-C to stop"
    return table


@main.command("counts")
@click.option("--url", required=True, help="Base URL of the counts server, e.g. http://host:8000.")
@click.option("--token", required=True, help="A viewer-counts token (headcount token sign).")
@click.option("--watch", is_flag=True, help="Keep polling and show a live display (Ctrl-C stops).")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.05),
    default=2.0,
    show_default=True,
    help="Seconds between polls with --watch.",
)
@click.option(
    "--count",
    "max_polls",
    type=click.IntRange(min=1),
    default=None,
    help="With --watch, stop after this many polls.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one line per poll).")
def counts_command(
    url: str, token: str, watch: bool, interval: float, max_polls: int | None, as_json: bool
) -> None:
    """Print the views and viewers a token reads (GET /counts)."""
    from headcount.sdk import CountsClient  # imported on use: keeps `headcount` quick

    with CountsClient(url) as client:
        if not watch:
            counts = _fetch(client, token)
            click.echo(_as_json(counts) if as_json else _as_text(counts))
            return
        try:
            if as_json:
                _watch_json(client, token, interval, max_polls)
            else:
                _watch_live(client, token, interval, max_polls)
        except KeyboardInterrupt:
            pass


def _fetch(client: CountsClient, token: str) -> ViewerCounts:
    from headcount.sdk import CountsAPIError

    try:
        return client.get(token)
    except CountsAPIError as exc:
        raise click.ClickException(str(exc)) from None
    except Exception as exc:  # httpx transport errors: name the URL, not a traceback
        raise click.ClickException(f"{client.url}: {exc}") from None


def _poll(client: CountsClient, token: str) -> tuple[ViewerCounts | None, str | None]:
    """One poll while watching: a refused token ends the watch (retrying cannot fix it); a
    network error or a 5xx is shown and retried at the next poll."""
    from headcount.sdk import CountsAPIError

    try:
        return client.get(token), None
    except CountsAPIError as exc:
        if 400 <= exc.status_code < 500:
            raise click.ClickException(str(exc)) from None
        return None, str(exc)
    except Exception as exc:
        return None, f"{type(exc).__name__}: {exc}"


def _watch_json(client: CountsClient, token: str, interval: float, max_polls: int | None) -> None:
    polls = 0
    while max_polls is None or polls < max_polls:
        counts, problem = _poll(client, token)
        polls += 1
        click.echo(_as_json(counts) if counts else json.dumps({"error": problem}))
        if max_polls is None or polls < max_polls:
            time.sleep(interval)


def _watch_live(client: CountsClient, token: str, interval: float, max_polls: int | None) -> None:
    polls = 0
    last: ViewerCounts | None = None
    with Live(_table(client.url, None, None, 0), console=Console(), auto_refresh=False) as live:
        while max_polls is None or polls < max_polls:
            counts, problem = _poll(client, token)
            polls += 1
            last = counts or last
            live.update(_table(client.url, last, problem, polls), refresh=True)
            if max_polls is None or polls < max_polls:
                time.sleep(interval)
