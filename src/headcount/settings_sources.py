"""Where each setting's value comes from: flags, ``HEADCOUNT_*`` variables, a config file,
the defaults — in that order of precedence (the first that gives a value wins).

The config file is TOML, one key per setting, named as the setting is
(``database_url = "postgresql://..."``, ``port = 8080``, ``count_paused = true``). It is read
only when named, by ``--config PATH`` or ``HEADCOUNT_CONFIG``: no default location is looked
for, so what a server runs with never depends on which directory it was started in or on a
file left behind (docs/configuration.md). Every value passes through the same click type as the
flag (:mod:`headcount.settings`); an unknown key or a bad value is a :class:`ConfigFileError`
whose one line names the file, the key and what to write instead.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from headcount.settings import SETTINGS, Setting

__all__ = [
    "CONFIG_ENV",
    "ConfigFileError",
    "Resolved",
    "config_path",
    "masked",
    "read_config_file",
    "resolve",
]

CONFIG_ENV = "HEADCOUNT_CONFIG"

_BY_NAME = {s.name: s for s in SETTINGS}


class ConfigFileError(ValueError):
    """A config file that cannot be used: missing, not TOML, an unknown key or a bad value."""


@dataclass(frozen=True)
class Resolved:
    value: Any
    source: str  # "flag --port", "env HEADCOUNT_PORT", "config file PATH" or "default"


def config_path(explicit: str | None, environ: Mapping[str, str]) -> str | None:
    """The config file to read: ``--config``, else ``HEADCOUNT_CONFIG``, else none."""
    return explicit or environ.get(CONFIG_ENV) or None


def _scalar_text(value: Any) -> str | None:
    """What a TOML value of the wrong kind is, or None when it is a string, number or bool."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    if not isinstance(value, str | int | float | bool):
        return "a date or time"
    return None


def _check_value(path: str, setting: Setting, value: Any) -> Any:
    example = setting.default if setting.default != "" else "..."
    write = f"write e.g. {setting.name} = {_toml(example)} (accepts {setting.accepts})"
    kind = _scalar_text(value)
    if kind is None and isinstance(value, bool) and not isinstance(setting.default, bool):
        kind = "a boolean"
    if kind is not None:
        raise ConfigFileError(f"{path}: {setting.name}: {kind} is not accepted; {write}.")
    try:
        return setting.parse(value)
    except ValueError as exc:
        raise ConfigFileError(f"{path}: {setting.name}: {exc}") from None


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def read_config_file(path: str) -> dict[str, Any]:
    """Every setting the file gives, parsed and checked; a :class:`ConfigFileError` otherwise."""
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except FileNotFoundError:
        raise ConfigFileError(
            f"{path}: no such config file; give the path of a TOML file to --config or "
            f"{CONFIG_ENV}, or leave both unset."
        ) from None
    except OSError as exc:
        raise ConfigFileError(f"{path}: cannot be read ({exc.strerror}).") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigFileError(
            f"{path}: not a TOML file ({exc}); write one `name = value` line per setting."
        ) from None
    values: dict[str, Any] = {}
    for key, value in document.items():
        setting = _BY_NAME.get(key)
        if setting is None:
            close = difflib.get_close_matches(key.replace("-", "_"), _BY_NAME, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "`headcount settings` lists them."
            raise ConfigFileError(f"{path}: {key}: not a setting of Headcount; {hint}")
        values[key] = _check_value(path, setting, value)
    return values


def resolve(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> dict[str, Resolved]:
    """Each setting's value and where it came from. ``overrides`` are the flags (None: not
    given); ``config_file`` is ``--config`` (else ``HEADCOUNT_CONFIG`` is looked up)."""
    env = os.environ if environ is None else environ
    path = config_path(config_file, env)
    from_file = read_config_file(path) if path else {}
    resolved: dict[str, Resolved] = {}
    for setting in SETTINGS:
        if setting.env_var in env:
            try:
                value = setting.parse(env[setting.env_var])
            except ValueError as exc:
                raise ValueError(f"{setting.env_var}: {exc}") from exc
            resolved[setting.name] = Resolved(value, f"env {setting.env_var}")
        elif setting.name in from_file:
            resolved[setting.name] = Resolved(from_file[setting.name], f"config file {path}")
        else:
            resolved[setting.name] = Resolved(setting.default, "default")
    for name, value in (overrides or {}).items():
        if name not in _BY_NAME:
            raise KeyError(f"unknown setting {name!r}")
        if value is not None:
            setting = _BY_NAME[name]
            try:
                resolved[name] = Resolved(setting.parse(value), f"flag {setting.cli_flag}")
            except ValueError as exc:
                raise ValueError(f"{setting.cli_flag}: {exc}") from exc
    return resolved


# A setting whose name says it holds a secret is shown as *** whole; in any other value, the
# password of a URL's user info (scheme://user:PASSWORD@host) and secret-named query
# parameters are masked.
_SECRET_NAME = re.compile(r"(^|_)(token|secret|password)$")
_URL_PASSWORD = re.compile(r"(?P<head>[a-z][a-z0-9+.-]*://[^/@:\s]*:)[^/@\s]+(?=@)", re.I)
_QUERY_SECRET = re.compile(r"(?P<head>[?&][^=&#]*(?:password|secret|token)[^=&#]*=)[^&#]*", re.I)


def masked(name: str, value: Any) -> str:
    """``value`` of setting ``name`` as it may be shown on a terminal or in a log."""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if text and _SECRET_NAME.search(name):
        return "***"
    text = _URL_PASSWORD.sub(r"\g<head>***", text)
    return _QUERY_SECRET.sub(r"\g<head>***", text)
