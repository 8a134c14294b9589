"""Live servers for end-to-end tests: the real ``headcount serve`` (one uvicorn process) in a
subprocess.

``start_server(directory, **setting_overrides)`` gets credentials with ``headcount init --json``,
starts ``headcount serve`` on a free 127.0.0.1 port and waits (bounded) until ``/healthz``
answers. Overrides are setting names from ``headcount.settings.SETTINGS`` (``live_url=...``,
``liveness_window=5``, ``database_url=postgresql://...``); each becomes its CLI flag. The
``live_server`` fixture is one such server per test, always killed at teardown.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from headcount.settings import SETTINGS

__all__ = [
    "CLIENTS",
    "HEADCOUNT",
    "LiveServer",
    "free_port",
    "fresh_server",
    "run_headcount",
    "run_mux_node",
    "start_server",
]

# The `headcount` console script of the interpreter running the tests (the project's venv).
HEADCOUNT = str(Path(sys.executable).with_name("headcount"))

# The node scripts that drive the unmodified @mux/mux-node SDK.
CLIENTS = Path(__file__).resolve().parents[1] / "clients"

START_TIMEOUT = 30.0  # seconds for `headcount serve` to answer /healthz
_FLAGS = {s.name: s.cli_flag for s in SETTINGS}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _terminate_with_the_test_run() -> None:
    """Runs in the server's process between fork and exec: when the process that started it
    dies (pytest killed by a timeout or interrupted past its teardown), the kernel sends the
    server SIGTERM and it stops as on any SIGTERM. No orphaned servers."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _in_the_server(descriptor_limit: int | None) -> Callable[[], None]:
    """What runs in the server's process before exec: the above, and a descriptor limit
    (soft and hard: ``ulimit -n``) when one is given."""

    def prepare() -> None:
        _terminate_with_the_test_run()
        if descriptor_limit is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (descriptor_limit, descriptor_limit))

    return prepare


def _clean_environment() -> dict[str, str]:
    # The developer's own HEADCOUNT_* variables must not leak into a test server.
    return {k: v for k, v in os.environ.items() if not k.startswith("HEADCOUNT_")}


def run_headcount(*args: str, cwd: Path | None = None, timeout: float = 60) -> str:
    """Run a ``headcount`` command to completion; its stdout, or a failure with its output."""
    result = subprocess.run(
        [HEADCOUNT, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=_clean_environment(),
        timeout=timeout,
    )
    if result.returncode != 0:
        raise AssertionError(
            f"headcount {' '.join(args)} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result.stdout


def run_mux_node(server: LiveServer, script: str, *args: str, timeout: float = 90) -> Any:
    """Run a script of ``tests/clients/`` with mux-node configured its own way (MUX_BASE_URL,
    MUX_TOKEN_ID, MUX_TOKEN_SECRET) for ``server``; the JSON it printed."""
    node = shutil.which("node")
    assert node, "node is required for the mux-node SDK tests (.ci/run installs it)"
    environment = {
        **os.environ,
        "MUX_BASE_URL": server.base_url,
        "MUX_TOKEN_ID": server.token_id,
        "MUX_TOKEN_SECRET": server.token_secret,
    }
    done = subprocess.run(
        [node, script, *args],
        cwd=CLIENTS,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def _flag_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@dataclass
class LiveServer:
    base_url: str
    port: int
    env_key: str
    environment_id: str
    token_id: str
    token_secret: str
    database_url: str
    state_file: Path
    directory: Path
    overrides: dict[str, Any]
    process: subprocess.Popen[bytes] = field(repr=False)
    log_path: Path = field(repr=False)
    descriptor_limit: int | None = None  # the server's RLIMIT_NOFILE, when not inherited

    @property
    def auth(self) -> tuple[str, str]:
        """Basic-auth credentials of the access token ``headcount init`` created."""
        return self.token_id, self.token_secret

    def create_signing_key(self) -> tuple[str, str]:
        """``(id, private_key)`` of a new signing key, made through the System API (the
        private key as the API returns it: base64 of a PEM)."""
        answer = httpx.post(f"{self.base_url}/system/v1/signing-keys", auth=self.auth, timeout=30)
        assert answer.status_code == 201, answer.text
        data = answer.json()["data"]
        return data["id"], data["private_key"]

    def log(self) -> str:
        """Everything the server printed so far (stdout and stderr, interleaved)."""
        return self.log_path.read_text(errors="replace")

    def command(self) -> list[str]:
        args = [
            HEADCOUNT,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--database",
            self.database_url,
            "--state-file",
            str(self.state_file),
        ]
        for name, value in self.overrides.items():
            args += [_FLAGS[name], _flag_value(value)]
        return args

    def launch(self) -> None:
        """Start ``headcount serve`` and wait until it answers; raise with its log if not."""
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                env=_clean_environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own process group: teardown kills whatever the server may have started.
                start_new_session=True,
                preexec_fn=_in_the_server(self.descriptor_limit),
            )
        deadline = time.monotonic() + START_TIMEOUT
        with httpx.Client(timeout=1.0) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    self.kill()
                    raise RuntimeError(
                        f"headcount serve exited with {self.process.returncode}:\n{self.log()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(f"{self.base_url}/healthz").status_code == 200:
                        return
                time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"headcount serve did not answer within {START_TIMEOUT}s:\n{self.log()}")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> int:
        """Send ``sig`` to the server and wait for it to exit; its exit code. A server that
        does not stop in time is killed and the test fails."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(
                    f"headcount serve ignored signal {sig} for {timeout}s:\n{self.log()}"
                ) from None
        return self.process.returncode

    def restart(self) -> None:
        """Stop (if running) and start again: same database, state file, port and settings."""
        self.stop()
        self.launch()

    def kill(self) -> None:
        """Kill the server and anything left in its process group (teardown)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(10)


def fresh_server(directory: Path, database_url: str, **overrides: Any) -> LiveServer:
    """A server not started yet, on a free port, whose first start bootstraps ``database_url``
    itself (no ``headcount init``): its credentials are only what it prints (or writes)."""
    port = free_port()
    return LiveServer(
        base_url=f"http://127.0.0.1:{port}",
        port=port,
        env_key="",
        environment_id="",
        token_id="",
        token_secret="",
        database_url=database_url,
        state_file=directory / "live-state.json",
        directory=directory,
        overrides=overrides,
        process=None,  # type: ignore[arg-type]  # set by launch()
        log_path=directory / "serve.log",
    )


def start_server(
    directory: Path, *, descriptor_limit: int | None = None, **setting_overrides: Any
) -> LiveServer:
    """A running ``headcount serve`` with fresh credentials, its files under ``directory``
    (and at most ``descriptor_limit`` descriptors open, when given)."""
    overrides = dict(setting_overrides)
    unknown = set(overrides) - set(_FLAGS)
    if unknown:
        raise KeyError(f"unknown settings {sorted(unknown)}")
    database_url = str(overrides.pop("database_url", f"sqlite:///{directory / 'headcount.db'}"))
    state_file = Path(overrides.pop("state_file", directory / "live-state.json"))
    port = int(overrides.pop("port", 0))
    overrides.pop("host", None)  # tests bind 127.0.0.1 only
    created = json.loads(run_headcount("init", "--json", "--database", database_url))
    # A free port can be taken between the probe and uvicorn's bind: try a few.
    attempts = 1 if port else 3
    for attempt in range(attempts):
        chosen = port or free_port()
        server = LiveServer(
            base_url=f"http://127.0.0.1:{chosen}",
            port=chosen,
            env_key=created["environment"]["env_key"],
            environment_id=created["environment"]["id"],
            token_id=created["access_token"]["id"],
            token_secret=created["access_token"]["secret"],
            database_url=database_url,
            state_file=state_file,
            directory=directory,
            overrides=overrides,
            process=None,  # type: ignore[arg-type]  # set by launch()
            log_path=directory / f"server-{chosen}.log",
            descriptor_limit=descriptor_limit,
        )
        try:
            server.launch()
        except RuntimeError:
            if attempt == attempts - 1 or "in use" not in server.log():
                raise
            continue
        return server
    raise AssertionError("unreachable")  # pragma: no cover


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    server = start_server(tmp_path)
    try:
        yield server
    finally:
        server.kill()
