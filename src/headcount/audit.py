"""Audit lines: one for every change to a signing key or an access token, wherever it is made.

Each line says **who** (``actor``: ``access_token:<id>`` for a System API call, with the
client's address; ``cli:<OS user>`` for a ``headcount`` command; ``demo`` for the demo page's
own key), **what** (``action``: ``signing_key.create``, ``signing_key.delete``,
``access_token.create``, ``access_token.revoke``; the key's or token's id; its environment)
and **when** (``at``, epoch seconds, beside the log line's own time). It goes to the logger
``headcount.audit`` (:mod:`headcount.log_config`: never filtered by the log level, and also
appended to the ``audit_log`` file when that is set). No secret is ever part of it: a new
key's private half and a new token's secret are never passed here.
"""

from __future__ import annotations

import getpass
import logging
from typing import Final

__all__ = ["DEMO", "audit", "cli_actor", "token_actor"]

log = logging.getLogger("headcount.audit")

DEMO: Final = "demo"


def token_actor(token_id: str) -> str:
    return f"access_token:{token_id}"


def cli_actor() -> str:
    try:
        user = getpass.getuser()
    except Exception:  # no user name for this uid (a container's bare uid)
        import os

        user = f"uid {os.getuid()}"
    return f"cli:{user}"


def audit(
    action: str,
    *,
    actor: str,
    subject: str,
    environment_id: str | None,
    at: float,
    client: str | None = None,
) -> None:
    """Log one change: ``action`` done to ``subject`` (a key or token id) by ``actor``."""
    where = f" from {client}" if client else ""
    log.info(
        "audit: %s %s (environment %s) by %s%s",
        action,
        subject,
        environment_id or "-",
        actor,
        where,
        extra={
            "action": action,
            "actor": actor,
            "subject": subject,
            "environment_id": environment_id,
            "at": int(at),
            "client": client,
        },
    )
