"""Real Redis servers for the test suite: ``redis-server`` processes on free 127.0.0.1 ports.

The Redis live store is tested against the real thing, not a mock: ``RedisServer`` is one
``redis-server`` (no persistence, its own directory and log file); ``tests/redis_cluster.py``
makes six of them a cluster. ``redis_call`` is the minimal client both talk to them with.

The session fixture ``redis_standalone`` starts one on first use and kills it at session end;
``tests/conftest.py`` re-exports it (and the cluster's fixtures). Tests share the servers and
isolate themselves by key prefix (``unique_prefix``), never by FLUSHALL. Every wait is a bounded
poll; a timeout raises with what was last seen and the server's log tail.

Each server is started with ``PR_SET_PDEATHSIG``: if pytest dies without its teardown, the
kernel sends the servers SIGTERM, so none outlives the test run. (The signal follows the
*thread* that started the process, so start servers from the main thread, as fixtures are.)
"""

from __future__ import annotations

import ctypes
import secrets
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "RedisReplyError",
    "RedisServer",
    "new_key_prefix",
    "redis_call",
    "redis_standalone",
    "unique_prefix",
]

REDIS_SERVER = "/usr/bin/redis-server"
HOST = "127.0.0.1"
BUS_PORT_OFFSET = 10000  # Redis Cluster's bus listens on port + 10000
POLL_INTERVAL = 0.05  # seconds between two looks in every bounded wait
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0

_LIBC = ctypes.CDLL(None, use_errno=True)
_PR_SET_PDEATHSIG = 1


def _terminate_with_the_test_run() -> None:
    """Runs in the server's process between fork and exec: when pytest dies, the kernel sends
    the server SIGTERM (as ``tests/e2e/conftest.py`` does for ``headcount serve``)."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def new_key_prefix() -> str:
    """A fresh short key prefix (``t`` + 8 hex digits): tests sharing a server stay apart."""
    return f"t{secrets.token_hex(4)}"


# --- a minimal RESP2 client -------------------------------------------------------------------
# The infrastructure talks to the servers over a raw socket: one short connection per command,
# nothing left open to leak, and replies exactly as Redis sends them (no client-side parsing).


class RedisReplyError(Exception):
    """An error reply (``-ERR ...``) from a server."""


def _encode(args: Sequence[str | int]) -> bytes:
    parts = [f"*{len(args)}\r\n".encode()]
    for arg in args:
        data = str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


def _read_reply(reader: Any) -> Any:
    line: bytes = reader.readline()
    if not line.endswith(b"\r\n"):
        raise ConnectionError("connection closed in the middle of a reply")
    kind, body = line[:1], line[1:-2].decode()
    if kind == b"+":
        return body
    if kind == b"-":
        raise RedisReplyError(body)
    if kind == b":":
        return int(body)
    if kind == b"$":
        size = int(body)
        if size < 0:
            return None
        data: bytes = reader.read(size + 2)
        if len(data) != size + 2:
            raise ConnectionError("connection closed in the middle of a reply")
        return data[:-2].decode(errors="replace")
    if kind == b"*":
        count = int(body)
        return None if count < 0 else [_read_reply(reader) for _ in range(count)]
    raise ConnectionError(f"unexpected reply line {line!r}")


def redis_call(port: int, *args: str | int, host: str = HOST, timeout: float = 2.0) -> Any:
    """Send one command to ``host:port`` on a fresh connection and return its reply (strings,
    ints, lists, None); raises ``RedisReplyError`` on an error reply, ``OSError`` when the
    server is not there."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(_encode(args))
        with sock.makefile("rb") as reader:
            return _read_reply(reader)


def _fields(text: str) -> dict[str, str]:
    """The ``key:value`` lines of an INFO or CLUSTER INFO reply."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith("#"):
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def _info(port: int, section: str) -> dict[str, str]:
    return _fields(str(redis_call(port, "INFO", section)))


# --- ports ------------------------------------------------------------------------------------


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _free_port(cluster_bus: bool = False, avoid: Sequence[int] = ()) -> int:
    """A port free on 127.0.0.1 right now (and, for a cluster node, its bus port too)."""
    taken = set(avoid) | {p + BUS_PORT_OFFSET for p in avoid}
    for _ in range(200):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port: int = sock.getsockname()[1]
        if port in taken:
            continue
        if not cluster_bus:
            return port
        bus = port + BUS_PORT_OFFSET
        if bus <= 65535 and bus not in taken and _bindable(bus):
            return port
    raise RuntimeError("found no free port (and bus port) on 127.0.0.1 in 200 tries")


def _wait_until(
    condition: Callable[[], str | None], timeout: float, what: str, log: Callable[[], str]
) -> None:
    """Poll ``condition`` (None when satisfied, else what is still wrong) until ``timeout``."""
    deadline = time.monotonic() + timeout
    problem: str | None = "not checked yet"
    while True:
        try:
            problem = condition()
        except (OSError, RedisReplyError) as error:
            problem = f"{type(error).__name__}: {error}"
        if problem is None:
            return
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not within {timeout}s; last: {problem}\n{log()}")
        time.sleep(POLL_INTERVAL)


# --- one server -------------------------------------------------------------------------------


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1 with its own directory and log file.

    No persistence (``--save "" --appendonly no``): a restart comes back empty, which is what
    "the live store lost its data" tests need. ``port=None`` picks a free port (with a free
    bus port when ``cluster_bus``, none of ``avoid()``), and picks another at the first start
    if someone else took it before the server could bind it.
    """

    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        extra_args: Sequence[str] = (),
        cluster_bus: bool = False,
        avoid: Callable[[], Sequence[int]] = tuple,
    ) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log_path = directory / "redis.log"
        self.extra_args = list(extra_args)
        self._cluster_bus = cluster_bus
        self._avoid = avoid
        self._movable_port = port is None
        self.port = port if port is not None else self._pick_port()
        self.process: subprocess.Popen[bytes] | None = None

    def _pick_port(self) -> int:
        return _free_port(self._cluster_bus, avoid=self._avoid())

    def __repr__(self) -> str:
        return f"RedisServer(port={self.port}, alive={self.alive})"

    @property
    def host(self) -> str:
        return HOST

    @property
    def url(self) -> str:
        """The redis-py URL of database 0."""
        return f"redis://{HOST}:{self.port}/0"

    @property
    def alive(self) -> bool:
        """Whether the process is running (not whether it answers; see ``wait_ready``)."""
        return self.process is not None and self.process.poll() is None

    def command(self) -> list[str]:
        return [
            REDIS_SERVER,
            "--bind",
            HOST,
            "--port",
            str(self.port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.directory),
            "--daemonize",
            "no",
            "--protected-mode",
            "no",
            *self.extra_args,
        ]

    def start(self, timeout: float = START_TIMEOUT) -> RedisServer:
        """Start the server and wait until it answers PING. A port taken meanwhile by someone
        else is replaced by a fresh one (only for a port this object chose)."""
        for _attempt in range(5):
            self._launch()
            try:
                self.wait_ready(timeout)
            except RuntimeError:
                last_run = self.log_path.read_text(errors="replace").rpartition("--- starting")[2]
                if not self._movable_port or "Address already in use" not in last_run:
                    raise
                self.port = self._pick_port()
                continue
            self._movable_port = False  # from now on clients know this port
            return self
        raise RuntimeError(f"redis-server found no free port in 5 tries\n{self.log_tail()}")

    def _launch(self) -> None:
        if self.alive:
            raise RuntimeError(f"{self!r} is already running")
        with self.log_path.open("ab") as log:
            log.write(f"--- starting {' '.join(self.command())}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command(),
                cwd=self.directory,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C reaches pytest, whose teardown stops the server.
                start_new_session=True,
                preexec_fn=_terminate_with_the_test_run,
            )

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait (bounded) until the server answers PING; RuntimeError with the log tail if it
        exited, TimeoutError if it stays silent."""

        def answers() -> str | None:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(
                    f"redis-server on port {self.port} exited ({code})\n{self.log_tail()}"
                )
            reply = redis_call(self.port, "PING", timeout=1.0)
            return None if reply == "PONG" else f"PING answered {reply!r}"

        _wait_until(answers, timeout, f"redis-server on port {self.port} ready", self.log_tail)

    def kill(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGKILL (a crash: no goodbye to the cluster) and wait for the process to be gone."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired as error:
            raise RuntimeError(f"redis-server on port {self.port} survived SIGKILL") from error

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM (a clean shutdown) and wait, bounded; killed if it does not stop in time."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired as error:
            self.kill()
            raise RuntimeError(
                f"redis-server on port {self.port} ignored SIGTERM for {timeout}s\n"
                f"{self.log_tail()}"
            ) from error

    def restart(self, timeout: float = START_TIMEOUT) -> RedisServer:
        """Stop if running, then start again on the same port and directory: no data comes
        back (no persistence), a cluster node keeps its identity (``nodes.conf``)."""
        self.stop()
        self._launch()
        self.wait_ready(timeout)
        return self

    def call(self, *args: str | int, timeout: float = 2.0) -> Any:
        """One command on a fresh connection (see ``redis_call``)."""
        return redis_call(self.port, *args, timeout=timeout)

    def log_tail(self, lines: int = 40) -> str:
        """The end of the server's log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        tail = "\n".join(text.splitlines()[-lines:])
        return f"--- {self.log_path} (last {lines} lines)\n{tail}"


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def redis_standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One standalone Redis for the whole session, started on first use. Tests share it and
    keep apart by key prefix; a test that stops or restarts it must leave it running."""
    server = RedisServer(tmp_path_factory.mktemp("redis-standalone"))
    try:
        server.start()
        yield server
    finally:
        server.kill()


@pytest.fixture
def unique_prefix() -> str:
    """A fresh key prefix for this test (``t`` + 8 hex digits)."""
    return new_key_prefix()
