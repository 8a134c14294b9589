"""The control-plane CLI, in-process with click's runner, on a real SQLite file."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from headcount.auth.access_tokens import authenticate
from headcount.cli import main
from headcount.cli.serve import settings_environment
from headcount.errors import Unauthorized
from headcount.settings import SETTINGS, load_settings
from headcount.stores.sql import open_control_store


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A migrated, empty control store, as the first `headcount serve` leaves it."""
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    open_control_store(url).close()
    return url


def test_a_database_that_does_not_exist_is_refused_not_made_empty(tmp_path: Path) -> None:
    missing = tmp_path / "typo.db"
    for args in (
        ["environments", "list"],
        ["environments", "create", "x"],
        ["signing-keys", "list", "--environment", "default"],
    ):
        result = run(*args, "--database", f"sqlite:///{missing}")
        assert result.exit_code == 1
        assert f"there is no database at {missing}" in result.output
        assert "headcount init" in result.output
        assert not missing.exists()
    assert run("init", "--database", f"sqlite:///{missing}").exit_code == 0  # init makes one
    assert missing.exists()


def test_an_environment_is_taken_by_id_or_by_name(database: str) -> None:
    created = run_json("environments", "create", "shop", "--database", database)
    by_name = run_json("signing-keys", "create", "--environment", "shop", "--database", database)
    by_id = run_json(
        "signing-keys", "create", "--environment", created["id"], "--database", database
    )
    listed = run_json("signing-keys", "list", "--environment", "shop", "--database", database)
    assert {k["id"] for k in listed} == {by_name["id"], by_id["id"]}
    tokens = run_json("access-tokens", "list", "--environment", "shop", "--database", database)
    assert tokens == []
    unknown = run("signing-keys", "list", "--environment", "nowhere", "--database", database)
    assert unknown.exit_code == 1
    assert "no environment 'nowhere' (by id or by name)" in unknown.output
    run_json("environments", "create", "shop", "--database", database)  # a second "shop"
    twice = run("access-tokens", "create", "--environment", "shop", "--database", database)
    assert twice.exit_code == 1 and "2 environments are named 'shop'" in twice.output


def run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def run_json(*args: str) -> Any:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def basic(token_id: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{token_id}:{secret}".encode()).decode()


def test_init_json_prints_exactly_the_promised_shape(database: str) -> None:
    created = run_json("init", "--database", database)
    assert set(created) == {"environment", "access_token"}
    assert set(created["environment"]) == {"id", "name", "env_key"}
    assert set(created["access_token"]) == {"id", "secret"}
    assert created["environment"]["name"] == "default"
    assert re.fullmatch(r"[a-z0-9]{20,}", created["environment"]["env_key"])
    store = open_control_store(database)
    try:
        token = created["access_token"]
        found = authenticate(store, basic(token["id"], token["secret"]))
        assert found.environment_id == created["environment"]["id"]
        assert found.permissions == {"system:read", "system:write", "data:read"}
    finally:
        store.close()


def test_init_twice_makes_two_environments(database: str) -> None:
    first = run_json("init", "--database", database)
    second = run_json("init", "--name", "staging", "--database", database)
    assert first["environment"]["env_key"] != second["environment"]["env_key"]
    listed = run_json("environments", "list", "--database", database)
    assert sorted(e["name"] for e in listed) == ["default", "staging"]


def test_init_human_output_shows_the_secret_once(database: str) -> None:
    result = run("init", "--database", database)
    assert result.exit_code == 0
    store = open_control_store(database)
    try:
        (token,) = store.list_access_tokens()
    finally:
        store.close()
    assert token.id in result.output
    assert "Access token secret" in result.output


def test_environments_create_and_list(database: str) -> None:
    created = run_json("environments", "create", "shop", "--database", database)
    assert created["name"] == "shop"
    assert run_json("environments", "list", "--database", database) == [created]
    table = run("environments", "list", "--database", database)
    assert created["env_key"] in table.output


def test_access_tokens_create_list_revoke(database: str) -> None:
    environment = run_json("environments", "create", "e", "--database", database)["id"]
    full = run_json("access-tokens", "create", "--environment", environment, "--database", database)
    assert full["permissions"] == ["data:read", "system:read", "system:write"]
    reader = run_json(
        "access-tokens",
        "create",
        "--environment",
        environment,
        "--permission",
        "system:read",
        "--database",
        database,
    )
    assert reader["permissions"] == ["system:read"]

    listed = run_json("access-tokens", "list", "--database", database)
    assert sorted(t["id"] for t in listed) == sorted([full["id"], reader["id"]])
    assert "secret" not in json.dumps(listed)
    assert full["secret"] not in run("access-tokens", "list", "--database", database).output

    assert run_json("access-tokens", "revoke", full["id"], "--database", database)["revoked"]
    store = open_control_store(database)
    try:
        with pytest.raises(Unauthorized):
            authenticate(store, basic(full["id"], full["secret"]))
        assert authenticate(store, basic(reader["id"], reader["secret"])).id == reader["id"]
    finally:
        store.close()
    again = run("access-tokens", "revoke", full["id"], "--database", database)
    assert again.exit_code == 1
    assert "no live access token" in again.output


def test_access_token_errors(database: str) -> None:
    unknown_environment = run(
        "access-tokens", "create", "--environment", "nope", "--database", database
    )
    assert unknown_environment.exit_code == 1
    assert "no environment 'nope'" in unknown_environment.output
    environment = run_json("environments", "create", "e", "--database", database)["id"]
    bad_permission = run(
        "access-tokens",
        "create",
        "--environment",
        environment,
        "--permission",
        "admin",
        "--database",
        database,
    )
    assert bad_permission.exit_code == 2
    assert "system:read" in bad_permission.output


def test_signing_keys_create_list_get_delete(database: str) -> None:
    environment = run_json("environments", "create", "e", "--database", database)["id"]
    created = run_json(
        "signing-keys", "create", "--environment", environment, "--database", database
    )
    pem = base64.b64decode(created["private_key"])
    assert pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    key_id = created["id"]

    listed = run_json("signing-keys", "list", "--environment", environment, "--database", database)
    assert [k["id"] for k in listed] == [key_id]
    shown = run_json("signing-keys", "get", key_id, "--database", database)
    assert shown["public_key"].startswith("-----BEGIN PUBLIC KEY-----")
    assert shown["deleted_at"] is None
    assert "private_key" not in shown

    assert run_json("signing-keys", "delete", key_id, "--database", database)["deleted"]
    assert run_json("signing-keys", "get", key_id, "--database", database)["deleted_at"] > 0
    assert (
        run_json("signing-keys", "list", "--environment", environment, "--database", database) == []
    )
    again = run("signing-keys", "delete", key_id, "--database", database)
    assert again.exit_code == 1
    assert run("signing-keys", "get", "unknown", "--database", database).exit_code == 1
    no_environment = run("signing-keys", "create", "--environment", "nope", "--database", database)
    assert no_environment.exit_code == 1


def test_signing_keys_human_output_prints_the_private_key_on_one_line(database: str) -> None:
    environment = run_json("environments", "create", "e", "--database", database)["id"]
    result = run("signing-keys", "create", "--environment", environment, "--database", database)
    assert result.exit_code == 0
    (line,) = [x for x in result.output.splitlines() if x.startswith("LS0tLS1CRUdJTi")]
    assert base64.b64decode(line).startswith(b"-----BEGIN RSA PRIVATE KEY-----")


def test_list_walks_past_one_store_page(database: str) -> None:
    from headcount.auth.signing_keys import generate_signing_key

    environment = run_json("environments", "create", "e", "--database", database)["id"]
    store = open_control_store(database)
    try:
        key = generate_signing_key(environment, 1).key
        for i in range(105):
            store.add_signing_key(type(key)(f"k{i:03d}", environment, key.public_key_pem, 1))
    finally:
        store.close()
    listed = run_json("signing-keys", "list", "--environment", environment, "--database", database)
    assert len(listed) == 105


def test_database_comes_from_the_environment_when_the_flag_is_absent(
    database: str, tmp_path: Path
) -> None:
    created = run("init", "--json", env={"HEADCOUNT_DATABASE_URL": database})
    assert created.exit_code == 0
    environment_id = json.loads(created.output)["environment"]["id"]
    assert [e["id"] for e in run_json("environments", "list", "--database", database)] == [
        environment_id
    ]
    other = f"sqlite:///{tmp_path / 'other.db'}"
    open_control_store(other).close()
    assert run_json("environments", "list", "--database", other) == []


def test_unreachable_database_is_a_clear_error() -> None:
    result = run("environments", "list", "--database", "postgresql://nobody@127.0.0.1:1/none")
    assert result.exit_code == 1
    assert "unavailable" in result.output


# -- serve (its flags; the running server is tested in tests/e2e/test_serve.py) -------------


def test_serve_has_a_flag_for_every_setting() -> None:
    help_text = run("serve", "--help").output
    for setting in SETTINGS:
        assert setting.cli_flag in help_text
        assert setting.env_var in help_text


def test_serve_refuses_a_bad_flag_value_before_starting(database: str) -> None:
    result = CliRunner().invoke(main, ["serve", "--port", "eighty", "--database", database])
    assert result.exit_code == 2
    assert "--port" in result.output
    bad_level = CliRunner().invoke(main, ["serve", "--log-level", "loud", "--database", database])
    assert bad_level.exit_code == 2
    assert "--log-level" in bad_level.output


def test_settings_reach_the_worker_unchanged_through_the_environment() -> None:
    settings = load_settings(
        {"port": 9123, "count_paused": True, "liveness_window": 12.5, "state_file": ""},
        environ={},
    )
    assert load_settings(environ=settings_environment(settings)) == settings
