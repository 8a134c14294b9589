"""The settings on the command line: every setting of :data:`headcount.settings.SETTINGS` as
a flag (generated from the declaration), ``--config PATH``, and ``headcount settings``, which
shows each effective value and where it came from (flag, variable, config file or default),
secrets masked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from headcount.cli import main
from headcount.settings import SETTINGS, Settings, load_settings
from headcount.settings_docs import settings_markdown
from headcount.settings_sources import CONFIG_ENV, ConfigFileError, Resolved, masked, resolve

__all__ = [
    "ConfigFileProblem",
    "config_option",
    "effective_settings",
    "setting_options",
    "settings_from_flags",
]


class ConfigFileProblem(click.ClickException):
    """A config file refused: one line, exit 2 (like a bad flag), no usage text."""

    exit_code = 2


def setting_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """One flag per setting, taking raw strings: each is parsed and checked by its setting's
    own type (settings.py), so a flag, its ``HEADCOUNT_*`` variable and its config-file key
    accept exactly the same values."""
    for setting in reversed(SETTINGS):
        shown = setting.default if setting.default != "" else "(empty)"
        command = click.option(
            setting.cli_flag,
            setting.name,
            default=None,
            metavar="VALUE",
            help=f"{setting.help} [env {setting.env_var}; default {shown}]",
        )(command)
    return config_option(command)


def config_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--config",
        "config",
        default=None,
        metavar="PATH",
        help=f"A TOML file of settings (`name = value`) [env {CONFIG_ENV}; default: none]. "
        "Flags win over variables, variables over the file.",
    )(command)


def resolved_from_flags(raw: dict[str, Any], config: str | None) -> dict[str, Resolved]:
    """Each setting's value and source, from the flags of :func:`setting_options` (a bad
    one is a usage error naming the flag), the variables and the config file."""
    overrides: dict[str, Any] = {}
    for setting in SETTINGS:
        value = raw.get(setting.name)
        if value is None:
            continue
        try:
            overrides[setting.name] = setting.parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=setting.cli_flag) from exc
    try:
        return resolve(overrides, config_file=config)
    except ConfigFileError as exc:
        raise ConfigFileProblem(str(exc)) from exc
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


def settings_from_flags(raw: dict[str, Any], config: str | None) -> Settings:
    resolved = resolved_from_flags(raw, config)
    return Settings(**{name: r.value for name, r in resolved.items()})


def effective_settings(overrides: dict[str, Any]) -> Settings:
    """The settings a command other than ``serve`` runs with (its own options as
    ``overrides``, then ``HEADCOUNT_*`` and ``HEADCOUNT_CONFIG``), refused like serve's."""
    try:
        return load_settings(overrides)
    except ConfigFileError as exc:
        raise ConfigFileProblem(str(exc)) from exc
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc


@main.command("settings")
@click.option("--markdown", is_flag=True, help="Print the configuration reference as Markdown.")
@setting_options
def settings_command(markdown: bool, config: str | None, **raw: str | None) -> None:
    """Show each setting's effective value and where it came from (secrets masked).

    Takes the flags of `headcount serve`, so `headcount settings --port 9000` shows what
    `headcount serve --port 9000` would run with.
    """
    if markdown:
        click.echo(settings_markdown(), nl=False)
        return
    resolved = resolved_from_flags(raw, config)
    shown = {s.name: masked(s.name, resolved[s.name].value) or "(empty)" for s in SETTINGS}
    name_width = max(len(name) for name in shown)
    value_width = min(max(len(value) for value in shown.values()), 40)
    for name, value in shown.items():
        click.echo(f"{name:<{name_width}}  {value:<{value_width}}  {resolved[name].source}")
