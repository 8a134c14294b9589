"""A throwaway Headcount deployment for the benchmarks: a fresh SQLite control store in a
temporary folder, one environment, one signing key, and ``headcount serve`` pinned to the
server core. Everything goes through the real CLI, exactly as a user would set it up.

:func:`serve_plain_uvicorn` serves the same app, with the same ``HEADCOUNT_*`` variables, under
stock uvicorn: every request the ASGI way. The distance between the two is what the hot-path
protocol (:mod:`headcount.http.protocol`) buys."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.servers import HOST, BenchError, ServerProcess, start_server
from bench.tokens import private_key_pem
from headcount.cli.serve import settings_environment
from headcount.settings import load_settings

__all__ = [
    "Deployment",
    "deployment",
    "serve_headcount",
    "serve_plain_uvicorn",
    "server_environment",
]

HEADCOUNT = Path(sys.executable).with_name("headcount")


@dataclass(frozen=True)
class Deployment:
    directory: Path
    database_url: str
    environment_id: str
    env_key: str
    key_id: str
    private_key_pem: bytes


def _cli(*args: str, cwd: Path) -> Any:
    if not HEADCOUNT.exists():
        raise BenchError(f"{HEADCOUNT.name} is not installed next to {sys.executable}")
    done = subprocess.run(
        [str(HEADCOUNT), *args], capture_output=True, text=True, timeout=120, cwd=cwd, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"headcount {' '.join(args[:2])} failed: {done.stderr.strip()}")
    return json.loads(done.stdout)


@contextlib.contextmanager
def deployment() -> Iterator[Deployment]:
    with tempfile.TemporaryDirectory(prefix="headcount-bench-") as folder:
        directory = Path(folder)
        database_url = f"sqlite:///{directory / 'headcount.db'}"
        init = _cli("init", "--json", "--database", database_url, cwd=directory)
        environment = init["environment"]
        key = _cli(
            "signing-keys",
            "create",
            "--environment",
            environment["id"],
            "--json",
            "--database",
            database_url,
            cwd=directory,
        )
        yield Deployment(
            directory=directory,
            database_url=database_url,
            environment_id=environment["id"],
            env_key=environment["env_key"],
            key_id=key["id"],
            private_key_pem=private_key_pem(key["private_key"]),
        )


def server_environment(
    target: Deployment, port: int, settings: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every ``HEADCOUNT_*`` variable of a benchmark server on ``port``: the deployment's control
    store, 127.0.0.1, no saved live state, warnings only; ``settings`` are extra ``HEADCOUNT_*``
    variables. Both ways of serving read them (``headcount serve`` and ``create_app``), and a
    developer's own ``HEADCOUNT_*`` variables cannot leak in: every one is set here."""
    chosen = load_settings(
        {
            "database_url": target.database_url,
            "host": HOST,
            "port": port,
            # Nothing of the benchmark outlives it: no saved live state.
            "state_file": "",
            "log_level": "warning",
        },
        environ=settings or {},
    )
    return {**os.environ, **settings_environment(chosen)}


@contextlib.contextmanager
def serve_headcount(
    target: Deployment, name: str, port: int, settings: Mapping[str, str] | None = None
) -> Iterator[ServerProcess]:
    """``headcount serve`` (uvicorn with the hot-path protocol, one process) on the server
    core; ``settings`` are extra ``HEADCOUNT_*`` variables."""
    env = server_environment(target, port, settings)
    with start_server(
        name, [str(HEADCOUNT), "serve"], port, env=env, ready_path="/counts", cwd=target.directory
    ) as server:
        yield server


@contextlib.contextmanager
def serve_plain_uvicorn(target: Deployment, name: str, port: int) -> Iterator[ServerProcess]:
    """The same app under stock uvicorn, the ASGI way for every request (no hot-path
    protocol), with the settings ``headcount serve`` gives uvicorn and the same variables."""
    argv = [
        sys.executable,
        "-m",
        "uvicorn",
        "--factory",
        "headcount.http.app:create_app",
        "--http",
        "httptools",
        "--loop",
        "uvloop",
        "--lifespan",
        "on",
        "--ws",
        "none",
        "--no-access-log",
        "--no-proxy-headers",
        "--no-server-header",
        "--host",
        HOST,
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = server_environment(target, port)
    with start_server(name, argv, port, env=env, ready_path="/counts", cwd=target.directory) as s:
        yield s
