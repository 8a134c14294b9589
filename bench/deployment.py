"""A throwaway Headcount deployment for the benchmarks: a fresh SQLite control store in a
temporary folder, one environment, one signing key, and ``headcount serve`` pinned to the
server core. Everything goes through the real CLI, exactly as a user would set it up."""

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

from bench.servers import BenchError, ServerProcess, start_server
from bench.tokens import private_key_pem

__all__ = ["Deployment", "deployment", "serve_headcount"]

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


@contextlib.contextmanager
def serve_headcount(
    target: Deployment, name: str, port: int, settings: Mapping[str, str] | None = None
) -> Iterator[ServerProcess]:
    """``headcount serve`` (granian RSGI, one worker) on the server core; ``settings`` are
    extra ``HEADCOUNT_*`` variables."""
    env = {**os.environ, **(settings or {})}
    argv = [
        str(HEADCOUNT),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--database",
        target.database_url,
        # Nothing of the benchmark outlives it: no saved live state.
        "--state-file",
        "",
        "--log-level",
        "warning",
    ]
    with start_server(name, argv, port, env=env, ready_path="/counts", cwd=target.directory) as s:
        yield s
