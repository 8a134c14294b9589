"""``headcount top``: a live terminal table of the ids with most views now (rich), read from
a server's ``/system/v1/live`` with an access token (the ``data:read`` permission).

Credentials: ``--access-token-id`` / ``--access-token-secret``, else ``MUX_TOKEN_ID`` /
``MUX_TOKEN_SECRET`` (the variables Mux's SDKs and CLI read); the server: ``--url``, else
``MUX_BASE_URL`` (mux-node's), else ``http://127.0.0.1:8000``. A secret is never a default
shown in ``--help``.
"""

from __future__ import annotations

import time

import click
from rich.console import Console
from rich.live import Live
from rich.table import Table

from headcount.cli import main
from headcount.core.ids import ID_TYPES
from headcount.history.model import LiveEntry, iso_time
from headcount.sdk.client import CountsAPIError
from headcount.sdk.live import LiveClient

__all__ = ["top_table"]


def top_table(entries: list[LiveEntry], url: str, now: float) -> Table:
    table = Table(
        title=f"Headcount top — {url}",
        caption=f"{iso_time(now)} · ids with most views now",
        title_justify="left",
    )
    table.add_column("#", justify="right")
    table.add_column("id type")
    table.add_column("id")
    table.add_column("views", justify="right")
    table.add_column("viewers", justify="right")
    table.add_column("peak views", justify="right")
    table.add_column("peak at")
    for rank, e in enumerate(entries, 1):
        table.add_row(
            str(rank),
            e.id_type,
            e.id,
            str(e.views),
            str(e.viewers),
            str(e.peak_views),
            (iso_time(e.peak_views_at) or "-").replace("T", " "),
        )
    if not entries:
        table.add_row("", "", "nobody is watching", "0", "0", "", "")
    return table


@main.command("top")
@click.option(
    "--url", envvar="MUX_BASE_URL", default="http://127.0.0.1:8000", show_default=True,
    help="The server (or MUX_BASE_URL).",
)  # fmt: skip
@click.option("--access-token-id", envvar="MUX_TOKEN_ID", required=True, help="Or MUX_TOKEN_ID.")
@click.option(
    "--access-token-secret", envvar="MUX_TOKEN_SECRET", required=True,
    help="Or MUX_TOKEN_SECRET.", show_default=False,
)  # fmt: skip
@click.option("--id-type", type=click.Choice(ID_TYPES), help="Only this id type.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 100))
@click.option(
    "--interval", default=2.0, show_default=True, type=click.FloatRange(min=0.5),
    help="Seconds between refreshes.",
)  # fmt: skip
@click.option("--once", is_flag=True, help="Print one table and exit.")
def top_command(
    url: str,
    access_token_id: str,
    access_token_secret: str,
    id_type: str | None,
    limit: int,
    interval: float,
    once: bool,
) -> None:
    """A live table of the ids with most views now, their viewers and peaks."""
    console = Console()
    with LiveClient(url, access_token_id, access_token_secret) as client:

        def table() -> Table:
            try:
                entries = client.top(id_type, limit)
            except CountsAPIError as exc:
                raise click.ClickException(str(exc)) from None
            except Exception as exc:  # httpx's connection errors: say which server
                raise click.ClickException(f"{url}: {exc}") from None
            return top_table(entries, url, time.time())

        if once:
            console.print(table())
            return
        with Live(table(), console=console, refresh_per_second=4, screen=False) as live:
            try:
                while True:
                    time.sleep(interval)
                    live.update(table())
            except KeyboardInterrupt:
                pass
