"""``headcount token sign`` and ``headcount counts``, against a real ``headcount serve``."""

from __future__ import annotations

import base64
import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import jwt
import pytest
from click.testing import CliRunner

from headcount.cli import main
from tests.e2e.conftest import HEADCOUNT, free_port
from tests.live_counts import CountsServer, start_counts_server
from tests.token_kit import pkcs1_pem, pkcs8_pem, private_key

UTC_SECONDS = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


@pytest.fixture(scope="module")
def counts_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CountsServer]:
    started = start_counts_server(tmp_path_factory.mktemp("cli-server"))
    try:
        yield started
    finally:
        started.server.kill()


def run(*args: str, input: str | None = None, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def fails(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    return result.output


def claims_of(token: str) -> dict[str, object]:
    key = private_key("main")
    decoded: dict[str, object] = jwt.decode(
        token, key.public_key(), algorithms=["RS256"], options={"verify_aud": False}
    )
    return decoded


def test_sign_prints_a_token_for_the_key_given_inline() -> None:
    secret = base64.b64encode(pkcs1_pem(private_key("main"))).decode()
    output = run(
        "token", "sign", "--id", "abc", "--type", "live_stream", "--key-id", "k1",
        "--private-key", secret, "--expires", "1h",
    )  # fmt: skip
    claims = claims_of(output.strip())
    assert claims["sub"] == "abc" and claims["aud"] == "live_stream_id" and claims["kid"] == "k1"


@pytest.mark.parametrize("form", ["pem-file", "base64-file", "stdin", "environment"])
def test_sign_reads_the_private_key_from_a_file_stdin_or_environment(
    tmp_path: Path, form: str
) -> None:
    key = private_key("main")
    args = ["token", "sign", "--id", "abc", "--key-id", "k1"]
    stdin, env = None, None
    if form == "pem-file":
        (tmp_path / "key.pem").write_bytes(pkcs8_pem(key))
        args += ["--private-key", str(tmp_path / "key.pem")]
    elif form == "base64-file":
        (tmp_path / "key.b64").write_text(base64.b64encode(pkcs1_pem(key)).decode() + "\n")
        args += ["--private-key", str(tmp_path / "key.b64")]
    elif form == "stdin":
        args += ["--private-key", "-"]
        stdin = pkcs1_pem(key).decode()
    else:
        args = ["token", "sign", "--id", "abc"]
        env = {
            "MUX_SIGNING_KEY": "k1",
            "MUX_PRIVATE_KEY": base64.b64encode(pkcs1_pem(key)).decode(),
        }
    claims = claims_of(run(*args, input=stdin, env=env).strip())
    assert (claims["sub"], claims["aud"], claims["kid"]) == ("abc", "video_id", "k1")


def test_sign_with_a_bad_key_is_a_clear_error() -> None:
    output = fails("token", "sign", "--id", "a", "--key-id", "k", "--private-key", "garbage!")
    assert "neither a PEM nor base64" in output


def test_sign_with_a_bad_expiry_is_a_clear_error() -> None:
    secret = base64.b64encode(pkcs1_pem(private_key("main"))).decode()
    output = fails(
        "token", "sign", "--id", "a", "--key-id", "k", "--private-key", secret,
        "--expires", "whenever",
    )  # fmt: skip
    assert "Invalid time span" in output


def _token(server: CountsServer, **extra: str) -> str:
    args = ["token", "sign", "--id", "video-1", "--key-id", extra.get("key_id", server.key_id)]
    return run(*args, "--private-key", server.private_key, "--expires", "10m").strip()


def test_counts_prints_views_viewers_updated_at(counts_server: CountsServer) -> None:
    output = run("counts", "--url", counts_server.base_url, "--token", _token(counts_server))
    assert re.fullmatch(rf"views +0\nviewers +0\nupdated_at +{UTC_SECONDS}\n", output)


def test_counts_json(counts_server: CountsServer) -> None:
    token = _token(counts_server)
    output = run("counts", "--url", counts_server.base_url, "--token", token, "--json")
    document = json.loads(output)
    assert list(document) == ["views", "viewers", "updated_at"]
    assert (document["views"], document["viewers"]) == (0, 0)
    assert re.fullmatch(UTC_SECONDS, document["updated_at"])


def test_watch_json_prints_one_line_per_poll(counts_server: CountsServer) -> None:
    token = _token(counts_server)
    output = run(
        "counts", "--url", counts_server.base_url, "--token", token,
        "--watch", "--json", "--interval", "0.05", "--count", "3",
    )  # fmt: skip
    lines = output.splitlines()
    assert len(lines) == 3
    assert all(json.loads(line)["views"] == 0 for line in lines)


def test_watch_shows_a_live_table(counts_server: CountsServer) -> None:
    token = _token(counts_server)
    output = run(
        "counts", "--url", counts_server.base_url, "--token", token,
        "--watch", "--interval", "0.05", "--count", "2",
    )  # fmt: skip
    assert "views" in output and "viewers" in output and "polls" in output
    assert re.search(r"polls\s*│\s*2", output)


def test_refused_token_is_a_clear_error(counts_server: CountsServer) -> None:
    token = _token(counts_server, key_id="someone-elses-key")
    output = fails("counts", "--url", counts_server.base_url, "--token", token)
    assert "403 unknown_key" in output
    output = fails("counts", "--url", counts_server.base_url, "--token", token, "--watch")
    assert "403 unknown_key" in output  # watching a refused token stops at once


def test_unreachable_server_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    output = fails("counts", "--url", url, "--token", "x.y.z")
    assert url in output


def test_console_script_end_to_end(counts_server: CountsServer) -> None:
    # The installed `headcount` command, as a shell user runs it.
    def headcount(*args: str) -> str:
        result = subprocess.run(
            [HEADCOUNT, *args], capture_output=True, text=True, timeout=60, check=False
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    token = headcount(
        "token", "sign", "--id", "video-1", "--type", "video",
        "--key-id", counts_server.key_id, "--private-key", counts_server.private_key,
    ).strip()  # fmt: skip
    output = headcount("counts", "--url", counts_server.base_url, "--token", token, "--json")
    assert json.loads(output)["views"] == 0
