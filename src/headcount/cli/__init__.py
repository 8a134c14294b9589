"""The ``headcount`` command: a thin shell over the objects the HTTP app uses."""

from __future__ import annotations

import click

from headcount.settings import settings_markdown

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="headcount")
def main() -> None:
    """Headcount: how many people are watching this video right now."""


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the configuration reference as Markdown.")
def settings_command(markdown: bool) -> None:
    """Show every setting, its flag, environment variable and default."""
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    from headcount.settings import SETTINGS

    for s in SETTINGS:
        click.echo(f"{s.cli_flag:<22} {s.env_var:<32} default={s.default!r}")


def _register() -> None:
    # Each command group lives in its own module; importing it attaches it to `main`.
    import headcount.cli.control
    import headcount.cli.serve
    import headcount.cli.signing_keys
    import headcount.cli.simulate
    import headcount.cli.tokens
    import headcount.cli.top  # noqa: F401


_register()
