"""The one seam between Headcount's hot-path protocol and uvicorn's internals.

:class:`~headcount.http.protocol.HotPathProtocol` extends uvicorn's httptools protocol; every
part of uvicorn it relies on that is not uvicorn's public API is named here, and
``tests/http/test_uvicorn_seam.py`` checks each name against the installed uvicorn, so an
upgrade that moves one fails there, by name, not somewhere in a request.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["UVICORN_INTERNALS"]

# Every part of uvicorn this protocol relies on that is not its public API: the one seam with
# uvicorn's internals. tests/http/test_uvicorn_seam.py checks each against the installed
# uvicorn and fails, naming what moved, when an upgrade changes one of them.
UVICORN_INTERNALS: Final[dict[str, Any]] = {
    "version": "0.54.0",  # the release this seam was last checked against
    # HttpToolsProtocol: state read or written here, and the methods extended or called.
    "protocol_attributes": (
        "app",
        "client",  # read by the access log (protocol_access.py)
        "connections",  # the server's set of them: --max-connections counts it
        "cycle",
        "expect_100_continue",
        "flow",
        "headers",
        "limit_concurrency",
        "loop",
        "parser",
        "pipeline",
        "server_state",
        "timeout_keep_alive",
        "transport",
        "url",
    ),
    "protocol_methods": (
        "connection_lost",
        "connection_made",
        "data_received",
        "on_body",
        "on_header",
        "on_headers_complete",
        "on_message_begin",
        "on_message_complete",
        "on_response_complete",
        "on_url",
        "pause_writing",
        "resume_writing",
        "send_400_response",
        "shutdown",
    ),
    # uvicorn's on_header, line by line: LimitedProtocol.on_header copies it after its checks.
    "on_header_lines": (
        "name = name.lower()",
        'if name == b"expect" and value.lower() == b"100-continue":',
        "self.expect_100_continue = True",
        "self.headers.append((name, value))",
    ),
    # self.flow (FlowControl): reading paused and resumed around a client that does not read.
    "flow_attributes": ("pause_reading", "read_paused", "resume_reading"),
    "scope_set_by": "on_message_begin",  # self.scope, rebuilt by _asgi_scope
    # data_received answers a parser error with self.send_400_response(msg), which the
    # protocol replaces (the envelope).
    "parser_error_answered_by": "send_400_response",
    # What uvicorn reads and writes on self.cycle, which _Waiting stands in for.
    "cycle_attributes": ("disconnected", "keep_alive", "message_event", "response_complete"),
    # RequestResponseCycle.transport, replaced by wire.WritesWhileOpen: all it calls on it.
    "cycle_transport_methods": ("close", "is_closing", "write"),
    # Read on uvicorn's own cycle of a request taking its way (a body answered before its end).
    "asgi_cycle_attributes": ("response_started",),
    "server_state_attributes": ("default_headers", "total_requests"),
    # The arguments of uvicorn's access line, which http/access_log.py redacts.
    "access_log_args": (
        "get_client_addr(self.scope)",
        'self.scope["method"]',
        "get_path_with_query_string(self.scope)",
        'self.scope["http_version"]',
        "status_code",
    ),
}
