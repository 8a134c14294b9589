"""Every setting of Headcount, declared once.

Each setting has a CLI flag, an environment variable ``HEADCOUNT_<NAME>``, a key in the
optional TOML config file (precedence and provenance: :mod:`headcount.settings_sources`) and a
line in the generated configuration reference (``docs/configuration.md``, made by
``headcount settings --markdown``; a test keeps the two in step). Settings are data: they are
loaded once, at start, into a frozen :class:`Settings`, and passed to whatever needs them.

**Validated where declared.** Each setting's ``type`` is a click parameter type (``IntRange``,
``FloatRange``, ``Choice``, or one of the few in :mod:`headcount.settings_types` for URLs,
roles, origins and booleans): a flag, a variable and a value given in code all pass through it,
so ``--port 70000``, ``--sweep-interval 0`` or ``HEADCOUNT_ROLE=nonsense`` are refused before
anything starts, with one line saying what is wrong (click's own words) and what is accepted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import click

from headcount.settings_types import SECONDS, Bool, Origins, Roles, Url

__all__ = ["SETTINGS", "Setting", "Settings", "load_settings"]


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
        Url("database URL", "headcount.stores.sql:check_database_url"),
        "Control store (environments, access tokens, signing keys): a SQLAlchemy URL, "
        "`sqlite:///path` (default, a file under ./.headcount/) or `postgresql://...`.",
        flag="--database",
    ),
    Setting(
        "live_url",
        "memory://",
        Url("live store URL", "headcount.bootstrap:check_live_url"),
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
        Roles(),
        "Which surfaces this process serves: `all`, or a comma list of "
        "`collector`, `counts`, `system`.",
    ),
    Setting(
        "liveness_window",
        60.0,
        SECONDS,
        "Seconds of silence (server receive time) after which a view stops counting. "
        "A playing view posts every ~10 s; one failed POST delays the next by 10-20 s more, "
        "so 60 s never drops a healthy view and matches Mux Data's 60 s view-idle rule.",
    ),
    Setting(
        "count_paused",
        False,
        Bool(),
        "Count paused and ended views as happening (Mux Data's concurrent viewers do not).",
    ),
    Setting(
        "sweep_interval",
        1.0,
        SECONDS,
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
        SECONDS,
        "Seconds between keep-alive comments on an idle /counts/stream (proxies and balancers "
        "close idle connections, often after 30-60 s: keep it below theirs).",
    ),
    Setting(
        "cors_origins",
        "*",
        Origins(),
        "Pages allowed to read /counts, /counts/stream and the collector's answers "
        "(`Access-Control-Allow-Origin`): `*` (any, as Mux answers), or a comma list of "
        "origins, each echoed to its own pages with `Vary: Origin`. Tokens, not origins, "
        "guard the counts; see docs/deployment.md.",
    ),
    Setting(
        "state_file",
        ".headcount/live-state.json",
        click.STRING,
        "Where the memory live store saves its views on shutdown and periodically, with a "
        "journal of the changes since beside it (`<file>.journal-N`); empty to disable both. "
        "See docs/deployment.md#crash-safety-of-the-memory-live-store.",
    ),
    Setting(
        "save_interval",
        30.0,
        SECONDS,
        "Seconds between snapshots of the live state (the journal keeps what changed since).",
    ),
    Setting(
        "journal_fsync_interval",
        1.0,
        SECONDS,
        "Seconds between forcing the memory live store's journal to disk: the most a power loss "
        "can take back (a killed process loses nothing: the journal is written before each "
        "answer).",
    ),
    Setting(
        "credentials_file",
        "",
        click.STRING,
        "Where the first start (and `headcount init`) writes the credentials it creates, "
        "owner-only (0600), instead of printing the secret; `MUX_TOKEN_ID=...` lines that "
        "Mux's CLI and SDKs read. An existing file is not overwritten (empty: print them).",
    ),
    Setting(
        "history_retention",
        86_400.0,
        click.FloatRange(min=60),
        "Seconds of history kept per content id and environment: peaks and the per-minute "
        "series (docs/history.md). Memory grows with this times the ids that were live.",
    ),
    Setting(
        "max_body_bytes",
        2 * 1024 * 1024,
        click.IntRange(min=1024),
        "Largest collector body accepted, in bytes; larger bodies get 413.",
    ),
    # Limits on what one client may cost (docs/deployment.md, "Limits"); each refusal is an
    # error envelope, then the connection closes.
    Setting(
        "max_url_bytes",
        32 * 1024,
        click.IntRange(min=1024),
        "Longest request target (path and query) accepted, in bytes; longer gets 414. A "
        "/counts/stream URL with its 32 tokens takes ~18 KB.",
    ),
    Setting(
        "max_header_bytes",
        32 * 1024,
        click.IntRange(min=1024),
        "Largest total of request header names and values, in bytes; more gets 431.",
    ),
    Setting(
        "max_headers", 100, click.IntRange(min=10), "Most request header fields; more gets 431."
    ),
    Setting(
        "header_timeout",
        10.0,
        SECONDS,
        "Seconds a client has to send a request's headers (from its first byte, or from "
        "the connection's start): past it 408 and the connection closes (slowloris).",
    ),
    Setting(
        "body_timeout",
        30.0,
        SECONDS,
        "Seconds a client has to send a request's body once its headers are in: past it 408.",
    ),
    Setting(
        "keep_alive_timeout",
        5.0,
        SECONDS,
        "Seconds an idle keep-alive connection is kept between requests. Behind a load "
        "balancer, set it above the balancer's own idle timeout.",
    ),
    Setting(
        "max_connections",
        100_000,
        click.IntRange(min=1),
        "Most connections one process holds (streams included); past it a new connection "
        "gets 503. Lowered to the descriptor limit (`ulimit -n`) less 64 for the stores.",
    ),
    Setting(
        "max_body_memory",
        64 * 1024 * 1024,
        click.IntRange(min=64 * 1024),
        "Most bytes of request bodies still arriving held by one process, over all "
        "connections; the request that would pass it gets 503.",
    ),
    Setting(
        "max_unsent_bytes",
        64 * 1024,
        click.IntRange(min=4096),
        "Bytes of answers a client may leave unread before the server stops reading its "
        "requests (flow control).",
    ),
    Setting(
        "send_timeout",
        30.0,
        SECONDS,
        "Seconds a client may leave more than --max-unsent-bytes unread before it is cut off.",
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
        "spreads over that many hash slots (a read sums them); the environment's own counter "
        "is split as finely as the views (partitions x 64 sub-keys). At least the number of "
        "cluster masters.",
    ),
    Setting(
        "log_level",
        "info",
        click.Choice(["debug", "info", "warning", "error"], case_sensitive=False),
        "Log level: debug, info, warning, error.",
    ),
    Setting(
        "log_format",
        "text",
        click.Choice(["text", "json"], case_sensitive=False),
        "Log lines as plain `text`, or `json`: one object a line (time, level, logger, "
        "message and the record's fields), for Headcount's and uvicorn's loggers alike.",
    ),
    Setting(
        "access_log",
        False,
        Bool(),
        "Log one line per request (logger `headcount.access`): client, method, path, status. "
        "Token query parameters are logged as `REDACTED`; headers and bodies never are.",
    ),
    Setting(
        "audit_log",
        "",
        click.STRING,
        "A file the audit lines (signing-key and access-token changes, logger "
        "`headcount.audit`) are also appended to, as JSON lines, by the server and the CLI "
        "alike (empty: only the log).",
    ),
    Setting(
        "metrics_token",
        "",
        click.STRING,
        "If set, `GET /metrics` answers only `Authorization: Bearer <this>` (401 otherwise). "
        "A secret: give it as the environment variable, not the flag.",
    ),
    Setting(
        "dashboard_session_secret",
        "",
        click.STRING,
        "Key material the dashboard's session cookies are signed with (beside the stored hashes "
        "of the session's access tokens, so a copy of the control store alone forges none). "
        "Give every node the same one (as the environment variable: a secret) for sessions "
        "that hold across nodes and restarts; empty: `serve` makes one at start, shared by "
        "its workers.",
    ),
    Setting(
        "demo",
        True,
        Bool(),
        "Serve the demo page `/demo` (a clip counted by mux-embed beside `<headcount-viewers>`). "
        "It makes a signing key of its own, kept in memory and deleted at shutdown, and hands "
        "out 10-minute tokens for its one demo video; see docs/widget.md.",
    ),
)


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
    cors_origins: str
    state_file: str
    history_retention: float
    save_interval: float
    journal_fsync_interval: float
    credentials_file: str
    max_body_bytes: int
    max_url_bytes: int
    max_header_bytes: int
    max_headers: int
    header_timeout: float
    body_timeout: float
    keep_alive_timeout: float
    max_connections: int
    max_body_memory: int
    max_unsent_bytes: int
    send_timeout: float
    token_leeway: int
    token_cache_size: int
    partitions: int
    counter_shards: int
    log_level: str
    log_format: str
    access_log: bool
    audit_log: str
    metrics_token: str
    dashboard_session_secret: str
    demo: bool

    def replace(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)

    def serves(self, surface: str) -> bool:
        roles = {r.strip() for r in self.role.split(",")}
        return "all" in roles or surface in roles


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
    config_file: str | None = None,
) -> Settings:
    """Explicit overrides (CLI flags), then ``HEADCOUNT_*`` variables, then the config file
    (``config_file``, else ``HEADCOUNT_CONFIG``), then the defaults: see
    :mod:`headcount.settings_sources`."""
    from headcount.settings_sources import resolve

    resolved = resolve(overrides, environ, config_file)
    return Settings(**{name: r.value for name, r in resolved.items()})
