from pathlib import Path

import pytest
from click.testing import CliRunner

from headcount.cli import main
from headcount.settings import SETTINGS, load_settings, settings_markdown

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
