import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from headcount.cli import main
from headcount.settings import SETTINGS, load_settings
from headcount.settings_docs import settings_markdown
from headcount.settings_sources import (
    CONFIG_ENV,
    Resolved,
    masked,
    read_config_file,
    resolve,
)

ROOT = Path(__file__).resolve().parents[1]


def test_configuration_reference_is_generated_from_the_declaration() -> None:
    on_disk = (ROOT / "docs" / "configuration.md").read_text()
    assert on_disk == settings_markdown(), (
        "run: headcount settings --markdown > docs/configuration.md"
    )


def test_every_setting_is_documented_with_flag_and_variable() -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.cli_flag}`" in reference
        assert f"`{setting.env_var}`" in reference


def test_database_setting_has_the_names_the_readme_promises() -> None:
    by_name = {s.name: s for s in SETTINGS}
    assert by_name["database_url"].cli_flag == "--database"
    assert by_name["database_url"].env_var == "HEADCOUNT_DATABASE_URL"


def test_environment_overrides_default_and_flag_overrides_environment() -> None:
    env = {"HEADCOUNT_PORT": "9001", "HEADCOUNT_LIVENESS_WINDOW": "30"}
    assert load_settings(environ=env).port == 9001
    assert load_settings(environ=env).liveness_window == 30.0
    assert load_settings({"port": 9002}, environ=env).port == 9002


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ValueError, match="HEADCOUNT_PORT"):
        load_settings(environ={"HEADCOUNT_PORT": "eighty"})


def test_unknown_override_is_an_error() -> None:
    with pytest.raises(KeyError):
        load_settings({"prot": 1}, environ={})


def test_roles() -> None:
    settings = load_settings(environ={"HEADCOUNT_ROLE": "collector,counts"})
    assert settings.serves("collector") and settings.serves("counts")
    assert not settings.serves("system")
    assert load_settings(environ={}).serves("system")


# What the issue "Ready to run in production" names, and a few more of the same kind: each
# refused by `headcount serve` before anything starts (no database file is made), with one
# line that names the flag, says what is wrong and what is accepted.
NONSENSE = [
    (["--port", "70000"], "--port: 70000 is not in the range 1<=x<=65535"),
    (["--sweep-interval", "0"], "--sweep-interval: 0.0 is not in the range x>0"),
    (["--role", "nonsense"], "'nonsense' is not a role: use all, or a comma list of"),
    (["--database", "nonsense://x"], "unsupported database URL 'nonsense://x': use sqlite:///"),
    (["--live", "foo://x"], "unsupported live store URL 'foo://x': use memory://"),
    (["--log-level", "loud"], "'loud' is not one of 'debug', 'info', 'warning', 'error'"),
    (["--workers", "0"], "--workers: 0 is not in the range 1<=x<=1024"),
    (["--count-paused", "maybe"], "'maybe' is not a boolean: use true or false"),
    (["--max-body-bytes", "10"], "--max-body-bytes: 10 is not in the range x>=1024"),
    (["--header-timeout", "0"], "--header-timeout: 0.0 is not in the range x>0"),
    (["--max-connections", "0"], "--max-connections: 0 is not in the range x>=1"),
    (["--max-url-bytes", "100"], "--max-url-bytes: 100 is not in the range x>=1024"),
]


@pytest.mark.parametrize(("flags", "message"), NONSENSE, ids=[f[0][0] for f in NONSENSE])
def test_serve_refuses_nonsense_before_it_starts(
    flags: list[str], message: str, tmp_path: Path
) -> None:
    database = tmp_path / "never.db"
    result = CliRunner().invoke(
        main, ["serve", "--database", f"sqlite:///{database}", *flags], env={}
    )
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[-1].startswith("Error: Invalid value for") and message in lines[-1], lines
    assert "Traceback" not in result.output
    assert not database.exists()


def test_a_database_password_is_never_shown_in_the_refusal(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["serve", "--database", "mysql://u:hunter2@h/db"], env={})
    assert result.exit_code == 2 and "hunter2" not in result.output
    assert "mysql://u:***@h/db" in result.output


def test_variables_and_values_in_code_are_checked_the_same_way() -> None:
    with pytest.raises(ValueError, match=r"HEADCOUNT_PORT: 0 is not in the range"):
        load_settings(environ={"HEADCOUNT_PORT": "0"})
    with pytest.raises(ValueError, match=r"--sweep-interval: -1.0 is not in the range x>0"):
        load_settings({"sweep_interval": -1.0}, environ={})
    with pytest.raises(ValueError, match="HEADCOUNT_ROLE: 'collector,everything' is not a role"):
        load_settings(environ={"HEADCOUNT_ROLE": "collector,everything"})
    assert load_settings({"role": " counts , system "}, environ={}).role == "counts,system"
    assert load_settings({"log_level": "DEBUG"}, environ={}).log_level == "debug"


# -- the config file (settings_sources.py) ----------------------------------------------------


def write_config(tmp_path: Path, text: str) -> str:
    path = tmp_path / "headcount.toml"
    path.write_text(text)
    return str(path)


def test_flags_beat_variables_beat_the_config_file_beats_the_defaults(tmp_path: Path) -> None:
    config = write_config(tmp_path, "port = 9001\nsweep_interval = 2.5\ncount_paused = true\n")
    env = {"HEADCOUNT_SWEEP_INTERVAL": "3", "HEADCOUNT_CONFIG": config}
    resolved = resolve({"count_paused": "false"}, environ=env)
    assert resolved["port"] == Resolved(9001, f"config file {config}")
    assert resolved["sweep_interval"] == Resolved(3.0, "env HEADCOUNT_SWEEP_INTERVAL")
    assert resolved["count_paused"] == Resolved(False, "flag --count-paused")
    assert resolved["role"] == Resolved("all", "default")
    # --config (here: the argument) wins over HEADCOUNT_CONFIG.
    other = tmp_path / "other.toml"
    other.write_text("port = 9002\n")
    assert load_settings(environ=env, config_file=str(other)).port == 9002
    assert load_settings(environ={}).port == 8000  # no file is read unless named


BAD_CONFIGS = [
    ("prot = 8080\n", "prot: not a setting of Headcount; did you mean 'port'?"),
    ("colour = 1\n", "colour: not a setting of Headcount; `headcount settings` lists them."),
    ("port = 70000\n", "port: 70000 is not in the range 1<=x<=65535."),
    ("port = true\n", "port: a boolean is not accepted; write e.g. port = 8000 (accepts integer"),
    ("role = ['counts']\n", 'role: an array is not accepted; write e.g. role = "all"'),
    ('role = "nonsense"\n', "role: 'nonsense' is not a role: use all, or a comma list of"),
    ('live_url = "foo://x"\n', "live_url: unsupported live store URL 'foo://x': use memory://"),
    (
        "port = \n",
        "not a TOML file (Invalid value (at line 1, column 8)); write one `name = value`",
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_a_bad_config_file_is_refused_in_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    config = write_config(tmp_path, text)
    database = tmp_path / "never.db"
    result = CliRunner().invoke(
        main, ["serve", "--config", config, "--database", f"sqlite:///{database}"], env={}
    )
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"Error: {config}: {message}"), result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not database.exists()


def test_a_config_file_that_is_not_there_is_refused_the_same_way(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    for args, env in (
        (["settings", "--config", missing], {}),
        (["settings"], {CONFIG_ENV: missing}),
    ):
        result = CliRunner().invoke(main, args, env=env)
        assert result.exit_code == 2
        assert result.output.strip() == (
            f"Error: {missing}: no such config file; give the path of a TOML file to --config "
            f"or {CONFIG_ENV}, or leave both unset."
        )


def test_control_commands_read_the_database_from_the_config_file(tmp_path: Path) -> None:
    database = tmp_path / "from-config.db"
    config = write_config(tmp_path, f'database_url = "sqlite:///{database}"\n')
    runner = CliRunner()
    assert runner.invoke(main, ["init", "--json"], env={CONFIG_ENV: config}).exit_code == 0
    assert database.exists()
    bad = write_config(tmp_path, "database = 'x'\n")
    refused = runner.invoke(main, ["environments", "list"], env={CONFIG_ENV: bad})
    assert refused.exit_code == 2 and "did you mean 'database_url'?" in refused.output


def test_settings_shows_each_value_and_where_it_came_from_with_secrets_masked(
    tmp_path: Path,
) -> None:
    config = write_config(
        tmp_path, 'database_url = "postgresql://hc:hunter2@db:5432/hc"\nport = 9001\n'
    )
    result = CliRunner().invoke(
        main,
        ["settings", "--config", config, "--live", "rediss://:s3cret@redis:6380/0?password=pw"],
        env={"HEADCOUNT_WORKERS": "4"},
    )
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split() for line in result.output.splitlines()}
    assert rows["database_url"][1:] == [
        "postgresql://hc:***@db:5432/hc",
        "config",
        "file",
        config,
    ]
    assert rows["live_url"][1:] == ["rediss://:***@redis:6380/0?password=***", "flag", "--live"]
    assert rows["workers"][1:] == ["4", "env", "HEADCOUNT_WORKERS"]
    assert rows["port"][1:] == ["9001", "config", "file", config]
    assert rows["role"][1:] == ["all", "default"]
    assert rows["credentials_file"][1:] == ["(empty)", "default"]
    assert set(rows) == {s.name for s in SETTINGS}
    assert "hunter2" not in result.output and "s3cret" not in result.output
    assert "pw" not in result.output.replace("password", "")


def test_masking_hides_secrets_and_only_secrets() -> None:
    assert masked("metrics_token", "abc") == "***"
    assert masked("admin_password", "abc") == "***"
    assert masked("token_leeway", 10) == "10"
    assert masked("database_url", "sqlite:///.headcount/headcount.db") == (
        "sqlite:///.headcount/headcount.db"
    )
    assert masked("database_url", "postgresql://u@h/db") == "postgresql://u@h/db"
    assert masked("live_url", "redis://user:p%40ss@h:6379/0") == "redis://user:***@h:6379/0"
    assert masked("live_url", "redis://h/0?ssl_ca_certs=/ca.pem&token=t") == (
        "redis://h/0?ssl_ca_certs=/ca.pem&token=***"
    )


def test_the_reference_s_config_file_example_is_accepted(tmp_path: Path) -> None:
    reference = (ROOT / "docs" / "configuration.md").read_text()
    (example,) = re.findall(r"```toml\n(.*?)```", reference, re.S)
    values = read_config_file(write_config(tmp_path, example))
    assert values["workers"] == 4 and values["host"] == "0.0.0.0"
