"""Mux's own CLI, ``@mux/cli`` 2.0.1 from npm, unmodified, against a live ``headcount serve``.

``@mux/cli`` is a 30-line node launcher that runs the prebuilt binary of the platform, which
npm ships as ``@mux/cli-<os>-<arch>``; ``tests/clients`` installs the binary of this machine
(``@mux/cli-linux-x64``, an optional dependency) and the test runs it directly. (The
launcher's other platform packages cannot all be resolved here, so it is left out.)

The CLI has no base-URL flag; the mux-node inside it reads ``MUX_BASE_URL``. ``mux login``
checks the credentials with ``GET /system/v1/whoami`` (and ``signing-keys create`` asks it
again); then ``signing-keys create | list | get | delete`` go to the System API. Its config and
cache live in a HOME of the test's own, so nothing of the machine's is read or written.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.slow

MUX = Path(__file__).parents[1] / "clients" / "node_modules" / "@mux" / "cli-linux-x64" / "mux"


def mux(server: LiveServer, home: Path, *args: str) -> tuple[int, Any]:
    """Exit status and the JSON the CLI printed (``--json``)."""
    if not MUX.is_file():
        pytest.fail(
            "The Mux CLI binary for linux-x64 is missing: `cd tests/clients && npm ci` (make "
            "test does it; other platforms need their own @mux/cli-<os>-<arch>)."
        )
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "MUX_BASE_URL": server.base_url,
        "NO_COLOR": "1",
    }
    done = subprocess.run(
        [str(MUX), *args, "--json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout.strip() or done.stderr.strip()
    return done.returncode, json.loads(output)


def test_mux_cli_logs_in_and_manages_signing_keys(live_server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env_file = tmp_path / "mux.env"
    env_file.write_text(
        f"MUX_TOKEN_ID={live_server.token_id}\nMUX_TOKEN_SECRET={live_server.token_secret}\n"
    )
    status, login = mux(live_server, home, "login", "--env-file", str(env_file))
    assert status == 0, login
    assert login["environment"] == "default" and login["source"] == "env-file"
    assert login["environment_id"]  # from whoami

    status, created = mux(live_server, home, "signing-keys", "create")
    assert status == 0, created
    key_id = created["id"]
    assert created["created_at"].isdigit()

    status, listed = mux(live_server, home, "signing-keys", "list")
    assert status == 0 and key_id in [k["id"] for k in listed["data"]], listed
    status, got = mux(live_server, home, "signing-keys", "get", key_id)
    assert status == 0 and got["id"] == key_id, got

    status, deleted = mux(live_server, home, "signing-keys", "delete", key_id, "--force")
    assert status == 0, deleted
    status, gone = mux(live_server, home, "signing-keys", "get", key_id)
    assert status != 0
    assert gone["api_response"]["error"]["type"] == "not_found"
    # The CLI explains a 404 with the token's permissions, read from whoami.
    assert gone["token_permissions"] == ["data:read", "system:read", "system:write"]


def test_mux_cli_login_refuses_wrong_credentials(live_server: LiveServer, tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env_file = tmp_path / "mux.env"
    env_file.write_text(f"MUX_TOKEN_ID={live_server.token_id}\nMUX_TOKEN_SECRET=wrong\n")
    status, refused = mux(live_server, home, "login", "--env-file", str(env_file))
    assert status != 0, refused
    assert not (home / ".config" / "mux" / "config.json").exists()
