"""The ``headcount`` command: a thin shell over the objects the HTTP app uses."""

from __future__ import annotations

import click

__all__ = ["main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="headcount")
def main() -> None:
    """Headcount: how many people are watching this video right now."""


def _register() -> None:
    # Each command group lives in its own module; importing it attaches it to `main`.
    import headcount.cli.configure
    import headcount.cli.control
    import headcount.cli.serve
    import headcount.cli.signing_keys
    import headcount.cli.simulate
    import headcount.cli.tokens
    import headcount.cli.top  # noqa: F401


_register()
