"""How Headcount's log lines look and where they go: the one place logging is configured.

- ``log_format=text`` (default): uvicorn's own formatter (``INFO:     message``) for uvicorn's
  loggers and Headcount's alike.
- ``log_format=json``: one JSON object a line, ``{"time", "level", "logger", "message", ...}``
  plus every field the record carries (an access line's ``client``, ``method``, ``path``,
  ``status``; an audit line's ``action``, ``actor``...), and ``exception`` with the traceback
  when there is one. ``time`` is UTC, ISO 8601 with milliseconds.

Three loggers of Headcount's own: ``headcount`` (everything), ``headcount.access`` (one line a
request, when ``access_log`` is on: :mod:`headcount.http.access_log`) and ``headcount.audit``
(every signing-key and access-token change: :mod:`headcount.audit`). The last two log at INFO
whatever ``log_level`` is: turning the level down to ``warning`` keeps the access lines that were
asked for and never drops an audit line. With ``audit_log`` set, the audit lines are also
appended to that file as JSON lines, by the server (:func:`uvicorn_log_config`) and by the CLI
(:func:`configure_cli_logging`) alike.
"""

from __future__ import annotations

import copy
import datetime
import logging
import sys
from typing import Any, Final

import orjson

from headcount.settings import Settings

__all__ = ["JsonFormatter", "configure_cli_logging", "uvicorn_log_config"]

# Attributes every LogRecord has: anything else on a record is a field given with ``extra``.
_STANDARD: Final = frozenset(vars(logging.makeLogRecord({}))) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module's text)."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, value in vars(record).items():
            if name not in _STANDARD and not name.startswith("_") and name not in document:
                document[name] = value
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            document["stack"] = self.formatStack(record.stack_info)
        return orjson.dumps(document, default=str).decode()


def _json_formatter() -> dict[str, Any]:
    return {"()": f"{__name__}.JsonFormatter"}


def uvicorn_log_config(settings: Settings) -> dict[str, Any]:
    """uvicorn's ``log_config`` for ``headcount serve``: uvicorn's default, Headcount's loggers
    beside uvicorn's on the same handler, in the chosen format."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["headcount"] = {
        "handlers": ["default"],
        "level": settings.log_level.upper(),
        "propagate": False,
    }
    # Children of "headcount" (its handler writes them), at INFO whatever the level.
    config["loggers"]["headcount.access"] = {"level": "INFO", "propagate": True}
    config["loggers"]["headcount.audit"] = {"level": "INFO", "propagate": True}
    if settings.log_format == "json":
        for name in list(config["formatters"]):
            config["formatters"][name] = _json_formatter()
    if settings.audit_log:
        config["formatters"]["headcount_json"] = _json_formatter()
        config["handlers"]["headcount_audit_file"] = {
            "class": "logging.FileHandler",
            "filename": settings.audit_log,
            "formatter": "headcount_json",
        }
        config["loggers"]["headcount.audit"]["handlers"] = ["headcount_audit_file"]
    return config


_CLI_HANDLER: Final = "_headcount_cli"  # marks the handlers configure_cli_logging installed


def configure_cli_logging(settings: Settings) -> None:
    """The audit lines of a CLI command: on stderr (stdout stays the command's answer, e.g.
    its ``--json``), in the chosen format, and appended to ``audit_log`` when set. Called by
    every command that may change a key or a token; calling it again replaces what it set."""
    audit = logging.getLogger("headcount.audit")
    for handler in [h for h in audit.handlers if getattr(h, _CLI_HANDLER, False)]:
        audit.removeHandler(handler)
        handler.close()
    stderr = _Stderr()
    stderr.setFormatter(
        JsonFormatter() if settings.log_format == "json" else logging.Formatter("%(message)s")
    )
    handlers: list[logging.Handler] = [stderr]
    if settings.audit_log:
        appended = logging.FileHandler(settings.audit_log)
        appended.setFormatter(JsonFormatter())
        handlers.append(appended)
    for handler in handlers:
        setattr(handler, _CLI_HANDLER, True)
        audit.addHandler(handler)
    audit.setLevel(logging.INFO)


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a line is written (click's test runner, and
    anything else that swaps it, gets the line)."""

    @property
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass
