"""The credentials file: what the first start (and ``headcount init``) creates, written where
a service manager's kept logs never see it (the ``credentials_file`` setting).

The file is readable and writable by its owner only from the moment it exists: it is created
with ``O_CREAT | O_EXCL`` and mode 0600 (and ``fchmod`` 0600, whatever the umask), never
created open and narrowed later. An existing file is refused before anything is created, so a
second environment is never made for credentials that could not be written; with
``--overwrite-credentials`` the new file is written beside it and renamed over it (atomic: the
old one or the new one, never half of either).

The content is ``NAME=value`` lines: ``MUX_TOKEN_ID`` and ``MUX_TOKEN_SECRET`` are the names
Mux's CLI (``mux login --env-file``) and SDKs read; the file is also a shell or systemd
environment file (every value is URL-safe characters only).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from headcount.auth.access_tokens import IssuedAccessToken
from headcount.stores.control import Environment

__all__ = [
    "credentials_text",
    "overwrite_option",
    "refuse_existing",
    "write_credentials_file",
]

_MODE = 0o600


def overwrite_option(command: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--overwrite-credentials",
        "overwrite_credentials",
        is_flag=True,
        help="Replace an existing credentials file (--credentials-file) instead of refusing.",
    )(command)


def credentials_text(environment: Environment, issued: IssuedAccessToken, origin: str) -> str:
    """The file's content; ``origin`` says what wrote it (``headcount init``, ...)."""
    return "\n".join(
        [
            f"# Headcount credentials of environment {environment.name!r}, made by {origin}.",
            "# The secret is shown nowhere else: keep this file private (mode 0600).",
            f"MUX_TOKEN_ID={issued.token.id}",
            f"MUX_TOKEN_SECRET={issued.secret}",
            f"MUX_ENV_KEY={environment.env_key}",
            f"HEADCOUNT_ENVIRONMENT_ID={environment.id}",
            "",
        ]
    )


def refuse_existing(path: str, overwrite: bool) -> None:
    """Stop (exit 1) before any credentials are made when they could not be written."""
    if os.path.lexists(path) and not overwrite:
        raise click.ClickException(
            f"the credentials file {path} already exists: nothing was created. Move it away, "
            "pass --overwrite-credentials to replace it, or name another file."
        )
    parent = Path(path).parent
    if not parent.is_dir():
        raise click.ClickException(
            f"the credentials file's directory {parent} does not exist: nothing was created."
        )


def _create_private(path: str, text: str) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags, _MODE)
    try:
        os.fchmod(fd, _MODE)  # a umask can only take bits away; this also puts back u+rw
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def write_credentials_file(path: str, text: str, overwrite: bool) -> None:
    """Write ``text`` to ``path`` (0600); an OSError when it cannot be (e.g. it exists now)."""
    if not overwrite:
        _create_private(path, text)
        return
    temporary = f"{path}.{secrets.token_hex(4)}.tmp"
    _create_private(temporary, text)
    try:
        os.replace(temporary, path)
    except OSError:
        os.unlink(temporary)
        raise
