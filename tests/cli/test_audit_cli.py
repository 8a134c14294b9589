"""Audit lines of the CLI: every signing-key and access-token change a command makes, on
stderr (stdout stays the command's answer) and appended to ``audit_log`` as JSON lines."""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result

from headcount.cli import main


def run(*args: str, env: dict[str, str]) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_every_key_and_token_change_is_audited_without_its_secret(tmp_path: Path) -> None:
    audit_file = tmp_path / "audit.jsonl"
    database = f"sqlite:///{tmp_path / 'h.db'}"
    env = {"HEADCOUNT_AUDIT_LOG": str(audit_file), "HEADCOUNT_LOG_FORMAT": "json"}

    def answer(*args: str) -> Any:
        return json.loads(run(*args, "--json", "--database", database, env=env).stdout)

    made = answer("init")
    environment = made["environment"]["id"]
    key = answer("signing-keys", "create", "--environment", environment)
    run("signing-keys", "delete", key["id"], "--database", database, env=env)
    token = answer("access-tokens", "create", "--environment", environment)
    revoked = run("access-tokens", "revoke", token["id"], "--database", database, env=env)

    lines: list[dict[str, Any]] = [json.loads(line) for line in audit_file.read_text().splitlines()]
    actor = f"cli:{getpass.getuser()}"
    assert [(line["action"], line["subject"], line["environment_id"]) for line in lines] == [
        ("access_token.create", made["access_token"]["id"], environment),
        ("signing_key.create", key["id"], environment),
        ("signing_key.delete", key["id"], environment),
        ("access_token.create", token["id"], environment),
        ("access_token.revoke", token["id"], environment),
    ]
    for line in lines:
        assert line["actor"] == actor and line["logger"] == "headcount.audit"
        assert line["level"] == "info" and isinstance(line["at"], int)
        assert line["time"].endswith("Z")
    # The same line on stderr, never on stdout.
    assert json.loads(revoked.stderr)["action"] == "access_token.revoke"
    assert "access_token.revoke" not in revoked.stdout
    written = audit_file.read_text()
    for secret in (made["access_token"]["secret"], key["private_key"], token["secret"]):
        assert secret not in written


def test_a_text_audit_line_says_who_did_what(tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'h.db'}"
    made = run("init", "--database", database, env={})
    assert "audit: access_token.create " in made.stderr
    assert f"by cli:{getpass.getuser()}" in made.stderr
    assert "audit" not in made.stdout
