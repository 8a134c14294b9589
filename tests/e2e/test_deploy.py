"""The deployment files (Dockerfile, compose.yaml, deploy/Caddyfile, deploy/headcount.service)
name real commands, real settings with values Headcount accepts, and real routes.

What this machine cannot run is not pretended here (docs/deployment.md says so): no image is
built or pulled (no Docker daemon), and no container or unit is started. The Dockerfile's
health check *is* run, against a real ``headcount serve``, and the unit is checked by
``systemd-analyze verify``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import yaml
from click.testing import CliRunner

from headcount.cli import main
from headcount.settings import SETTINGS, load_settings
from tests.e2e.conftest import HEADCOUNT, LiveServer, free_port

ROOT = Path(__file__).resolve().parents[2]
VARIABLES = {s.env_var for s in SETTINGS}


def dockerfile() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of the final stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    last_from = max(i for i, (keyword, _) in enumerate(instructions) if keyword == "FROM")
    return instructions[last_from:]


def docker_env(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in stage:
        if keyword == "ENV":
            env.update(dict(re.findall(r"(\w+)=(\S+)", rest)))
    return env


def exec_form(arguments: str) -> list[str]:
    form = json.loads(arguments)
    assert isinstance(form, list) and all(isinstance(a, str) for a in form), arguments
    return form


def assert_settings_accepted(variables: dict[str, str], where: str) -> None:
    ours = {k: v for k, v in variables.items() if k.startswith("HEADCOUNT_")}
    unknown = set(ours) - VARIABLES
    assert not unknown, f"{where}: not settings of Headcount: {sorted(unknown)}"
    load_settings(environ=ours)  # each value passes its setting's type, or this raises


def test_the_image_runs_headcount_serve_as_a_non_root_user_on_a_slim_base() -> None:
    stage = dockerfile()
    keywords = dict(stage)
    assert re.fullmatch(r"python:3\.1[1-9]-slim", keywords["FROM"])
    assert keywords["USER"] not in ("root", "0")
    command = exec_form(keywords["CMD"])
    assert command == ["headcount", "serve"]
    helped = CliRunner().invoke(main, [*command[1:], "--help"])
    assert helped.exit_code == 0 and "--credentials-file" in helped.output
    env = docker_env(stage)
    assert_settings_accepted(env, "Dockerfile")
    assert env["HEADCOUNT_HOST"] == "0.0.0.0"  # reachable from outside the container
    assert f"EXPOSE {env['HEADCOUNT_PORT']}" in [f"{k} {v}" for k, v in stage]
    # The files it writes are under its volume.
    (volume,) = exec_form(keywords["VOLUME"])
    for name in ("HEADCOUNT_STATE_FILE", "HEADCOUNT_CREDENTIALS_FILE"):
        assert env[name].startswith(volume + "/")
    assert load_settings(environ=env).database_url == f"sqlite:///{volume}/headcount.db"


def test_the_build_stage_copies_what_the_install_needs() -> None:
    text = (ROOT / "Dockerfile").read_text()
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for name in source.split():
            assert (ROOT / name).exists(), name
    assert '".[server]"' in text and "server = [" in (ROOT / "pyproject.toml").read_text()
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert ignored[0] == "*" and {"!pyproject.toml", "!README.md", "!src/"} <= set(ignored)


def run_health_check(port: int) -> subprocess.CompletedProcess[str]:
    keywords = dict(dockerfile())
    options, _, command = keywords["HEALTHCHECK"].partition("CMD ")
    assert "--timeout=" in options and "--interval=" in options
    program, flag, code = exec_form(command)
    assert (program, flag) == ("python", "-c")
    return subprocess.run(
        [sys.executable, "-c", code],
        env={"HEADCOUNT_PORT": str(port)},
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_health_check_passes_on_a_live_server_and_fails_without_one(
    live_server: LiveServer,
) -> None:
    assert run_health_check(live_server.port).returncode == 0
    refused = run_health_check(free_port())
    assert refused.returncode != 0 and "Connection refused" in refused.stderr
    # The balancer's probe (Caddyfile, compose.yaml) is a route too.
    assert httpx.get(f"{live_server.base_url}/readyz").status_code == 200


def compose() -> dict[str, Any]:
    document = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def substituted(variables: dict[str, str]) -> dict[str, str]:
    """Compose's ``${NAME...}`` interpolation, every variable given the value ``x``."""
    return {k: re.sub(r"\$\{[^}]+\}", "x", str(v)) for k, v in variables.items()}


def test_compose_runs_two_nodes_on_postgres_and_redis_behind_a_tls_proxy() -> None:
    services = compose()["services"]
    nodes = {name: s for name, s in services.items() if s.get("image") == "headcount:local"}
    assert sorted(nodes) == ["headcount-1", "headcount-2"]
    assert {"postgres", "redis", "caddy"} <= set(services)
    for name, node in nodes.items():
        env = substituted(node["environment"])
        assert_settings_accepted(env, f"compose.yaml {name}")
        settings = load_settings(environ=env)
        assert settings.database_url.startswith("postgresql://")
        assert settings.live_url.startswith("redis://") and settings.workers >= 1
    # Only the first node may bootstrap; the second waits until it is healthy.
    first = nodes["headcount-1"]
    assert nodes["headcount-2"]["depends_on"]["headcount-1"]["condition"] == "service_healthy"
    credentials = first["environment"]["HEADCOUNT_CREDENTIALS_FILE"]
    assert any(credentials.startswith(v.split(":")[1] + "/") for v in first["volumes"])
    assert "noeviction" in services["redis"]["command"]


def test_the_caddyfile_proxies_to_the_compose_nodes_and_probes_readiness() -> None:
    caddy = compose()["services"]["caddy"]
    (mount,) = [v for v in caddy["volumes"] if v.endswith(":/etc/caddy/Caddyfile:ro")]
    caddyfile = (ROOT / mount.split(":")[0]).read_text()
    (upstreams,) = re.findall(r"reverse_proxy (.+) \{", caddyfile)
    port = docker_env(dockerfile())["HEADCOUNT_PORT"]
    assert upstreams.split() == [f"headcount-1:{port}", f"headcount-2:{port}"]
    assert re.search(r"health_uri /readyz\b", caddyfile)
    assert re.search(r"flush_interval -1\b", caddyfile)  # the stream's events pass at once
    assert {"80:80", "443:443"} <= set(caddy["ports"])


def unit() -> str:
    return (ROOT / "deploy" / "headcount.service").read_text()


def test_the_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    # verify checks that ExecStart's program exists: point it at this venv's headcount.
    text = unit().replace("/opt/headcount/bin/headcount", HEADCOUNT)
    assert HEADCOUNT in text
    checked = tmp_path / "headcount.service"
    checked.write_text(text)
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is needed (Debian: apt-get install systemd)"
    done = subprocess.run(
        [analyze, "verify", str(checked)], capture_output=True, text=True, timeout=60
    )
    # verify exits 0 on unknown keys and bad values, but says so: nothing may be said.
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr


def test_the_unit_runs_serve_with_settings_headcount_accepts() -> None:
    text = unit()
    (command,) = re.findall(r"^ExecStart=(.+)$", text, re.M)
    assert command.split()[1:] == ["serve"]
    env = dict(re.findall(r"^Environment=(\w+)=(\S+)$", text, re.M))
    assert_settings_accepted(env, "deploy/headcount.service")
    (state,) = re.findall(r"^StateDirectory=(\S+)$", text, re.M)
    assert env["HEADCOUNT_CREDENTIALS_FILE"].startswith(f"/var/lib/{state}/")
    assert re.search(r"^EnvironmentFile=-/etc/headcount/headcount.env$", text, re.M)
    for hardening in ("NoNewPrivileges=yes", "ProtectSystem=strict", "CapabilityBoundingSet="):
        assert re.search(f"^{hardening}$", text, re.M), hardening
    assert re.search(r"^User=(?!root)\w+$", text, re.M)
