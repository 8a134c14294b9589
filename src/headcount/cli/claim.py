"""What ``headcount serve`` claims before it touches anything: its port, and the live-state file.

The state file's lock covers every file the memory live store writes, all named from the state
file: the snapshot, its ``.tmp`` and the journals (``<file>.journal-N``,
:mod:`headcount.stores.memory_journal`). So no two processes ever write one journal or one
snapshot.

A second server started on the same port, or on the same state file, must fail before it
migrates a database, writes a credential or overwrites the state of the one already running,
and say which port or file is taken and how to pick another. So the listening socket is bound
first (uvicorn is then given that socket: "up at" is printed once it is bound) and the state
file's lock is taken next; both are held for the life of the process, and the kernel lets go
of both when it ends, however it ends (SIGKILL included: ``flock`` locks die with their file
descriptor).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from pathlib import Path
from typing import IO

import click

__all__ = ["bind_listener", "lock_state_file"]

BACKLOG = 2048  # uvicorn's default


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (as uvicorn binds one), or a one-line error
    naming the port and what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        # Lets a restart bind while old connections linger in TIME_WAIT; it does not let two
        # listeners share a port (that would be SO_REUSEPORT).
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise click.ClickException(
                f"port {port} on {host} is already in use (another Headcount, or another "
                "server): stop it, or pick another port with --port or HEADCOUNT_PORT."
            ) from exc
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}.") from exc
    sock.set_inheritable(True)  # --workers: uvicorn's worker processes serve this socket
    return sock


def lock_state_file(state_file: str) -> IO[str] | None:
    """An exclusive lock on the live-state file and its journals (a ``.lock`` beside them),
    held while the returned file stays open; None when there is no state file
    (``--state-file ''``)."""
    if not state_file:
        return None
    path = Path(state_file)
    lock_path = path.with_name(path.name + ".lock")
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    handle = lock_path.open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip()
        handle.close()
        raise click.ClickException(
            f"the live-state file {path} (and its journal) is in use by another Headcount"
            + (f" (process {holder})" if holder else "")
            + ": stop it, or give this one its own file with --state-file or "
            "HEADCOUNT_STATE_FILE (or run it from another directory)."
        ) from None
    with contextlib.suppress(OSError):  # who holds it, for the message above; best effort
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
    return handle
