"""The seam between HotPathProtocol and uvicorn's internals (``UVICORN_INTERNALS``): each
private part of uvicorn it relies on is checked against the installed uvicorn, so an upgrade
that moves one fails here, by name, rather than somewhere in a request."""

from __future__ import annotations

import asyncio
import inspect
import re

import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import FlowControl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState

from headcount.http.protocol import HotPathProtocol
from headcount.http.uvicorn_seam import UVICORN_INTERNALS
from headcount.http.wire import WritesWhileOpen


def _assigned(cls: type, method: str = "__init__") -> set[str]:
    source = inspect.getsource(getattr(cls, method))
    return set(re.findall(r"self\.([a-z_][a-z0-9_]*)\s*(?::[^=]+)?=[^=]", source))


def test_the_seam_was_checked_against_this_uvicorn() -> None:
    assert uvicorn.__version__ == UVICORN_INTERNALS["version"], (
        "uvicorn changed: re-read HotPathProtocol's use of each name in UVICORN_INTERNALS "
        "against the new release, then update the version there"
    )


def test_protocol_state_the_hot_path_uses_is_still_there() -> None:
    async def build() -> HttpToolsProtocol:
        config = Config(app=lambda *a: None, http=HotPathProtocol, lifespan="off")
        config.load()
        return HttpToolsProtocol(config, ServerState(), {})

    protocol = asyncio.run(build())
    # Set per connection or per request rather than in __init__.
    later = {"transport": "connection_made", "url": "on_message_begin"}
    missing = [
        name
        for name in UVICORN_INTERNALS["protocol_attributes"]
        if name not in later and not hasattr(protocol, name)
    ]
    assert not missing, f"HttpToolsProtocol no longer has {missing}"
    for name, method in later.items():
        assert name in _assigned(HttpToolsProtocol, method), f"{method} no longer sets {name}"
    assert "scope" in _assigned(HttpToolsProtocol, UVICORN_INTERNALS["scope_set_by"])


def test_protocol_methods_the_hot_path_extends_are_uvicorns_own() -> None:
    for name in UVICORN_INTERNALS["protocol_methods"]:
        assert name in vars(HttpToolsProtocol), f"HttpToolsProtocol.{name} is gone or moved"


def test_on_header_still_does_only_what_the_limits_copy_of_it_does() -> None:
    source = inspect.getsource(HttpToolsProtocol.on_header).splitlines()[1:]  # after the def
    lines = tuple(line.strip() for line in source if line.strip())
    assert lines == UVICORN_INTERNALS["on_header_lines"], (
        "uvicorn's on_header changed: bring LimitedProtocol.on_header (protocol_limits.py) "
        f"in step with it, then update on_header_lines: {lines}"
    )


def test_what_uvicorn_expects_of_a_cycle_is_what_the_stand_in_has() -> None:
    cycle_fields = _assigned(RequestResponseCycle)
    for name in (
        *UVICORN_INTERNALS["cycle_attributes"],
        *UVICORN_INTERNALS["asgi_cycle_attributes"],
    ):
        assert name in cycle_fields, f"RequestResponseCycle.{name} is gone"
    # Every attribute uvicorn's protocol reads off self.cycle is one the stand-in has.
    protocol_source = inspect.getsource(HttpToolsProtocol)
    read = set(re.findall(r"self\.cycle\.([a-z_]+)", protocol_source))
    read |= set(re.findall(r"existing_cycle\.([a-z_]+)", protocol_source))
    # body/more_body are only touched by on_body/on_message_complete of uvicorn's own
    # requests, whose cycle is uvicorn's (the stand-in never receives a body).
    unknown = read - set(UVICORN_INTERNALS["cycle_attributes"]) - {"body", "more_body"}
    assert not unknown, f"uvicorn's protocol now uses cycle attributes {unknown}"
    # A queued (pipelined) request waits for the cycle before it, as the chain relies on.
    headers_complete = inspect.getsource(HttpToolsProtocol.on_headers_complete)
    assert "existing_cycle.response_complete" in headers_complete
    assert "self.pipeline" in inspect.getsource(HttpToolsProtocol.on_response_complete)


def test_server_state_fields_are_there() -> None:
    state = ServerState()
    for name in UVICORN_INTERNALS["server_state_attributes"]:
        assert hasattr(state, name), f"ServerState.{name} is gone"


def test_flow_control_is_what_on_response_complete_resumes() -> None:
    assert "resume_reading" in vars(FlowControl)
    flow_fields = _assigned(FlowControl)
    for name in UVICORN_INTERNALS["flow_attributes"]:
        assert name in vars(FlowControl) or name in flow_fields, f"FlowControl.{name} is gone"


def test_a_parser_error_is_answered_by_the_method_the_protocol_replaces() -> None:
    source = inspect.getsource(HttpToolsProtocol.data_received)
    assert "httptools.HttpParserError" in source
    assert f"self.{UVICORN_INTERNALS['parser_error_answered_by']}(msg)" in source


def test_a_cycle_uses_only_what_the_guarded_transport_has() -> None:
    assert "transport" in _assigned(RequestResponseCycle)
    used = set(re.findall(r"self\.transport\.([a-z_]+)", inspect.getsource(RequestResponseCycle)))
    assert used == set(UVICORN_INTERNALS["cycle_transport_methods"]), used
    for name in used:
        assert callable(getattr(WritesWhileOpen, name, None)), name


def test_uvicorns_access_line_has_the_arguments_the_redaction_expects() -> None:
    source = inspect.getsource(RequestResponseCycle.send)
    call = source[source.index("self.access_logger.info(") :]
    call = call[: call.index(")\n")]
    arguments = [part.strip() for part in call.split("\n")[2:] if part.strip()]
    assert [a.rstrip(",") for a in arguments] == list(UVICORN_INTERNALS["access_log_args"])
