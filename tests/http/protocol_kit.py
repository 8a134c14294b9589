"""Raw HTTP/1.1 over real sockets, and a real uvicorn server in a thread, for the protocol tests.

``ThreadedServer`` runs ``uvicorn.Server`` exactly as ``headcount serve`` configures it
(``HotPathProtocol``, uvloop, lifespan on, no access log, no ``server`` header) on a socket the
test bound itself (127.0.0.1, port 0: no race for a free port). ``Connection`` writes request
bytes as given and reads answers back with a small parser (status line, headers, and a body
framed by ``content-length``, ``transfer-encoding: chunked`` or the end of the connection), so
a test sees exactly what a client on the wire would. Every read has a bounded timeout.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import uvicorn

from headcount.http.app import HeadcountApp
from headcount.http.protocol import HotPathProtocol

__all__ = ["Connection", "Response", "ServerClosed", "ThreadedServer", "request"]

TIMEOUT = 5.0  # seconds any single read may wait
START_TIMEOUT = 10.0  # seconds for the first answer (lifespan start-up)


class ServerClosed(AssertionError):
    """The server closed the connection where an answer (or more of one) was expected."""


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]  # names lower-cased, in the order received
    body: bytes

    def header(self, name: str) -> str | None:
        """The value of the (only) header ``name``; None when absent."""
        values = [v for n, v in self.headers if n == name]
        assert len(values) <= 1, f"{name} sent {len(values)} times: {self.headers}"
        return values[0] if values else None

    def names(self) -> list[str]:
        return [n for n, _ in self.headers]

    def json(self) -> Any:
        return orjson.loads(self.body)


def request(
    method: str,
    target: str,
    headers: Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    version: str = "HTTP/1.1",
    content_length: bool | None = None,
) -> bytes:
    """The bytes of one request. ``Host`` is added, and ``Content-Length`` when there is a body
    (or ``content_length=True``); pass ``content_length=False`` to frame the body yourself."""
    lines = [f"{method} {target} {version}", "Host: 127.0.0.1"]
    lines += [f"{name}: {value}" for name, value in headers]
    if content_length or (content_length is None and body):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunked(*parts: bytes) -> bytes:
    """``parts`` in chunked transfer coding, with the final empty chunk."""
    return b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in parts if p) + b"0\r\n\r\n"


class Connection:
    """One TCP connection to the server; answers are read in the order they arrive."""

    def __init__(self, port: int, timeout: float = TIMEOUT) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.eof = False
        self.chunked = False  # the answer being read is in chunked transfer coding
        self._stream = b""  # event-stream bytes read but not yet returned by read_event

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> None:
        if self.eof:
            raise ServerClosed(f"the server closed the connection; unread: {self.buffer!r}")
        data = self.sock.recv(65536)  # raises TimeoutError after the socket's timeout
        if not data:
            self.eof = True
            raise ServerClosed(f"the server closed the connection; unread: {self.buffer!r}")
        self.buffer += data

    def _line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            self._fill()
        line, self.buffer = self.buffer.split(b"\r\n", 1)
        return line

    def _exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        data, self.buffer = self.buffer[:size], self.buffer[size:]
        return data

    def read_response(self, *, head: bool = False) -> Response:
        """The next answer. ``head``: it answers a HEAD, so it has no body whatever it says."""
        response = self.read_head()
        code = response.status
        if head or code < 200 or code in (204, 304):
            return response
        if (response.header("transfer-encoding") or "").lower() == "chunked":
            response.body = self._chunked_body()
        elif response.header("content-length") is not None:
            response.body = self._exactly(int(response.header("content-length") or 0))
        else:  # delimited by the end of the connection
            while True:
                try:
                    self._fill()
                except ServerClosed:
                    break
            response.body, self.buffer = self.buffer, b""
        return response

    def read_head(self) -> Response:
        """The status line and headers of the next answer; its body is left unread (a
        ``text/event-stream`` is then read with :meth:`read_event`)."""
        status_line = self._line().decode("latin-1")
        version, status, reason = [*status_line.split(" ", 2), ""][:3]
        assert version.startswith("HTTP/"), status_line
        headers: list[tuple[str, str]] = []
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.decode("latin-1").partition(":")
            headers.append((name.strip().lower(), value.strip()))
        response = Response(version, int(status), reason, headers, b"")
        self.chunked = (response.header("transfer-encoding") or "").lower() == "chunked"
        return response

    def read_event(self, timeout: float = TIMEOUT) -> dict[str, str]:
        """The next block of a server-sent event stream (up to its empty line) as its fields:
        ``{"id": ..., "data": ...}``, ``{"retry": "3000"}``, a comment as ``{"": text}``."""
        self.sock.settimeout(timeout)
        try:
            while b"\n\n" not in self._stream:
                if self.chunked:  # stock uvicorn frames a body without a length in chunks
                    size = int(self._line().split(b";")[0], 16)
                    if size == 0:
                        raise ServerClosed(f"the stream ended; unread: {self._stream!r}")
                    self._stream += self._exactly(size)
                    assert self._exactly(2) == b"\r\n"
                else:
                    if not self.buffer:
                        self._fill()
                    self._stream, self.buffer = self._stream + self.buffer, b""
        finally:
            self.sock.settimeout(TIMEOUT)
        block, self._stream = self._stream.split(b"\n\n", 1)
        fields: dict[str, str] = {}
        for line in block.decode().split("\n"):
            name, _, value = line.partition(":")
            fields[name] = value[1:] if value.startswith(" ") else value
        return fields

    def _chunked_body(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._line().split(b";")[0], 16)
            if size == 0:
                while self._line():  # trailers, up to the empty line
                    pass
                return b"".join(parts)
            parts.append(self._exactly(size))
            assert self._exactly(2) == b"\r\n"

    def closed_by_server(self, timeout: float = TIMEOUT) -> bool:
        """True when the server closes the connection within ``timeout`` seconds and sent
        nothing more; False when it is still open (a read timed out)."""
        self.sock.settimeout(timeout)
        try:
            while not self.eof:
                try:
                    self._fill()
                except ServerClosed:
                    break
        except TimeoutError:
            return False
        except ConnectionResetError:
            self.eof = True
        assert self.buffer == b"", f"unexpected bytes before the close: {self.buffer!r}"
        return True

    def exchange(self, data: bytes, *, head: bool = False) -> Response:
        self.send(data)
        return self.read_response(head=head)


class ThreadedServer:
    """``uvicorn.Server`` serving ``app`` the way ``headcount serve`` does, in a thread."""

    def __init__(self, app: HeadcountApp, **config: Any) -> None:
        self.app = app
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
        self.port: int = self.sock.getsockname()[1]
        settings: dict[str, Any] = {
            "http": HotPathProtocol,
            "loop": "uvloop",
            "lifespan": "on",
            "ws": "none",
            "access_log": False,
            "proxy_headers": False,
            "server_header": False,
            "host": "127.0.0.1",
            "port": self.port,
            "log_config": None,  # leave the test run's logging alone
            **config,
        }
        self.server = uvicorn.Server(uvicorn.Config(app, **settings))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def start(self) -> ThreadedServer:
        """Start serving; returns once ``/healthz`` answered (the listening socket holds the
        connection until uvicorn has run the lifespan and accepts it)."""
        self.thread.start()
        try:
            with Connection(self.port, timeout=START_TIMEOUT) as probe:
                answer = probe.exchange(request("GET", "/healthz"))
            assert answer.status == 200, answer
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        if self.thread.is_alive():
            self.thread.join(timeout)
        self.sock.close()
        assert not self.thread.is_alive(), "uvicorn did not stop"

    def connect(self) -> Connection:
        return Connection(self.port)
