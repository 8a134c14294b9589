from pathlib import Path

import pytest

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
