"""Every setting of Headcount, declared once.

Each setting has a CLI flag, an environment variable ``HEADCOUNT_<NAME>`` and a line in the
generated configuration reference (``docs/configuration.md``, made by
``headcount settings --markdown``; a test keeps the two in step). Settings are data: they are
loaded once, at start, into a frozen :class:`Settings`, and passed to whatever needs them.

**Validated where declared.** Each setting's ``type`` is a click parameter type (``IntRange``,
``FloatRange``, ``Choice``, or one of the few below for URLs, roles and booleans): a flag, a
variable and a value given in code all pass through it, so ``--port 70000``, ``--sweep-interval
0`` or ``HEADCOUNT_ROLE=nonsense`` are refused before anything starts, with one line saying
what is wrong (click's own words) and what is accepted.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click

__all__ = ["SETTINGS", "Setting", "Settings", "load_settings", "settings_markdown"]


class _Bool(click.ParamType[bool]):
    """``1 true yes on`` / ``0 false no off`` and the empty string (an unset variable)."""

    name = "boolean"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        self.fail(f"{value!r} is not a boolean: use true or false.", param, ctx)


class _Roles(click.ParamType[str]):
    """``all``, or a comma list of surfaces."""

    name = "roles"
    SURFACES = ("collector", "counts", "system")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        roles = [r.strip() for r in str(value).split(",") if r.strip()]
        unknown = [r for r in roles if r != "all" and r not in self.SURFACES]
        if not roles or unknown:
            self.fail(
                f"{value!r} is not a role: use all, or a comma list of {', '.join(self.SURFACES)}.",
                param,
                ctx,
            )
        return ",".join(roles)


class _Url(click.ParamType[str]):
    """A store URL, checked by the adapter module that will open it (nothing is opened)."""

    def __init__(self, name: str, check: str) -> None:
        self.name = name
        self._check = check  # "module:function", imported when a value is checked

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        module, _, function = self._check.partition(":")
        try:
            getattr(importlib.import_module(module), function)(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


_SECONDS = click.FloatRange(min=0, min_open=True)  # a duration: more than 0 seconds


@dataclass(frozen=True)
class Setting:
    name: str
    default: Any
    type: click.ParamType[Any]
    help: str
    flag: str = ""
    env: str = ""

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def env_var(self) -> str:
        return self.env or "HEADCOUNT_" + self.name.upper()

    def parse(self, value: Any) -> Any:
        """``value`` (a string from a flag or a variable, or a value given in code) as this
        setting takes it; a ValueError saying what is wrong and what is accepted."""
        try:
            return self.type.convert(value, None, None)
        except click.BadParameter as exc:
            raise ValueError(exc.message) from exc

    @property
    def accepts(self) -> str:
        """What the configuration reference says the setting takes."""
        kind = self.type
        if isinstance(kind, click.Choice):
            return "one of " + ", ".join(f"`{c}`" for c in kind.choices)
        if isinstance(kind, click.IntRange | click.FloatRange):
            low, high = kind.min, kind.max
            number = "integer" if isinstance(kind, click.IntRange) else "number"
            if low is not None and high is not None:
                return f"{number} {low}-{high}"
            if low is not None:
                return f"{number} {'>' if kind.min_open else '≥'} {low}"
            return number
        return kind.name


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database_url",
        "sqlite:///.headcount/headcount.db",
        _Url("database URL", "headcount.stores.sql:check_database_url"),
        "Control store (environments, access tokens, signing keys): a SQLAlchemy URL, "
        "`sqlite:///path` (default, a file under ./.headcount/) or `postgresql://...`.",
        flag="--database",
    ),
    Setting(
        "live_url",
        "memory://",
        _Url("live store URL", "headcount.bootstrap:check_live_url"),
        "Live store (views and counters): `memory://` (default, one process), "
        "`redis://HOST:PORT/DB` (or `rediss://` for TLS) or `redis+cluster://HOST:PORT` "
        "(one seed node of a Redis Cluster); `?prefix=NAME` sets the key prefix (default `hc`). "
        "See docs/deployment.md.",
        flag="--live",
    ),
    Setting("host", "127.0.0.1", click.STRING, "Address the server binds to."),
    Setting(
        "workers",
        1,
        click.IntRange(1, 1024),
        "Server processes on this machine sharing the port (use all cores). Above 1 needs a "
        "shared live store (`--live redis://...`): with `memory://` each process would count "
        "only the views it received.",
    ),
    Setting("port", 8000, click.IntRange(1, 65535), "Port the server listens on."),
    Setting(
        "role",
        "all",
        _Roles(),
        "Which surfaces this process serves: `all`, or a comma list of "
        "`collector`, `counts`, `system`.",
    ),
    Setting(
        "liveness_window",
        60.0,
        _SECONDS,
        "Seconds of silence (server receive time) after which a view stops counting. "
        "A playing view posts every ~10 s; one failed POST delays the next by 10-20 s more, "
        "so 60 s never drops a healthy view and matches Mux Data's 60 s view-idle rule.",
    ),
    Setting(
        "count_paused",
        False,
        _Bool(),
        "Count paused and ended views as happening (Mux Data's concurrent viewers do not).",
    ),
    Setting(
        "sweep_interval",
        1.0,
        _SECONDS,
        "Seconds between sweeps that expire silent views; `updated_at` is the last sweep.",
    ),
    Setting(
        "snapshot_interval",
        1.0,
        click.FloatRange(min=0),
        "Longest time, in seconds, a /counts answer may be cached (Cache-Control max-age).",
    ),
    Setting(
        "stream_keepalive",
        15.0,
        _SECONDS,
        "Seconds between keep-alive comments on an idle /counts/stream (proxies and balancers "
        "close idle connections, often after 30-60 s: keep it below theirs).",
    ),
    Setting(
        "state_file",
        ".headcount/live-state.json",
        click.STRING,
        "Where the memory live store saves its views on shutdown and periodically "
        "(empty to disable).",
    ),
    Setting(
        "history_retention",
        86_400.0,
        click.FloatRange(min=60),
        "Seconds of history kept per content id and environment: peaks and the per-minute "
        "series (docs/history.md). Memory grows with this times the ids that were live.",
    ),
    Setting("save_interval", 30.0, _SECONDS, "Seconds between periodic saves of the live state."),
    Setting(
        "max_body_bytes",
        2 * 1024 * 1024,
        click.IntRange(min=1024),
        "Largest collector body accepted, in bytes; larger bodies get 413.",
    ),
    Setting(
        "token_leeway",
        10,
        click.IntRange(0, 3600),
        "Seconds of clock skew allowed when checking a token's `exp`, `nbf` and `iat`.",
    ),
    Setting(
        "token_cache_size",
        100_000,
        click.IntRange(min=0),
        "Most verified tokens kept in memory so repeated polls skip the RSA verify.",
    ),
    Setting(
        "partitions",
        256,
        click.IntRange(1, 65536),
        "Partitions of the live store (views are hashed into them). With Redis each one is a "
        "hash slot's worth of records: keep it well above the number of shards.",
    ),
    Setting(
        "counter_shards",
        8,
        click.IntRange(1, 256),
        "Redis live store: sub-keys each counter is split into by viewer, so one hot video "
        "spreads over that many hash slots (a read sums them).",
    ),
    Setting(
        "log_level",
        "info",
        click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
        "Log level: debug, info, warning, error.",
    ),
    Setting(
        "demo",
        True,
        _Bool(),
        "Serve the demo page `/demo` (a clip counted by mux-embed beside `<headcount-viewers>`). "
        "It makes a signing key of its own, kept in memory and deleted at shutdown, and hands "
        "out 10-minute tokens for its one demo video; see docs/widget.md.",
    ),
)

_BY_NAME = {s.name: s for s in SETTINGS}


@dataclass(frozen=True)
class Settings:
    database_url: str
    live_url: str
    host: str
    workers: int
    port: int
    role: str
    liveness_window: float
    count_paused: bool
    sweep_interval: float
    snapshot_interval: float
    stream_keepalive: float
    state_file: str
    history_retention: float
    save_interval: float
    max_body_bytes: int
    token_leeway: int
    token_cache_size: int
    partitions: int
    counter_shards: int
    log_level: str
    demo: bool

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def serves(self, surface: str) -> bool:
        roles = {r.strip() for r in self.role.split(",")}
        return "all" in roles or surface in roles


def load_settings(
    overrides: Mapping[str, Any] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Defaults, then ``HEADCOUNT_*`` variables, then explicit overrides (CLI flags)."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for setting in SETTINGS:
        value = setting.default
        if setting.env_var in env:
            raw = env[setting.env_var]
            try:
                value = setting.parse(raw)
            except ValueError as exc:
                raise ValueError(f"{setting.env_var}: {exc}") from exc
        values[setting.name] = value
    for name, value in (overrides or {}).items():
        if name not in _BY_NAME:
            raise KeyError(f"unknown setting {name!r}")
        if value is not None:
            setting = _BY_NAME[name]
            try:
                values[name] = setting.parse(value)
            except ValueError as exc:
                raise ValueError(f"{setting.cli_flag}: {exc}") from exc
    return Settings(**values)


def settings_markdown() -> str:
    lines = [
        "# Configuration reference",
        "",
        "Generated by `headcount settings --markdown` from `src/headcount/settings.py`; "
        "do not edit by hand.",
        "Every setting can be given as a CLI flag of `headcount serve` or as an environment "
        "variable; a flag wins over the variable, the variable over the default.",
        "",
        "A value outside what a setting accepts is refused before the server starts.",
        "",
        "| setting | flag | environment variable | default | accepts | meaning |",
        "|---|---|---|---|---|---|",
    ]
    for s in SETTINGS:
        default = f"`{s.default}`" if s.default != "" else "(empty)"
        lines.append(
            f"| {s.name} | `{s.cli_flag}` | `{s.env_var}` | {default} | {s.accepts} | {s.help} |"
        )
    return "\n".join(lines) + "\n"
