"""The credentials file (``--credentials-file``, cli/credentials.py): owner-only from its first
byte, never overwritten unless asked, and its content is credentials that work."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from headcount.auth.access_tokens import authenticate
from headcount.cli import main
from headcount.stores.sql import open_control_store
from tests.e2e.conftest import HEADCOUNT, free_port, fresh_server


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def read_env_file(path: Path) -> dict[str, str]:
    lines = [line for line in path.read_text().splitlines() if line and not line.startswith("#")]
    return dict(line.split("=", 1) for line in lines)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def works(database: str, token_id: str, secret: str) -> bool:
    control = open_control_store(database)
    try:
        basic = base64.b64encode(f"{token_id}:{secret}".encode()).decode()
        return authenticate(control, f"Basic {basic}").id == token_id
    finally:
        control.close()


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o277], ids=["umask-000", "umask-022", "umask-277"])
def test_init_writes_working_credentials_readable_by_the_owner_only(
    tmp_path: Path, mask: int
) -> None:
    database = f"sqlite:///{tmp_path / 'hc.db'}"
    path = tmp_path / "credentials.env"
    with umask(mask):
        result = CliRunner().invoke(
            main, ["init", "--database", database, "--credentials-file", str(path)], env={}
        )
    assert result.exit_code == 0, result.output
    assert mode(path) == 0o600
    values = read_env_file(path)
    assert set(values) == {
        "MUX_TOKEN_ID",
        "MUX_TOKEN_SECRET",
        "MUX_ENV_KEY",
        "HEADCOUNT_ENVIRONMENT_ID",
    }
    assert works(database, values["MUX_TOKEN_ID"], values["MUX_TOKEN_SECRET"])
    assert values["MUX_TOKEN_SECRET"] not in result.output  # kept logs never see it
    assert values["MUX_TOKEN_ID"] in result.output and str(path) in result.output


def test_an_existing_credentials_file_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'hc.db'}"
    path = tmp_path / "credentials.env"
    path.write_text("keep me\n")
    runner = CliRunner()
    args = ["init", "--json", "--database", database, "--credentials-file", str(path)]
    refused = runner.invoke(main, args, env={})
    assert refused.exit_code == 1
    assert f"the credentials file {path} already exists: nothing was created" in refused.output
    assert path.read_text() == "keep me\n"
    assert not (tmp_path / "hc.db").exists()  # not even the database
    # Asked to, it replaces the file: whole, still owner-only.
    path.chmod(0o644)
    replaced = runner.invoke(main, [*args, "--overwrite-credentials"], env={})
    assert replaced.exit_code == 0, replaced.output
    document = json.loads(replaced.stdout)
    assert document["access_token"]["secret"] is None
    assert document["credentials_file"] == str(path)
    assert mode(path) == 0o600
    values = read_env_file(path)
    assert values["MUX_TOKEN_ID"] == document["access_token"]["id"]
    assert works(database, values["MUX_TOKEN_ID"], values["MUX_TOKEN_SECRET"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["credentials.env", "hc.db"]


def test_the_variable_names_the_file_too(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'hc.db'}"
    path = tmp_path / "from-env.env"
    result = CliRunner().invoke(
        main, ["init", "--database", database], env={"HEADCOUNT_CREDENTIALS_FILE": str(path)}
    )
    assert result.exit_code == 0, result.output
    assert mode(path) == 0o600 and "MUX_TOKEN_SECRET=" in path.read_text()


def test_first_serve_writes_the_file_and_prints_no_secret(tmp_path: Path) -> None:
    path = tmp_path / "credentials.env"
    server = fresh_server(
        tmp_path, f"sqlite:///{tmp_path / 'hc.db'}", credentials_file=str(path), demo=False
    )
    try:
        with umask(0):
            server.launch()
        assert mode(path) == 0o600
        values = read_env_file(path)
        log = server.log()
        assert values["MUX_TOKEN_ID"] in log and values["MUX_TOKEN_SECRET"] not in log
        assert f"the credentials are in {path}, owner-only" in log
        created = httpx.post(
            f"{server.base_url}/system/v1/signing-keys",
            auth=(values["MUX_TOKEN_ID"], values["MUX_TOKEN_SECRET"]),
        )
        assert created.status_code == 201
        # Later starts do not touch the file (nor refuse because it exists).
        before = path.read_text()
        server.restart()
        assert path.read_text() == before
    finally:
        server.kill()


def test_first_serve_refuses_an_existing_file_before_it_creates_anything(tmp_path: Path) -> None:
    path = tmp_path / "credentials.env"
    path.write_text("old\n")
    done = subprocess.run(
        [HEADCOUNT, "serve", "--port", str(free_port()), "--credentials-file", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if not k.startswith("HEADCOUNT_")},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "already exists: nothing was created" in done.stderr
    assert path.read_text() == "old\n"
    control = open_control_store(f"sqlite:///{tmp_path / '.headcount' / 'headcount.db'}")
    try:
        assert control.list_environments() == []
    finally:
        control.close()
